#!/usr/bin/env python3
"""The fingerprint head's accuracy and wrongly attributed share at other significance levels, read from the
heads each scenario run already fitted (only `alpha` changes: same groups, votes and bootstrap), pooled over
every run of each scenarios.py work folder. Truth files are read only to score.

  python benchmarks/alpha_levels.py ../sc/*-audit --alpha 0.01 0.05 0.1 0.2
"""
import argparse
import csv
from pathlib import Path

import numpy as np

from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.persistence import load_head
from ganprov.pipeline.predict import unknown_filename


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", nargs="+", type=Path, help="a scenarios.py folder: runs/SCENARIO, data/SCENARIO.truth.csv")
    ap.add_argument("--alpha", nargs="+", type=float, default=[0.01, 0.05, 0.1, 0.2])
    a = ap.parse_args()
    for work in a.work:
        right, wrong, n = np.zeros(len(a.alpha)), np.zeros(len(a.alpha)), 0
        for run in sorted((work / "runs").iterdir()):
            with open(work / "data" / f"{run.name}.truth.csv") as handle:
                answers = dict(csv.reader(handle))
            file = EmbeddingsFile(run / "embeddings.h5")
            head = load_head(run / "heads" / "fingerprint.joblib", file.provenance)[0]  # sha256 checked
            unknown = file.read("unknown")
            inputs, truth = unknown.inputs_for(head), np.array([int(answers[unknown_filename(p)]) for p in unknown.paths])
            for i, alpha in enumerate(a.alpha):
                labels = head.set_params(alpha=alpha).predict(inputs)
                right[i] += np.sum(labels == truth)
                wrong[i] += np.sum((labels != 0) & (labels != truth))
            n += len(truth)
        print(f"{work.name} ({n} images): " + ", ".join(
            f"alpha {alpha}: accuracy {r / n:.3f} wrong {w / n:.3f}" for alpha, r, w in zip(a.alpha, right, wrong)))


if __name__ == "__main__":
    main()
