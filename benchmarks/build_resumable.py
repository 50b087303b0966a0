#!/usr/bin/env python3
"""../shared/bench/tools/build_benchmark.py, resumable: each subset's generator is trained once and its samples
kept (OUT/.samples/tK.npy), so a build killed after hours (K = 8 takes ~2 CPU-hours) goes on from the next
subset (at 128 px, from its last checkpoint, every 50 steps). Same arguments, same seeds, same images and truth file as the tool. A second process started with
--reverse trains the subsets from the last one down, so two cores build one benchmark (each subset claimed by
one of them); whichever finishes last writes the unknown set.

  python benchmarks/build_resumable.py --volume VOL.nii.gz --out DIR --split slab --subsets 8 --seed 3 [--reverse]

The tool's GAN makes 64-px images only. With --size 128 (or any power of two above 64) this script builds the
same recipe one upsampling stage deeper, its channels halving down to 16, so a stage costs about what it does
at 64 px; --size 64 is the tool's own GAN.
"""
import argparse
import csv
import importlib.util
import os
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from upsample_gan import hinge_training  # this folder: scripts run from it

TOOLS = Path(os.environ.get("BENCH_TOOLS", Path(__file__).resolve().parents[2] / "shared" / "bench" / "tools"))
spec = importlib.util.spec_from_file_location("build_benchmark", TOOLS / "build_benchmark.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def deeper_gan(x: torch.Tensor, iters: int, seed: int, checkpoint: Path | None = None, nz: int = 64):
    """The tool's recipe (DCGAN generator, spectral-norm discriminator, hinge loss, translation augmentation)
    for x.shape[-1] = 4 · 2^n px: n transposed convolutions, channels 256, 128, … halving down to 16."""
    nn = torch.nn
    torch.manual_seed(seed)
    stages = int(np.log2(x.shape[-1] // 4))
    c = [max(16, 256 >> i) for i in range(stages)]
    g = [nn.ConvTranspose2d(nz, c[0], 4, 1, 0, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(True)]
    for a, b in zip(c, c[1:]):
        g += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
    G = nn.Sequential(*g, nn.ConvTranspose2d(c[-1], 1, 4, 2, 1, bias=False), nn.Tanh())
    SN, d, ch = nn.utils.spectral_norm, [], 1
    for b in c[::-1]:
        d += [SN(nn.Conv2d(ch, b, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        ch = b
    D = nn.Sequential(*d, SN(nn.Conv2d(ch, 1, 4, 1, 0)))
    return hinge_training(G, D, x, iters, lambda n: torch.randn(n, nz, 1, 1), margin=6 * x.shape[-1] // 64,
                          checkpoint=checkpoint)


def claimed(path: Path) -> bool:
    """Whether this process may train the subset: it claims it unless another live process has (a claim of a
    killed build is taken over), so the two processes of one build never train the same subset."""
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)  # pid 0 (claim being written): our own group, alive
            return False
        except (ProcessLookupError, ValueError):
            path.unlink(missing_ok=True)
            return claimed(path)
    os.write(handle, str(os.getpid()).encode())
    os.close(handle)
    return True


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("volume", None), ("out", None), ("split", "slab"), ("subsets", 5), ("size", 64),
                          ("iters", 1000), ("gen-labelled", 200), ("gen-unknown", 200), ("seed", 0)):
        ap.add_argument(f"--{name}", required=default is None, default=default,
                        type=type(default) if isinstance(default, int) else str)
    ap.add_argument("--reverse", action="store_true", help="train the subsets from the last one down")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out, kept = Path(a.out), Path(a.out) / ".samples"
    kept.mkdir(parents=True, exist_ok=True)
    groups = tool.split(list(tool.slices(tool.load_volume(a.volume), a.size)), a.split, a.subsets, rng)
    order = list(enumerate(groups, 1))
    for k, group in reversed(order) if a.reverse else order:
        samples = kept / f"t{k}.npy"
        if not samples.exists() and claimed(kept / f"t{k}.claim"):
            real = out / "real" / f"t{k}"
            real.mkdir(parents=True, exist_ok=True)
            for axis, i, img in group:
                img.save(real / f"t{k}_ax{axis}_{i:03d}.png")
            x = torch.tensor(np.stack([np.asarray(img) for _, _, img in group]), dtype=torch.float32)
            x, seed = x[:, None] / 127.5 - 1, a.seed * 100 + k
            if a.size == 64:  # the tool's own GAN, untouched (a subset takes minutes at this size)
                sample = tool.train_gan(x, a.iters, seed)
            else:  # a subset takes most of an hour: checkpointed, so a killed build goes on mid-subset
                sample = deeper_gan(x, a.iters, seed, checkpoint=kept / f"t{k}.ckpt.pt")
            with torch.no_grad():
                x = sample(a.gen_labelled + a.gen_unknown)
            x = ((x[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
            gen = out / "generated" / f"gen_t{k}"
            gen.mkdir(parents=True, exist_ok=True)
            for j in range(a.gen_labelled):
                Image.fromarray(x[j]).save(gen / f"gen_t{k}_{j:04d}.png")
            np.save(kept / f"t{k}.partial.npy", x)
            os.replace(kept / f"t{k}.partial.npy", samples)  # the subset counts as done only now
            print(f"subset t{k}: {len(group)} real, generator trained, {len(x)} sampled", flush=True)
    if not all((kept / f"t{k}.npy").exists() for k, _ in order):
        print("subsets still being trained by another process; it writes the unknown set", flush=True)
        return
    unknown = []
    for k, _ in order:
        x = np.load(kept / f"t{k}.npy")
        unknown += [(x[j], k) for j in range(a.gen_labelled, len(x))]
    rng.shuffle(unknown)
    folder = out / "generated_unknown"
    folder.mkdir(parents=True, exist_ok=True)
    with open(out.parent / (out.name + ".truth.csv"), "w", newline="") as f:
        w = csv.writer(f)
        for n, (img, k) in enumerate(unknown):
            name = f"{n:05d}.png"
            Image.fromarray(img).save(folder / name)
            w.writerow([name, k])


if __name__ == "__main__":
    main()
