#!/usr/bin/env python3
"""Group verdicts on LABELLED generated folders (no truth file): each `generated/gen_tK` folder, embedded with
an audit run's backbone, is one group of a known generator; the run's fitted fingerprint head votes on it,
whole and as random smaller groups, and the group is judged by the default statistic (mean posterior of the
votes, models/group_evidence.py) or by a multinomial likelihood of its vote histogram under each subset's
held-out vote row, at one Dirichlet prior. A folder whose subset is not among the run's candidates should
come out undetermined.

  ganprov score --run RUN --head logreg --images BENCH/generated --embeddings FOLDERS.h5
  python benchmarks/folder_verdicts.py RUN:FOLDERS.h5 ... [--prior 0.5] [--statistic likelihood]
"""
import argparse
import re
from pathlib import Path

import numpy as np

from ganprov.models import group_evidence
from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.persistence import load_head

SIZES = (200, 40, 10)  # images per group; below 200, three random draws per folder


def likelihood_support(votes: np.ndarray, confusion: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per subset: the share of bootstrap draws in which the group's vote histogram is likeliest under that
    subset's row of held-out vote rates (both drawn as group_evidence.bootstrap_support draws them)."""
    draws, prior = group_evidence.DRAWS, group_evidence.PRIOR
    counts = rng.dirichlet(votes + prior, draws) * votes.sum()
    rows = np.stack([rng.dirichlet(row + prior, draws) for row in confusion], axis=1)
    return np.bincount(np.einsum("dj,dsj->ds", counts, np.log(rows)).argmax(axis=1), minlength=len(votes)) / draws


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", help="RUN:FOLDERS.h5, an audit run and its labelled folders' embeddings")
    ap.add_argument("--prior", type=float, default=group_evidence.PRIOR, help="Dirichlet prior (0: 1/K)")
    ap.add_argument("--statistic", choices=("mean-posterior", "likelihood"), default="mean-posterior")
    ap.add_argument("--alpha", type=float, default=0.01)
    a = ap.parse_args()
    for pair in a.pairs:
        run, folders = (Path(p) for p in pair.rsplit(":", 1))
        file = EmbeddingsFile(folders)
        rows = file.read(file.groups[0], residuals=False)
        generator = np.array([int(re.search(r"gen_t(\d+)", p)[1]) for p in rows.paths])
        head, _ = load_head(run / "heads" / "fingerprint.joblib", EmbeddingsFile(run / "embeddings.h5").provenance)
        votes = head.content_.predict(rows.embeddings)
        column = {c: i for i, c in enumerate(head.classes_.tolist())}
        group_evidence.PRIOR = a.prior or 1 / len(head.classes_)
        found = []
        for size in SIZES:
            right = undetermined = wrong = 0
            for draw in range(1 if size == max(SIZES) else 3):
                rng = np.random.default_rng(draw)
                for g in np.unique(generator):
                    index = np.flatnonzero(generator == g)
                    index = rng.choice(index, size, replace=False) if size < len(index) else index
                    counts = np.bincount([column[v] for v in votes[index]], minlength=len(column))
                    support = (likelihood_support(counts, head.confusion_, rng) if a.statistic == "likelihood"
                               else group_evidence.bootstrap_support(counts, head.confusion_, rng))
                    label = head.classes_[support.argmax()] if support.max() >= 1 - a.alpha else 0
                    truth = g if g in column else 0
                    right += label == truth
                    undetermined += label == 0 and truth != 0
                    wrong += label not in (0, truth)
            found.append(f"{size}: {right}/{undetermined}/{wrong}")
        print(f"{run}  {a.statistic}, prior {group_evidence.PRIOR:.3f}  groups of N images, right/undetermined/"
              f"wrong  " + "  ".join(found), flush=True)


if __name__ == "__main__":
    main()
