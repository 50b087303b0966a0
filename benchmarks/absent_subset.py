#!/usr/bin/env python3
"""A subset missing from the candidates, on LABELLED generated folders (no truth file): for each dropped
subset k, an audit run on the other subsets' real images scores every `generated/gen_tJ` image of the
benchmark as its unknown set, so gen_tk's images have no right candidate and should come out 0.

  python benchmarks/absent_subset.py --bench BENCH --work WORK [--drop 1 2 3] [--image-size 64]

Per run and generator folder it prints the default's verdicts (from `ganprov run`'s submission: how many of the
folder's images got each label, the list's index being the label, 0 undetermined) and statistics that
might tell a generator of an absent subset from one of its look-alike candidate, each taken against the
subset the folder's images vote for most: the mean cosine similarity of the folder's images to their nearest
real image of that subset (`nn`), the same for the subset's held-out real images (`nn_real`), and the
cosine between the folder's mean embedding and the subset's (`mean_cos`; rows of one run with the same
`nearest` show which of two folders claiming one subset sits closer to it), and the mean largest logit of a
logistic regression fitted on the candidates' real training images, an out-of-distribution score
(`max_logit`), beside that of the subset's held-out real images (`max_logit_real`).
"""
import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ganprov.models.cosine import unit_rows
from ganprov.models.embeddings import EmbeddingsFile

GANPROV = [sys.executable, "-m", "ganprov.pipeline"]


def layout(bench: Path, data: Path, drop: int) -> None:
    """DATA/real/tJ for J != drop, DATA/generated_unknown/ holding a copy of every labelled generated image."""
    (data / "real").mkdir(parents=True, exist_ok=True)
    (data / "generated_unknown").mkdir(exist_ok=True)
    for folder in sorted((bench / "real").iterdir()):
        link = data / "real" / folder.name
        if folder.name != f"t{drop}" and not link.exists():
            link.symlink_to(folder.resolve())
    for folder in sorted((bench / "generated").iterdir()):
        for image in sorted(folder.iterdir()):
            copy = data / "generated_unknown" / image.name  # a copy: ganprov skips links out of the folder
            if not copy.exists():
                shutil.copyfile(image, copy)


def statistics(run: Path) -> list[dict]:
    file = EmbeddingsFile(run / "embeddings.h5")
    real, unknown = file.read("real", residuals=False), file.read("unknown", residuals=False)
    generator = np.array([int(re.search(r"gen_t(\d+)", p)[1]) for p in unknown.paths])
    with open(run / "submission.csv") as handle:
        label = {name: int(value) for name, value in csv.reader(handle)}
    verdict = np.array([label[Path(p).name] for p in unknown.paths])
    train, held = unit_rows(real.embeddings[~real.heldout]), unit_rows(real.embeddings[real.heldout])
    train_y, held_y = real.labels[~real.heldout], real.labels[real.heldout]
    queries = unit_rows(unknown.embeddings)
    logits = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(
        real.embeddings[~real.heldout], train_y).decision_function
    top, top_real = logits(unknown.embeddings).max(axis=1), logits(real.embeddings[real.heldout]).max(axis=1)
    out = []
    for g in np.unique(generator):
        rows = queries[generator == g]
        per_subset = {int(s): (rows @ train[train_y == s].T).max(axis=1) for s in np.unique(train_y)}
        nearest = np.array(list(per_subset.values())).argmax(axis=0)
        subsets = np.array(list(per_subset))
        s = int(subsets[np.bincount(nearest, minlength=len(subsets)).argmax()])
        own = held[held_y == s] @ train[train_y == s].T
        centre = unit_rows(train[train_y == s].mean(axis=0, keepdims=True))[0]
        mean_cos = float(unit_rows(rows.mean(axis=0, keepdims=True))[0] @ centre)
        out.append({"generator": int(g), "verdicts": np.bincount(verdict[generator == g]).tolist(), "nearest": s,
                    "nn": float(per_subset[s].mean()), "nn_real": float(own.max(axis=1).mean()),
                    "mean_cos": mean_cos, "max_logit": float(top[generator == g].mean()),
                    "max_logit_real": float(top_real[held_y == s].mean())})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--drop", nargs="+", type=int, help="subsets to drop, one run each (default: every subset)")
    ap.add_argument("--image-size", type=int, default=64)
    a = ap.parse_args()
    bench = a.bench.resolve()
    drops = a.drop or sorted(int(p.name[1:]) for p in (bench / "real").iterdir())
    for k in drops:
        data, run = (a.work / f"{bench.name}-drop{k}" / part for part in ("data", "run"))
        layout(bench, data, k)
        if not (run / "submission.csv").exists():
            subprocess.run([*GANPROV, "run", "--data", data, "--run", run, "--weights", "none",
                            "--image-size", str(a.image_size)], check=True)
        for row in statistics(run):
            print(json.dumps({"bench": bench.name, "dropped": k, "absent": row["generator"] == k} | row), flush=True)


if __name__ == "__main__":
    main()
