"""Reading a truth CSV (header-less `filename,label`, like a submission) and checking it fits the unknown set."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from ganprov.core.errors import GanprovError


class TruthError(GanprovError):
    """A truth file that does not describe the unknown set; the message lists the first offending rows."""


def first(items, n=5) -> str:
    items = list(items)
    return ", ".join(map(str, items[:n])) + (f" (and {len(items) - n} more)" if len(items) > n else "")


def read_labels(path: str | Path) -> dict[str, int]:
    """filename → label of a header-less `filename,label` CSV (a truth file or a submission); TruthError for a
    missing or malformed file or a name given twice."""
    path = Path(path)
    if not path.is_file():
        raise TruthError(f"{path} does not exist")
    try:  # utf-8-sig: a byte-order mark (spreadsheet export) is not part of the first file name
        with open(path, newline="", encoding="utf-8-sig") as handle:
            numbered = [(i, row) for i, row in enumerate(csv.reader(handle), 1) if row]
    except (UnicodeDecodeError, csv.Error) as error:
        raise TruthError(f"{path} is not a UTF-8 CSV file: {error}") from None
    except OSError as error:  # unreadable: permissions, a folder, a vanished mount
        raise TruthError(f"{path} cannot be read: {error.strerror or error}") from None
    malformed = [f"line {i}: {row}" for i, row in numbered
                 if len(row) != 2 or not (row[1].strip().isascii() and row[1].strip().isdigit())]
    if malformed:
        raise TruthError(f"{path}: rows must be `filename,label` without a header; bad rows: {first(malformed)}")
    counts = Counter(name for _, (name, _) in numbered)
    duplicates = [name for name, n in counts.items() if n > 1]
    if duplicates:
        raise TruthError(f"{path}: duplicated names: {first(duplicates)}")
    return {name: int(label) for _, (name, label) in numbered}


def read_truth(path: str | Path, filenames: list[str], subsets: list[int]) -> dict[str, int]:
    """filename → label for exactly the given unknown file names; TruthError otherwise."""
    truth = read_labels(path)
    known = set(filenames)
    unknown = [name for name in truth if name not in known]
    missing = [name for name in filenames if name not in truth]
    # 0: from a generator of none of the candidate subsets (its images should come out undetermined)
    outside = [f"{name},{label}" for name, label in truth.items() if label not in [0, *subsets]]
    problems = [(unknown, "names not in the unknown set"), (missing, "unknown images without a label"),
                (outside, f"labels outside {[0, *subsets]}")]
    found = [f"{what}: {first(items)}" for items, what in problems if items]
    if found:
        raise TruthError(f"{path} does not fit the unknown set: " + "; ".join(found))
    return truth
