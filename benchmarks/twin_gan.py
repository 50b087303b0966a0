#!/usr/bin/env python3
"""A second generator of one subset at any benchmark size: ../shared/bench/tools/extra_gan.py makes 64-px
images only, so above 64 px this trains build_resumable.py's deeper recipe (the one such a benchmark was built
with) with another seed, checkpointed so a killed run goes on. At 64 px it is extra_gan.py: the tool's GAN,
the same seed, the same images and file names.

  python benchmarks/twin_gan.py --real BENCH/real/t2 --seed 77 --out twin-BENCH-t2
"""
import argparse
from pathlib import Path

from build_resumable import deeper_gan, tool  # this folder: scripts run from it
from upsample_gan import real_images, save_samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    x = real_images(a.real)
    if x.shape[-1] == 64:
        sample = tool.train_gan(x, a.iters, a.seed)
    else:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        sample = deeper_gan(x, a.iters, a.seed, checkpoint=a.out.with_name(a.out.name + ".ckpt.pt"))
    save_samples(sample, a.n, a.out, "twin")
    print(f"{len(x)} real images, {a.iters} steps, {a.n} samples -> {a.out}")


if __name__ == "__main__":
    main()
