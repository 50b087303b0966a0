#!/usr/bin/env python3
"""Small candidate subsets: how many held-out images the undetermined rule needs. For each draw, N real images
per subset are copied from a benchmark (seeded), and `ganprov run` in the audit regime attributes the
benchmark's unknown set twice: holding out a plain fifth of each subset (`--min-heldout 0`) and with the
default minimum. Printed per run against the truth file (read only to score): accuracy / wrong / undetermined
of the plain training, of the second opinion and of their agreement (submission.csv).

  python benchmarks/small_subsets.py --bench ../shared/bench/mri-slab --work WORK --per-subset 55 30 --draws 0 1 2
"""
import argparse
import random
import shutil
import subprocess
import sys
from pathlib import Path

from ganprov.pipeline.metrics import shares
from ganprov.pipeline.truth import read_labels

ARMS = {"fifth": ["--min-heldout", "0"], "default": []}
OUTPUTS = {"plain": "predictions/fingerprint.csv", "second opinion": "second-opinion/predictions/fingerprint.csv",
           "agreed": "submission.csv"}


def draw(bench: Path, out: Path, per_subset: int, seed: int) -> Path:
    """bench's unknown set beside `per_subset` real images of each subset (copies: ganprov does not follow
    links that leave the data folder)."""
    if not out.exists():
        for subset in sorted((bench / "real").iterdir()):
            files = sorted(subset.iterdir())
            chosen = random.Random(seed * 10 + int(subset.name[1:])).sample(files, per_subset)
            (out / "real" / subset.name).mkdir(parents=True)
            for file in chosen:
                shutil.copy(file, out / "real" / subset.name / file.name)
        (out / "generated_unknown").symlink_to((bench / "generated_unknown").resolve())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, required=True, help="challenge-layout benchmark, BENCH.truth.csv beside it")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--per-subset", type=int, nargs="+", default=[55])
    ap.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--image-size", type=int, default=64)
    a = ap.parse_args()
    truth = read_labels(Path(f"{a.bench}.truth.csv"))
    names = sorted(truth)
    for n in a.per_subset:
        for seed in a.draws:
            data = draw(a.bench, a.work / f"data-{n}-draw{seed}", n, seed)
            for arm, options in ARMS.items():
                run = a.work / f"run-{n}-draw{seed}-{arm}"
                if not (run / "submission.csv").exists():
                    subprocess.run([sys.executable, "-m", "ganprov.pipeline", "run", "--data", str(data), "--run", str(run),
                                    "--weights", "none", "--image-size", str(a.image_size), "--no-gradcam", *options],
                                   check=True, stdout=subprocess.DEVNULL)
                row = []
                for output, path in OUTPUTS.items():
                    labels = read_labels(run / path)
                    m = shares([truth[k] for k in names], [labels.get(k, 0) for k in names])
                    row.append(f"{output} {m['accuracy']:.3f} / {m['wrong']:.3f} / {m['undetermined']:.3f}")
                print(f"{n} per subset, draw {seed}, {arm}: " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main()
