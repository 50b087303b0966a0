#!/usr/bin/env python3
"""Markdown table of scenarios.py results: python benchmarks/table.py WORK/*/results.jsonl [--heads fingerprint logreg]"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--heads", nargs="*", help="only these heads")
    a = ap.parse_args()
    rows = {}
    for path in a.results:
        for line in open(path):
            r = json.loads(line)
            if not a.heads or r["head"] in a.heads:
                rows[(r["bench"], r["regime"], r["scenario"], r["head"])] = r  # a rerun replaces its row
    print("| data | regime | scenario | head (fit on) | n | accuracy | wrong | undetermined | groups (ARI) | ECE |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows.values():
        groups = f"{r['groups']} ({r['groups_ari']:.3f})" if "groups" in r else ""
        ece = "–" if r.get("ece") is None or r["undetermined"] == 1 else f"{r['ece']:.3f}"  # –: none attributed
        print(f"| {r['bench']} | {r['regime']} | {r['scenario']} | {r['head']} ({r['fit_on']}) | {r['n']} | "
              f"{r['accuracy']:.3f} | {r['wrong']:.3f} | {r['undetermined']:.3f} | {groups} | {ece} |")


if __name__ == "__main__":
    main()
