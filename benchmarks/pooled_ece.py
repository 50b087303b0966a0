#!/usr/bin/env python3
"""Expected calibration error of the default head's confidence, pooled over every scenario run of each
scenarios.py work folder (attributed images only, 10 bins, as `ganprov evaluate` computes it per run).

  python benchmarks/pooled_ece.py ../sc/*-audit ../sc/*-challenge
"""
import argparse
import csv
from pathlib import Path

import numpy as np

from ganprov.pipeline.metrics import calibration


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", nargs="+", type=Path, help="a scenarios.py folder: runs/SCENARIO, data/SCENARIO.truth.csv")
    ap.add_argument("--head", default="fingerprint")
    a = ap.parse_args()
    for work in a.work:
        truth, labels, confidence = [], [], []
        for run in sorted((work / "runs").iterdir()):
            with open(work / "data" / f"{run.name}.truth.csv") as handle:
                answers = dict(csv.reader(handle))
            with open(run / "predictions" / f"{a.head}.proba.csv") as handle:
                for row in csv.DictReader(handle):
                    truth.append(int(answers[row["filename"]]))
                    labels.append(int(row["label"]))
                    confidence.append(float(row["confidence"]))
        ece = calibration(truth, labels, confidence)["ece"]
        print(f"{work.name}: {len(truth)} images, {np.count_nonzero(labels)} attributed, pooled ECE "
              + ("– (none attributed)" if ece is None else f"{ece:.4f}"))


if __name__ == "__main__":
    main()
