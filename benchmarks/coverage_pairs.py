#!/usr/bin/env python3
"""Coverage of a candidate's labelled images by generator folders that claim it (models/coverage.py), on
LABELLED generated folders (no truth file): the data the coverage check's neighbour count was chosen on.

  python benchmarks/coverage_pairs.py RUN[:FOLDERS.h5] ... [--neighbours 5 10 20]

Each RUN is an audit run folder; its unknown set (or FOLDERS.h5, written by `ganprov score --embeddings` of
folders named gen_tK, twin*, upsample*) holds labelled generated images. Each folder claims the subset its images'
nearest training images belong to most; for every pair of folders claiming one subset it prints how many of
that subset's training images each covers and the other does not (at the smaller folder's size) and the
one-sided exact McNemar p-value that each covers no less. The check makes a folder undetermined at p <= alpha.
With --nearest it also prints an alternative that lost (README): how many of the subset's training images have
their nearest generated image in each folder, and the permutation p-value (folder labels shuffled) that each
wins no more often than the other.
"""
import argparse
import re

import h5py
import numpy as np

from ganprov.models.cosine import unit_rows
from ganprov.models.coverage import covered, mcnemar_less, radii
from ganprov.models.embeddings import EmbeddingsFile


def folder_of(path: str) -> str:
    found = re.search(r"(gen_t\d+|twin|upsample)", path)
    return found[1] if found else "?"


def labelled_rows(spec: str):
    run, _, scored = spec.partition(":")
    file = EmbeddingsFile(f"{run}/embeddings.h5")
    real = file.read("real", residuals=False)
    if scored:
        with h5py.File(scored) as f:
            embeddings = f["images/embeddings"][:]
            paths = [p.decode() for p in f["images/paths"][:]]
    else:
        unknown = file.read("unknown", residuals=False)
        embeddings, paths = unknown.embeddings, list(unknown.paths)
    return real, unit_rows(embeddings), np.array([folder_of(p) for p in paths])


def nearest_wins(reference, a_rows, b_rows, rng, permutations=2000) -> str:
    """Reference rows whose nearest row of the two folders pooled is one of a's, and permutation p-values."""
    nearest = (reference @ np.vstack([a_rows, b_rows]).T).argmax(axis=1)
    in_b = np.r_[np.zeros(len(a_rows), bool), np.ones(len(b_rows), bool)]
    wins = int(np.sum(~in_b[nearest]))
    shuffled = np.array([np.sum(~rng.permutation(in_b)[nearest]) for _ in range(permutations)])
    return (f"nearest: {wins}/{len(reference) - wins} p {np.mean(shuffled <= wins):.2g}/"
            f"{np.mean(shuffled >= wins):.2g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="RUN or RUN:FOLDERS.h5")
    ap.add_argument("--neighbours", nargs="+", type=int, default=[5, 10, 20])
    ap.add_argument("--nearest", action="store_true", help="also the nearest-folder wins (an alternative that lost)")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    for spec in a.runs:
        real, rows, folder = labelled_rows(spec)
        train, labels = unit_rows(real.embeddings[~real.heldout]), real.labels[~real.heldout]
        claims = {}
        for name in np.unique(folder):
            members = rows[folder == name]
            claims.setdefault(int(np.bincount(labels[(members @ train.T).argmax(axis=1)]).argmax()), []).append(name)
        print(spec)
        for subset, names in sorted(claims.items()):
            reference = train[labels == subset]
            for i, first in enumerate(names):
                for second in names[i + 1:]:
                    a_rows, b_rows = rows[folder == first], rows[folder == second]
                    n = min(len(a_rows), len(b_rows))
                    a_rows = a_rows[np.sort(rng.choice(len(a_rows), n, replace=False))]
                    b_rows = b_rows[np.sort(rng.choice(len(b_rows), n, replace=False))]
                    out = []
                    for k in a.neighbours:
                        radius = radii(reference, k)
                        hit_a, hit_b = covered(reference, a_rows, radius), covered(reference, b_rows, radius)
                        only_a, only_b = int(np.sum(hit_a & ~hit_b)), int(np.sum(hit_b & ~hit_a))
                        p = mcnemar_less(only_a, only_b), mcnemar_less(only_b, only_a)
                        out.append(f"k {k}: {only_a}/{only_b} p {p[0]:.2g}/{p[1]:.2g}")
                    if a.nearest:
                        out.append(nearest_wins(reference, a_rows, b_rows, rng))
                    print(f"  subset {subset} ({len(reference)} images): {first} vs {second}: " + "; ".join(out))


if __name__ == "__main__":
    main()
