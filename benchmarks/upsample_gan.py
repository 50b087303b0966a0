#!/usr/bin/env python3
"""A generator of another architecture for one subset: nearest-neighbour upsampling + 3x3 convolutions
(no transposed convolutions, so none of their checkerboard), against the same spectral-norm discriminator,
hinge loss and translation augmentation as ../shared/bench/tools/build_benchmark.py. Any power-of-two size.

  python benchmarks/upsample_gan.py --real BENCH/real/t3 --out OUT --seed 5 --n 200
"""
import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm


def generator(size: int, nz: int = 64, width: int = 256) -> nn.Module:
    layers, ch = [nn.Unflatten(1, (width, 4, 4))], width
    for _ in range(int(math.log2(size // 4))):
        out = max(ch // 2, 32)
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, out, 3, 1, 1, bias=False),
                   nn.BatchNorm2d(out), nn.ReLU(True)]
        ch = out
    return nn.Sequential(nn.Linear(nz, width * 16), *layers, nn.Conv2d(ch, 1, 3, 1, 1), nn.Tanh())


def discriminator(size: int) -> nn.Module:
    sn, layers, ch = nn.utils.spectral_norm, [], 1
    for b in [32, 64, 128, 256] + [256] * int(math.log2(size // 64)):
        layers += [sn(nn.Conv2d(ch, b, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        ch = b
    return nn.Sequential(*layers, sn(nn.Conv2d(ch, 1, 4, 1, 0)))


def train(x: torch.Tensor, iters: int, seed: int, nz: int = 64):
    torch.manual_seed(seed)
    size = x.shape[-1]
    G, D = generator(size, nz), discriminator(size)
    return hinge_training(G, D, x, iters, lambda n: torch.randn(n, nz), margin=max(6, size // 10))


def hinge_training(G: nn.Module, D: nn.Module, x: torch.Tensor, iters: int, latent, margin: int,
                   checkpoint: Path | None = None, every: int = 50):
    """The shared tool's loop: hinge loss, Adam 2e-4 (0, 0.9), batches of 64, real and generated images both
    translated by up to `margin` px. `latent(n)` draws n inputs of G. Returns a sampler of n images.
    With `checkpoint`, the models, optimisers, step and random state are saved there every `every` steps and
    training goes on from it when it exists (same images as an uninterrupted run); it is removed at the end."""
    size = x.shape[-1]

    def shift(t, s=margin):
        t = F.pad(t, (s, s, s, s), value=-1)
        i, j = torch.randint(0, 2 * s + 1, (2,))
        return t[:, :, i:i + size, j:j + size]

    oG = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9))
    oD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.9))
    parts, start = {"G": G, "D": D, "oG": oG, "oD": oD}, 0
    if checkpoint and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        for name, part in parts.items():
            part.load_state_dict(state[name])
        torch.set_rng_state(state["rng"])
        start = int(state["step"])
    for step in tqdm(range(start, iters), desc="GAN", unit="step", mininterval=30, initial=start, total=iters):
        real = x[torch.randint(0, len(x), (64,))]
        fake = G(latent(64))
        lD = F.relu(1 - D(shift(real))).mean() + F.relu(1 + D(shift(fake.detach()))).mean()
        oD.zero_grad()
        lD.backward()
        oD.step()
        lG = -D(shift(fake)).mean()
        oG.zero_grad()
        lG.backward()
        oG.step()
        if checkpoint and (step + 1) % every == 0 and step + 1 < iters:
            state = {name: part.state_dict() for name, part in parts.items()}
            torch.save({**state, "rng": torch.get_rng_state(), "step": step + 1}, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
    if checkpoint:
        checkpoint.unlink(missing_ok=True)
    G.eval()
    return lambda n: G(latent(n))


def real_images(folder) -> torch.Tensor:
    """A subset's real PNGs as one N × 1 × H × W tensor in [-1, 1]."""
    imgs = [np.asarray(Image.open(p).convert("L")) for p in sorted(Path(folder).glob("*.png"))]
    return torch.tensor(np.stack(imgs), dtype=torch.float32)[:, None] / 127.5 - 1


def save_samples(sample, n: int, out: Path, prefix: str) -> None:
    """n samples as PREFIX_0000.png … in `out`, which appears only when complete (build.sh checks for it)."""
    with torch.no_grad():
        y = ((sample(n)[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    for j, img in enumerate(y):
        Image.fromarray(img).save(partial / f"{prefix}_{j:04d}.png")
    partial.rename(out)


def generator_cli(doc: str, seed: int, prefix: str, train_on) -> None:
    """The command line of a script that trains one generator on a subset's real PNGs and writes its samples:
    `train_on(x, iters, seed, out)` returns the sampler (out: where a checkpoint may sit beside the samples)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    x = real_images(a.real)
    save_samples(train_on(x, a.iters, a.seed, a.out), a.n, a.out, prefix)
    print(f"{len(x)} real images, {a.iters} steps, {a.n} samples -> {a.out}")


def main():
    generator_cli(__doc__, 5, "upsample", lambda x, iters, seed, out: train(x, iters, seed))


if __name__ == "__main__":
    main()
