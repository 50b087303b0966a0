#!/usr/bin/env python3
"""Markdown table of scenarios.py results, one row per benchmark, regime and scenario: logreg (the paper's
recipe in the audit regime, the previous default in the challenge regime) beside the default fingerprint head.

  python benchmarks/table.py WORK/*/results.jsonl
"""
import argparse
import json
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    rows = {}
    for path in a.results:
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            rows.setdefault((r["bench"], r["regime"], r["scenario"]), {})[r["head"]] = r  # a rerun replaces
    print("| data | regime | scenario | n | logreg: accuracy | wrong | **fingerprint: accuracy** | wrong "
          "| undetermined | groups (ARI) | ECE |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (bench, regime, scenario), heads in rows.items():
        lr, fp = heads.get("logreg"), heads.get("fingerprint")
        if not (lr and fp):
            continue
        ece = "–" if fp.get("ece") is None or fp["undetermined"] == 1 else f"{fp['ece']:.3f}"  # –: none attributed
        print(f"| {bench} | {regime} | {scenario} | {fp['n']} | {lr['accuracy']:.3f} | {lr['wrong']:.3f} | "
              f"**{fp['accuracy']:.3f}** | {fp['wrong']:.3f} | {fp['undetermined']:.3f} | "
              f"{groups(fp)} | {ece} |")


def groups(row: dict) -> str:
    """Generator groups found and their ARI; – where the head attributed image by image."""
    return f"{row['groups']} ({row['groups_ari']:.3f})" if "groups" in row else "– (image by image)"


if __name__ == "__main__":
    main()
