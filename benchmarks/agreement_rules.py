#!/usr/bin/env python3
"""Rules for combining an audit run's two trainings (the plain one and its second opinion), per image, from
each one's `fingerprint` verdicts (predictions/fingerprint.proba.csv: each image's group; .groups.json: each
group's verdict), scored against the truth file afterwards (read only to score):

  both     the label where both trainings give it, 0 elsewhere (submission.csv, the default)
  either   a label one training gives, unless the other gives another subset
  veto     either, but an undetermined training vetoes where the coverage check made its group undetermined
           (another group covers that subset's images more: the mark of a look-alike, absent candidate)
  favourite veto, and the undetermined training's favourite (its best subset, even if not significant) must
           be the same subset

Measured on 2026-12-08 (README, "Either training, unless the other contradicts it"): veto gained on mri-slab's
imbalanced set but attributed a present candidate's generator wrongly in its `drop-candidate` set, where both
kept it out; both stays `run`'s rule.

  python benchmarks/agreement_rules.py TRUTH.csv RUN [RUN ...]      # audit runs of one unknown set
"""
import argparse
import csv
import json
from pathlib import Path

from ganprov.pipeline.metrics import shares
from ganprov.pipeline.truth import read_labels

RULES = ("both", "either", "veto", "favourite")


def verdicts(run: Path) -> dict[str, dict]:
    """filename → its group's verdict (subset, best, outcovered_by) in this run's fingerprint head."""
    groups = {v["group"]: v for v in json.loads((run / "predictions/fingerprint.groups.json").read_text())}
    with open(run / "predictions/fingerprint.proba.csv", newline="", encoding="utf-8") as handle:
        return {row["filename"]: groups[int(row["group"])] for row in csv.DictReader(handle)}


def combine(a: dict, b: dict, rule: str) -> int:
    """One image's label from its two groups' verdicts under `rule`."""
    if a["subset"] and b["subset"]:
        return a["subset"] if a["subset"] == b["subset"] else 0
    if rule == "both" or not (a["subset"] or b["subset"]):
        return 0
    given, other = (a, b) if a["subset"] else (b, a)
    if rule in ("veto", "favourite") and other.get("outcovered_by") is not None:
        return 0
    if rule == "favourite" and other["best"] != given["subset"]:
        return 0
    return given["subset"]


def score(truth_path: Path, run: Path) -> dict[str, dict[str, float]]:
    truth = read_labels(truth_path)
    first, second = verdicts(run), verdicts(run / "second-opinion")
    names = sorted(truth)
    found = {}
    for rule in RULES:
        labels = [combine(first[n], second[n], rule) for n in names]
        found[rule] = shares([truth[n] for n in names], labels)
    for name, one in (("plain", first), ("second", second)):
        found[name] = shares([truth[n] for n in names], [one[n]["subset"] for n in names])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", type=Path, help="the unknown set's truth file")
    parser.add_argument("runs", nargs="+", type=Path, help="audit run folders of that unknown set")
    args = parser.parse_args()
    runs = [(str(run), args.truth, run) for run in args.runs]
    columns = ("plain", "second") + RULES
    print("| run | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for label, truth, run in runs:
        found = score(truth, run)
        print(f"| {label} | " + " | ".join(
            f"{found[c]['accuracy']:.3f}" + (f" ({found[c]['wrong']:.3f} wrong)" if found[c]["wrong"] else "")
            for c in columns) + " |")


if __name__ == "__main__":
    main()
