#!/usr/bin/env python3
"""Would a smaller noise residual find the same generator groups? For each embeddings file, the groups of its
unknown set from the full 64×64 residual against those from smaller central windows and from 4,096 → 1,024
random projections (Gaussian, and ±1 from raw PCG64 bits): adjusted Rand index against the full residual's
groups (1.000: the same partition, so the same verdicts).

  python benchmarks/residual_cut.py ../sc/*/runs/*/embeddings.h5
"""
import sys

import h5py
import numpy as np
from sklearn.metrics import adjusted_rand_score

from ganprov.models.generators import generator_groups


def window(residuals, size):
    side = int(np.sqrt(residuals.shape[1]))
    start = (side - size) // 2
    return residuals.reshape(len(residuals), side, side)[:, start:start + size, start:start + size].reshape(len(residuals), -1)


def main():
    gaussian = np.random.default_rng(0).normal(size=(4096, 1024)).astype(np.float32) / 32
    bits = np.unpackbits(np.random.PCG64(2025).random_raw(4096 * 1024 // 64).view(np.uint8))
    signs = (2 * bits.reshape(4096, 1024).astype(np.float32) - 1) / 32
    cuts = {"window 48": lambda r: window(r, 48), "window 32": lambda r: window(r, 32),
            "gaussian 1024": lambda r: r @ gaussian, "sign 1024": lambda r: r @ signs}
    changed = dict.fromkeys(cuts, 0)
    for path in sys.argv[1:]:
        with h5py.File(path, "r") as handle:
            if "unknown" not in handle:
                continue
            residuals = handle["unknown/residuals"][:].astype(np.float32)
        full = generator_groups(residuals)
        agreement = {name: adjusted_rand_score(full, generator_groups(cut(residuals))) for name, cut in cuts.items()}
        for name, value in agreement.items():
            changed[name] += value < 1
        print(path, full.max() + 1, "groups;", ", ".join(f"{n} {v:.3f}" for n, v in agreement.items()), flush=True)
    print("sets whose groups changed:", ", ".join(f"{n} {c}" for n, c in changed.items()))


if __name__ == "__main__":
    main()
