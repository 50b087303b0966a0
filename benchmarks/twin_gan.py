#!/usr/bin/env python3
"""A second generator of one subset at any benchmark size: ../shared/bench/tools/extra_gan.py makes 64-px
images only, so above 64 px this trains build_resumable.py's deeper recipe (the one such a benchmark was built
with) with another seed, checkpointed so a killed run goes on. At 64 px it is extra_gan.py: the tool's GAN,
the same seed, the same images and file names.

  python benchmarks/twin_gan.py --real BENCH/real/t2 --seed 77 --out twin-BENCH-t2
"""
from build_resumable import deeper_gan, tool  # this folder: scripts run from it
from upsample_gan import generator_cli


def twin(x, iters: int, seed: int, out):
    if x.shape[-1] == 64:
        return tool.train_gan(x, iters, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    return deeper_gan(x, iters, seed, checkpoint=out.with_name(out.name + ".ckpt.pt"))


def main():
    generator_cli(__doc__, 77, "twin", twin)


if __name__ == "__main__":
    main()
