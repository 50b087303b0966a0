#!/usr/bin/env python3
"""Run ganprov on a benchmark and its recomposed scenarios; print one table row per scenario and head.

  python benchmarks/scenarios.py --bench PATH [--twin DIR:K] [--upsample DIR:K] --work WORK [--regime audit]
      [--image-size 64] [--content-resolution full] [--augment] [--seed 0]

PATH is a challenge-layout benchmark with PATH.truth.csv beside it (the test set: read only to score).
Scenarios (../shared/bench/tools/recompose.py): the unknown set as shipped, one generator only (subset 3),
200/100/40/10/0 images per subset, JPEG quality 75 and 50, scaled ×2, ×1.5, ×0.75 and ×0.5, one generator re-saved as JPEG 75 or
scaled ×2, a second generator of subset K (--twin), a
generator of another architecture (--upsample), and subset 5 dropped from the candidates (its generator's
images must come out 0). In the audit regime generated/ is left out. The backbone is trained once per
benchmark and regime (`ganprov train`, random init, 64 px unless --image-size says otherwise, half of it with
--content-resolution half); every scenario that keeps the candidates reuses
it (`ganprov embed`, `fit --head all`, `predict`, `evaluate --truth`); the dropped-candidate and the scaled
scenarios train their own (`ganprov run`). Results go to WORK/results.jsonl, one line per scenario and head.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = Path(os.environ.get("BENCH_TOOLS", HERE.parent.parent / "shared" / "bench" / "tools"))
GANPROV = [sys.executable, "-m", "ganprov.pipeline"]


def sh(*args, cwd=None):
    print("+", " ".join(map(str, args)), flush=True)
    subprocess.run(list(map(str, args)), check=True, cwd=cwd or HERE.parent, stdout=subprocess.DEVNULL)


def recompose(src: Path, out: Path, regime: str, *options) -> Path:
    if not Path(f"{out}.truth.csv").exists():
        shutil.rmtree(out, ignore_errors=True)
        sh(sys.executable, TOOLS / "recompose.py", src, out, *options)
    if regime == "audit" and (out / "generated").exists():
        path = out / "generated"
        path.unlink() if path.is_symlink() else shutil.rmtree(path)
    return out


def generator_ari(run: Path, data: Path, added: Path) -> float:
    """Adjusted Rand index of the fingerprint head's groups against the true generators, where one subset
    has two: an unknown image is the added generator's when its pixels equal one of that folder's images."""
    import hashlib

    import numpy as np
    from PIL import Image
    from sklearn.metrics import adjusted_rand_score

    def digest(path):
        return hashlib.sha256(np.asarray(Image.open(path).convert("L")).tobytes()).hexdigest()

    theirs = {digest(p) for p in added.glob("*.png")}
    with open(f"{data}.truth.csv") as handle:
        truth = dict(csv.reader(handle))
    with open(run / "predictions" / "fingerprint.proba.csv") as handle:
        rows = list(csv.DictReader(handle))
    generators = [-1 if digest(data / "generated_unknown" / r["filename"]) in theirs else int(truth[r["filename"]])
                  for r in rows]
    return float(adjusted_rand_score(generators, [int(r["group"]) for r in rows]))


def results(run: Path, bench: str, scenario: str, regime: str, data: Path, added: Path | None) -> list[dict]:
    rows = json.loads((run / "evaluation" / "metrics.json").read_text())
    keep = ("head", "fit_on", "n", "accuracy", "wrong", "undetermined", "groups", "groups_ari", "ece")
    out = [{"bench": bench, "regime": regime, "scenario": scenario} | {k: r[k] for k in keep if k in r}
           for r in rows if r["set"] == "unknown"]
    for row in out:
        if added is not None and "groups" in row:  # against generators, not subsets: two share a subset here
            row["groups_ari"] = generator_ari(run, data, added)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True, type=Path)
    ap.add_argument("--twin", help="DIR:K, another generator of subset K, same recipe")
    ap.add_argument("--upsample", help="DIR:K, a generator of subset K of another architecture")
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--regime", choices=("audit", "challenge"), default="audit")
    ap.add_argument("--only", nargs="*", help="run only these scenarios")
    ap.add_argument("--image-size", type=int, default=64, help="the network's input size (default 64)")
    ap.add_argument("--content-resolution", choices=("full", "half"), help="ganprov's --content-resolution "
                    "(default: ganprov's, full)")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, help="train with --augment or --no-augment "
                    "(default: ganprov's)")
    ap.add_argument("--seed", type=int, default=0, help="the trainings' seed (default 0, ganprov's)")
    a = ap.parse_args()
    train = ["--weights", "none", "--image-size", str(a.image_size), "--seed", str(a.seed)]
    if a.content_resolution:
        train += ["--content-resolution", a.content_resolution]
    if a.augment is not None:
        train.append("--augment" if a.augment else "--no-augment")
    bench, name = a.bench.resolve(), a.bench.name
    work = (a.work / f"{name}-{a.regime}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    scenarios = {"shipped": [], "one-generator": ["--only", "3"], "imbalanced": ["--counts", "200,100,40,10,0"],
                 "jpeg75": ["--jpeg", "75"], "scale2": ["--scale", "2"], "scale0.5": ["--scale", "0.5"],
                 "jpeg50": ["--jpeg", "50"], "scale0.75": ["--scale", "0.75"], "scale1.5": ["--scale", "1.5"],
                 "one-jpeg75": ["--only", "3", "--jpeg", "75"], "one-scale2": ["--only", "3", "--scale", "2"]}
    for scenario, spec in (("twin", a.twin), ("upsample", a.upsample)):
        if spec:  # DIR:K, with DIR made absolute: recompose runs from the project folder
            folder, k = spec.rsplit(":", 1)
            scenarios[scenario] = ["--add", f"{Path(folder).resolve()}:{k}"]
    scenarios["drop-candidate"] = ["--drop-candidate", "5"]
    base = work / "base-run"
    base_data = recompose(bench, work / "data" / "shipped", a.regime)
    sh(*GANPROV, "train", "--data", base_data, "--run", base, *train)
    out = work / "results.jsonl"
    for scenario, options in scenarios.items():
        if a.only and scenario not in a.only:
            continue
        data = recompose(bench, work / "data" / scenario, a.regime, *options)
        truth = f"{data}.truth.csv"
        run = work / "runs" / scenario
        # Other candidates, or unknown images of another size (the backbone also learns the real images
        # resized to it): a backbone of its own.
        if scenario == "drop-candidate" or "--scale" in options:
            sh(*GANPROV, "run", "--data", data, "--run", run, *train, "--truth", truth)
        else:
            run.mkdir(parents=True, exist_ok=True)
            for f in ("checkpoint.pt", "config.toml", "train_log.csv"):
                shutil.copy(base / f, run / f)
            sh(*GANPROV, "embed", "--data", data, "--run", run)
            sh(*GANPROV, "fit", "--run", run, "--head", "all")
            sh(*GANPROV, "predict", "--run", run, "--head", "all")
            sh(*GANPROV, "evaluate", "--run", run, "--truth", truth)
        with open(out, "a") as handle:
            added = Path(options[1].rsplit(":", 1)[0]) if options and options[0] == "--add" else None
            for row in results(run, name, scenario, a.regime, data, added):
                handle.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
