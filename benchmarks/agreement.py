#!/usr/bin/env python3
"""The second opinion on benchmark scenarios: the default head's attributions by the backbone trained without
augmentation, by the one trained with it, and their agreement (`ganprov agree`, what `ganprov run` writes to
submission.csv in the audit regime), each against the scenario's truth file; then per benchmark the expected
calibration error of each, pooled over its scenarios (the agreement's confidence: the smaller of the two, as
`ganprov score` writes it).

  python benchmarks/agreement.py SC SC-AUG     # scenarios.py --work folders, --no-augment and --augment
  python benchmarks/agreement.py SC SC-AUG --more SC-AUG1 SC-AUG2   # augmented trainings of other seeds

  python benchmarks/agreement.py SC SC-AUG --resolution SC-HALF SC-HALF-AUG   # the same at another resolution

With --resolution, two more columns, only for runs found in all four folders: the other pair's agreement, and
either (each pair's agreement, kept where the other pair's is the same or undetermined: 0 where they contradict).

With --more, two more columns, only for runs found in every folder: majority keeps the plain training's label
where more than half of all the augmented trainings give it (the majority of three seeds, say); veto keeps it
where at least one of them gives it and none gives another subset (an undetermined seed abstains).

Every scenario run found in both (WORK/BENCH-REGIME/runs/SCENARIO) gives one table row; where SC-AUG has
none, the plain run's own second opinion (RUN/second-opinion, which `ganprov run` trains in the audit regime)
stands in for it. The truth files are read only to score.
"""
import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from ganprov.pipeline.agree import agreed_labels
from ganprov.pipeline.metrics import calibration, shares
from ganprov.pipeline.truth import read_labels


def figures(truth: dict[str, int], labels: dict[str, int]) -> str:
    names = sorted(truth)
    m = shares([truth[n] for n in names], [labels[n] for n in names])
    return f"{m['accuracy']:.3f} | {m['wrong']:.3f} | {m['undetermined']:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plain", type=Path)
    ap.add_argument("augmented", type=Path)
    ap.add_argument("--head", default="fingerprint")
    ap.add_argument("--more", nargs="+", type=Path, default=[], help="--augment folders of other seeds")
    ap.add_argument("--resolution", nargs=2, type=Path, metavar=("SC", "SC-AUG"),
                    help="the same two trainings at another --content-resolution")
    a = ap.parse_args()
    kinds = (["plain", "augmented", "agreed"] + (["majority", "veto"] if a.more else [])
             + (["other resolution agreed", "either"] if a.resolution else []))
    print("| data | scenario | " + " | ".join(bold(f"{kind}: accuracy", kind) + " | wrong | undetermined"
                                             for kind in kinds) + " |")
    print("|---|---|" + "---|---|---|" * len(kinds))
    pooled = defaultdict(list)  # (benchmark, which) → (truth, label, confidence) of every image
    for bench, scenario, run, other, truth in paired_runs(a.plain, a.augmented, a.head):
        more = [folder / run.relative_to(a.plain) for folder in a.more]
        other_pair = [folder / run.relative_to(a.plain) for folder in a.resolution or []]
        if not all(path.is_file() for path in more + other_pair):
            continue
        (c1, plain), (c2, augmented) = confidences(run), confidences(other)
        seeds = [(c2, augmented)] + [confidences(path) for path in more]
        found = {"plain": (plain, c1), "augmented": (augmented, c2),
                 "agreed": (agreed_labels([plain, augmented]), minimum([c1, c2]))}
        if a.more:
            found["majority"] = kept_where(majority, plain, c1, seeds)
            found["veto"] = kept_where(veto, plain, c1, seeds)
        if a.resolution:
            (c3, low), (c4, low_augmented) = map(confidences, other_pair)
            found["other resolution agreed"] = agreed_labels([low, low_augmented]), minimum([c3, c4])
            found["either"] = either(found["agreed"], found["other resolution agreed"])
        print(f"| {bench} | {scenario} | "
              + " | ".join(bold(figures(truth, labels), kind) for kind, (labels, _) in found.items()) + " |")
        for name in sorted(truth):
            for what, (labels, c) in found.items():
                pooled[bench, what].append((truth[name], labels[name], c[name]))
    print(f"\n| data | pooled ECE: {' | '.join(kinds)} |\n|---|" + "---|" * len(kinds))
    for bench in sorted({b for b, _ in pooled}):
        eces = [calibration(*np.array(pooled[bench, what]).T)["ece"] for what in kinds]
        print(f"| {bench} | " + " | ".join("–" if e is None else f"{e:.3f}" for e in eces) + " |")


def bold(text: str, kind: str) -> str:
    """The default's columns stand out: the agreement is what `ganprov run` submits."""
    return f"**{text}**" if kind == "agreed" else text


def minimum(confidences: list[dict[str, float]]) -> dict[str, float]:
    return {name: min(c[name] for c in confidences) for name in confidences[0]}


def kept_where(rule, plain: dict[str, int], plain_confidence: dict[str, float], seeds: list) -> tuple[dict, dict]:
    """The plain label where rule(label, the seeds' labels) holds, else 0; the confidence of a kept label: the
    smallest of the plain training's and the agreeing seeds'."""
    labels, confidence = {}, {}
    for name, label in plain.items():
        agreeing = [c[name] for c, seed in seeds if seed[name] == label]
        kept = label != 0 and rule(label, [seed[name] for _, seed in seeds])
        labels[name] = label if kept else 0
        confidence[name] = min([plain_confidence[name], *agreeing]) if kept else plain_confidence[name]
    return labels, confidence


def either(first: tuple[dict, dict], second: tuple[dict, dict]) -> tuple[dict, dict]:
    """`ganprov agree --either` of two agreements; the confidence of a label only one gives is that one's, else
    the smaller of the two."""
    (a, ca), (b, cb) = first, second
    labels = agreed_labels([a, b], "either")
    confidence = {n: ca[n] if a[n] and not b[n] else cb[n] if b[n] and not a[n] else min(ca[n], cb[n]) for n in a}
    return labels, confidence


def majority(label: int, given: list[int]) -> bool:
    """More than half of the augmented seeds give the label."""
    return 2 * given.count(label) > len(given)


def veto(label: int, given: list[int]) -> bool:
    """At least one seed gives the label and none another subset (an undetermined seed abstains)."""
    return label in given and all(g in (0, label) for g in given)


def paired_runs(plain: Path, augmented: Path, head: str):
    """(benchmark, scenario, plain RUN/predictions/HEAD.csv, its augmented twin, truth) of every audit scenario
    run with both trainings."""
    for run in sorted(plain.glob(f"*-audit/runs/*/predictions/{head}.csv")):
        scenario, bench = run.parents[1].name, run.parents[3].name.removesuffix("-audit")
        other = augmented / run.relative_to(plain)
        if not other.is_file():  # the run's own second opinion, trained with augmentation
            other = run.parents[1] / "second-opinion" / run.relative_to(run.parents[1])
        if other.is_file():
            yield bench, scenario, run, other, read_labels(run.parents[3] / "data" / f"{scenario}.truth.csv")


def confidences(predictions: Path) -> tuple[dict[str, float], dict[str, int]]:
    """filename → confidence and → label, from the head's NAME.proba.csv beside its NAME.csv (same labels)."""
    with open(predictions.with_suffix(".proba.csv"), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return ({r["filename"]: float(r["confidence"]) for r in rows}, {r["filename"]: int(r["label"]) for r in rows})


if __name__ == "__main__":
    main()
