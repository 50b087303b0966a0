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

from ganprov.pipeline.agree import agreed_labels
from ganprov.pipeline.metrics import shares
from ganprov.pipeline.truth import read_labels

RULES = ("both", "either", "veto", "favourite")


def verdicts(run: Path) -> dict[str, dict]:
    """filename → its group's verdict (subset, best, outcovered_by) in this run's fingerprint head."""
    groups = {v["group"]: v for v in json.loads((run / "predictions/fingerprint.groups.json").read_text())}
    with open(run / "predictions/fingerprint.proba.csv", newline="", encoding="utf-8") as handle:
        return {row["filename"]: groups[int(row["group"])] for row in csv.DictReader(handle)}


def score(truth_path: Path, run: Path) -> dict[str, dict[str, float]]:
    """Accuracy, wrong and undetermined shares of each training and each rule; both and either are
    `ganprov agree`'s own rules (pipeline/agree.py), veto and favourite narrow either."""
    truth = read_labels(truth_path)
    trainings = {"plain": verdicts(run), "second": verdicts(run / "second-opinion")}
    labels = {name: {n: v["subset"] for n, v in one.items()} for name, one in trainings.items()}
    found = dict(labels, both=agreed_labels(list(labels.values())),
                 either=agreed_labels(list(labels.values()), "either"))
    rejected = {n for one in trainings.values() for n, v in one.items() if v.get("outcovered_by") is not None}
    found["veto"] = {n: 0 if n in rejected else label for n, label in found["either"].items()}
    # Each training gives the label or, undetermined, favours it.
    found["favourite"] = {n: label if all(label in (one[n]["subset"], one[n]["best"]) for one in trainings.values())
                          else 0 for n, label in found["veto"].items()}
    names = sorted(truth)
    return {rule: shares([truth[n] for n in names], [given[n] for n in names]) for rule, given in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", type=Path, help="the unknown set's truth file")
    parser.add_argument("runs", nargs="+", type=Path, help="audit run folders of that unknown set")
    args = parser.parse_args()
    columns = ("plain", "second") + RULES
    print("| run | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for run in args.runs:
        found = score(args.truth, run)
        print(f"| {run} | " + " | ".join(
            f"{found[c]['accuracy']:.3f}" + (f" ({found[c]['wrong']:.3f} wrong)" if found[c]["wrong"] else "")
            for c in columns) + " |")


if __name__ == "__main__":
    main()
