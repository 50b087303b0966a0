"""`ganprov agree`: keep an attribution only where independent runs give the same one.

Two backbones trained differently (with and without --augment) read the same real images, and their content
votes on generated images are right together or wrong in different ways: on the benchmarks where one training
attributed a generator wrongly with full support, the other gave that generator another subset (README, "Two
trainings that must agree"). Two seeds of one recipe are not different enough: on the 128-px benchmark both
sent the same generator to the same wrong subset. An image keeps its label only when every run gives
it the same one; otherwise it is undetermined (label 0). So agreement can only turn attributions into label
0, never change one: the price is the right attributions one run alone would have made.

With `either`, an undetermined run abstains instead: an image keeps the one subset the runs give it unless
two of them give different subsets. That is for runs that are agreements already, each of which decides
generators the other leaves undetermined; it keeps every wrong attribution either makes (README, "Content at
half resolution": the two trainings' agreement at full and at half --content-resolution, measured and not
made the default).
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from ganprov.core.atomic import output_file, write_csv
from ganprov.core.errors import GanprovError
from ganprov.core.run_folder import RunFolder

from .metrics import shares
from .truth import first, read_labels


def submission_of(source: str | Path) -> Path:
    """A run folder's submission.csv, or the CSV given."""
    source = Path(source)
    return RunFolder(source).submission if source.is_dir() else source


def read_attribution(path: Path) -> dict[str, int]:
    """filename → label of a submission-style CSV, or path → label of `ganprov score`'s CSV (its header
    `path,label,confidence`), so batches scored by two runs can be agreed too."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            first_line = handle.readline()
    except (OSError, UnicodeDecodeError):  # read_labels names the file and the reason
        first_line = ""
    if not first_line.startswith("path,label,"):
        return read_labels(path)
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    bad = [f"line {i}: {row}" for i, row in enumerate(rows, 2) if not str(row["label"]).isdigit()]
    if bad:
        raise GanprovError(f"{path}: labels must be whole numbers; bad rows: {first(bad)}")
    labels = {row["path"]: int(row["label"]) for row in rows}
    if len(labels) != len(rows):
        raise GanprovError(f"{path}: a path is given more than once")
    return labels


def refuse_other_images(path, names: set[str], reference, reference_names: set[str], problem: str) -> None:
    """GanprovError naming the images only one of the two files has, unless both have the same."""
    if names != reference_names:
        raise GanprovError(f"{path} {problem.format(reference=reference)}: only in {path}: "
                           f"{first(sorted(names - reference_names))}; only in {reference}: "
                           f"{first(sorted(reference_names - names))}")


def agreed(labels: list[np.ndarray]) -> np.ndarray:
    """The label every attribution gives each image, 0 where any two differ (arrays in one image order)."""
    one, *others = labels
    return np.where(np.logical_and.reduce([other == one for other in others]), one, 0)


def either(labels: list[np.ndarray]) -> np.ndarray:
    """The one subset the attributions give each image, 0s abstaining; 0 where two give different subsets."""
    given = np.stack(labels)
    top = given.max(axis=0)
    return np.where(np.all((given == 0) | (given == top), axis=0), top, 0)


RULES = {"all": agreed, "either": either}


def agreed_labels(attributions: list[dict[str, int]], rule: str = "all") -> dict[str, int]:
    """filename → the label every attribution gives it (rule all) or the one subset they give it, an undetermined
    one abstaining (rule either); 0 where two give different subsets."""
    names = list(attributions[0])
    labels = RULES[rule]([np.array([attribution[name] for name in names]) for attribution in attributions])
    return dict(zip(names, labels.tolist()))


def agree(sources: list[str | Path], out: str | Path, truth: str | Path | None = None, rule: str = "all") -> dict[str, int]:
    """Write the agreed `filename,label` CSV to `out` and return it; the sources must attribute the same images.
    With `truth`, print accuracy, wrong and undetermined shares of each source and of the agreed labels."""
    if len(sources) < 2:
        raise GanprovError("agree needs at least two runs or submission files")
    paths = [submission_of(s) for s in sources]
    attributions = [read_attribution(p) for p in paths]
    names = set(attributions[0])
    for path, labels in zip(paths[1:], attributions[1:]):
        refuse_other_images(path, set(labels), paths[0], names, "and {reference} attribute different images")
    truth_of = None
    if truth is not None:  # checked before anything is written: a mismatched truth file leaves no --out behind
        truth_of = read_labels(truth)
        refuse_other_images(truth, set(truth_of), paths[0], names, "does not fit {reference}")
    agreed = agreed_labels(attributions, rule)
    write_csv(output_file(out, ".csv", "--out"), sorted(agreed.items()), escape_formulas=False)
    pairs = Counter(tuple(labels[name] for labels in attributions) for name in agreed)
    kept = sum(1 for label in agreed.values() if label)
    alike = "by every run alike" if rule == "all" else "with no run giving another subset"
    print(f"{len(agreed)} images: {kept} attributed {alike}, {len(agreed) - kept} undetermined → {out}")
    print("labels given by " + " / ".join(str(p) for p in paths) + ": images")
    for labels, count in sorted(pairs.items(), key=lambda item: -item[1]):
        differ = len(set(labels) - ({0} if rule == "either" else set())) > 1
        print(f"  {' / '.join(map(str, labels))}: {count}" + ("  (differ → 0)" if differ else ""))
    if truth_of is not None:
        names_in_order = sorted(names)
        expected = [truth_of[name] for name in names_in_order]
        kind = "agreed" if rule == "all" else "either"
        for what, labels in [*zip(map(str, paths), attributions), (f"{kind} ({out})", agreed)]:
            figures = shares(expected, [labels[name] for name in names_in_order])
            print(f"against {truth}: {what}: accuracy {figures['accuracy']:.3f}, wrong {figures['wrong']:.3f}, "
                  f"undetermined {figures['undetermined']:.3f}")
    return agreed
