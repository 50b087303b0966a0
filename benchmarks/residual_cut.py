#!/usr/bin/env python3
"""Would a smaller noise residual find the same generator groups? For each unknown set, the groups from the
full 64×64 float residual against those from the residual as `embed` stores it (int8 with a scale per row,
core/residual_codec.py), from smaller central windows and from 4,096 → 1,024 random projections (Gaussian,
and ±1 from raw PCG64 bits): adjusted Rand index against the full residual's groups (1.000: the same
partition, so the same verdicts). Unknown sets come from embeddings files, or straight from a benchmark's
images (`--bench`: its unknown set as shipped, re-saved as JPEG 75 and resized ×2 and ×0.5 as
recompose.py does, the anatomy directions taken from its real images at the same scale). No truth file.

  python benchmarks/residual_cut.py ../sc/*/runs/*/embeddings.h5
  python benchmarks/residual_cut.py --bench ../shared/bench/mri-slab ../shared/bench/mri-random
"""
import argparse
import io
from pathlib import Path

import h5py
import numpy as np
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from ganprov.core.residual_codec import SCALES, decode, encode
from ganprov.features.residual import noise_residual
from ganprov.models.generators import content_directions, generator_groups

SCENARIOS = {"shipped": {}, "jpeg75": {"jpeg": 75}, "scale2": {"scale": 2.0}, "scale0.5": {"scale": 0.5}}


def window(residuals, size):
    side = int(np.sqrt(residuals.shape[1]))
    start = (side - size) // 2
    return residuals.reshape(len(residuals), side, side)[:, start:start + size, start:start + size].reshape(len(residuals), -1)


def stored(residuals):
    coded = encode(residuals)
    return decode(coded["residuals"], coded[SCALES]).astype(np.float32)


def residual_of(path, scale=None, jpeg=None):
    image = Image.open(path).convert("L")
    if scale:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    if jpeg:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=jpeg)
        image = Image.open(buffer).convert("L")
    return noise_residual(np.asarray(image)).astype(np.float16).astype(np.float32)  # as embed stored it before


def unknown_sets(a):
    """(name, unknown residuals, real residuals or None) for every set asked for."""
    for path in a.files:
        with h5py.File(path, "r") as handle:
            if "unknown" in handle:
                yield path, handle["unknown/residuals"][:].astype(np.float32), None
    for bench in map(Path, a.bench):
        unknown = sorted((bench / "generated_unknown").glob("*.png"))
        real = sorted((bench / "real").glob("*/*.png"))[::2]
        for name, how in SCENARIOS.items():
            yield (f"{bench.name} {name}", np.stack([residual_of(p, **how) for p in unknown]),
                   np.stack([residual_of(p, scale=how.get("scale")) for p in real]))


def groups_after(cut, residuals, real):
    """The generator groups of `residuals` cut so, the anatomy of the `real` ones (cut alike) taken out first."""
    return generator_groups(cut(residuals), content=None if real is None else content_directions(cut(real), 64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="embeddings files")
    ap.add_argument("--bench", nargs="*", default=[], help="benchmark folders (real/, generated_unknown/)")
    a = ap.parse_args()
    gaussian = np.random.default_rng(0).normal(size=(4096, 1024)).astype(np.float32) / 32
    bits = np.unpackbits(np.random.PCG64(2025).random_raw(4096 * 1024 // 64).view(np.uint8))
    signs = (2 * bits.reshape(4096, 1024).astype(np.float32) - 1) / 32
    cuts = {"int8 stored": stored, "window 48": lambda r: window(r, 48), "window 32": lambda r: window(r, 32),
            "gaussian 1024": lambda r: r @ gaussian, "sign 1024": lambda r: r @ signs}
    changed = dict.fromkeys(cuts, 0)
    for name, residuals, real in unknown_sets(a):
        full = groups_after(lambda r: r, residuals, real)
        agreement = {cut_name: adjusted_rand_score(full, groups_after(cut, residuals, real))
                     for cut_name, cut in cuts.items()}
        for cut_name, value in agreement.items():
            changed[cut_name] += value < 1
        print(name, full.max() + 1, "groups;", ", ".join(f"{n} {v:.3f}" for n, v in agreement.items()), flush=True)
    print("sets whose groups changed:", ", ".join(f"{n} {c}" for n, c in changed.items()))


if __name__ == "__main__":
    main()
