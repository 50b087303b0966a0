#!/usr/bin/env python3
"""How well the report's warning (several generator groups attributed to one subset) flags runs with a wrong
attribution, over scenario runs already scored against their truth files by scenarios.py.

  python benchmarks/shared_warning.py WORK ...

WORK is a `scenarios.py --work` folder: its results.jsonl gives each scenario's `fingerprint` wrong share, and
runs/SCENARIO/predictions/fingerprint.groups.json the verdicts the warning reads.
"""
import json
import sys
from pathlib import Path

from ganprov.core.run_folder import RunFolder
from ganprov.models.group_evidence import shared_subsets


def main():
    counts = {(wrong, warned): 0 for wrong in (True, False) for warned in (True, False)}
    for work in map(Path, sys.argv[1:]):
        for line in (work / "results.jsonl").read_text().splitlines():
            row = json.loads(line)
            verdicts = RunFolder(work / "runs" / row["scenario"]).groups("fingerprint")
            if row["head"] != "fingerprint" or not verdicts.is_file():
                continue
            warned = bool(shared_subsets(v["subset"] for v in json.loads(verdicts.read_text())))
            counts[row["wrong"] > 0, warned] += 1
            if (row["wrong"] > 0) != warned:
                print(f"{work} {row['scenario']}: wrong {row['wrong']:.3f}, warned {warned}")
    print(f"runs with a wrong attribution: {counts[True, True]} warned, {counts[True, False]} not; "
          f"runs without: {counts[False, True]} warned, {counts[False, False]} not")


if __name__ == "__main__":
    main()
