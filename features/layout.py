"""The challenge's data layout: real/<subset>/, generated/<subset>/ (optional), generated_unknown/.

A subset's label is the number in its folder name (`t3`, `gen_t3` and `subset_03` all mean 3), so K is
whatever the data holds. Paths are relative to the data root, POSIX-style, sorted: the row order of every
file ganprov writes follows from this module alone. No torch here: stage 2 may import it. Subset 0 is refused:
label 0 means undetermined.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import GanprovError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
SPLITS = ("real", "generated", "unknown")
FOLDERS = {"real": "real", "generated": "generated", "unknown": "generated_unknown"}
HOLDOUT_FRACTION = 0.2


class LayoutError(GanprovError):
    """The data folder is not laid out as ganprov needs; the message is one sentence for the user."""


@dataclass(frozen=True)
class Split:
    name: str
    paths: tuple[str, ...]  # relative to the data root
    labels: tuple[int, ...]  # subset numbers; 0 where unknown

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class Layout:
    root: Path
    subsets: tuple[int, ...]  # sorted subset numbers, e.g. (1, 2, 3, 4, 5)
    splits: dict[str, Split]  # only the splits present on disk

    @property
    def regime(self) -> str:
        """"challenge" when labelled generated images exist, "audit" when only real subsets do."""
        return "challenge" if "generated" in self.splits else "audit"

    @property
    def validation_split(self) -> str:
        """Where held-out images for validation come from: the generators' output when we have it."""
        return "generated" if "generated" in self.splits else "real"

    def heldout(self, split: str, seed: int) -> np.ndarray:
        """Rows of `split` that no training or fitting may see: a seeded, per-subset fifth of the
        validation split; nothing elsewhere."""
        labels = np.asarray(self.splits[split].labels)
        if split != self.validation_split:
            return np.zeros(len(labels), dtype=bool)
        return stratified_holdout(labels, seed)


def stratified_holdout(labels: np.ndarray, seed: int, fraction: float = HOLDOUT_FRACTION) -> np.ndarray:
    """A seeded `fraction` of each label's rows (at least one when a label has two or more)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        n = max(1, round(len(rows) * fraction)) if len(rows) >= 2 else 0
        mask[rng.permutation(rows)[:n]] = True
    return mask


def subset_number(folder: Path) -> int:
    numbers = re.findall(r"\d+", folder.name)
    if not numbers:
        raise LayoutError(f"subset folder {folder} has no number in its name (expected e.g. t1 or gen_t1)")
    if int(numbers[-1]) == 0:
        raise LayoutError(f"subset folder {folder} is numbered 0, the label of undetermined images: number subsets from 1")
    return int(numbers[-1])


def raise_error(error: OSError) -> None:
    raise error


def utf8_path(path: str) -> str:
    """`path`, refused unless it is valid UTF-8: the HDF5 and CSV files name every row by its path."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise LayoutError(f"file name {os.fsencode(path)!r} is not valid UTF-8: rename it") from None
    return path


def list_images(folder: Path, root: Path) -> list[str]:
    """Image files below `folder`, nested folders included, hidden files skipped, sorted."""
    found = []
    # followlinks=False: a symlink loop cannot trap the walk. onerror: a folder that cannot be listed stops
    # discover() instead of silently adding no images (os.walk ignores such errors by default).
    for dirpath, dirnames, filenames in os.walk(folder, onerror=raise_error, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(utf8_path(Path(dirpath, name).relative_to(root).as_posix()))
    return sorted(found)


def labelled_split(name: str, root: Path) -> tuple[Split, list[int]]:
    """The images of real/ or generated/, labelled by subset, and the subset numbers found."""
    folder = root / FOLDERS[name]
    by_number: dict[int, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        number = subset_number(sub)
        if number in by_number:
            raise LayoutError(f"{by_number[number]} and {sub} both name subset {number}")
        by_number[number] = sub
    if not by_number:
        raise LayoutError(f"{folder} holds no subset folders (expected {folder}/t1, {folder}/t2, ...)")
    paths, labels = [], []
    for number, sub in sorted(by_number.items()):
        files = list_images(sub, root)
        paths += files
        labels += [number] * len(files)
    return Split(name, tuple(paths), tuple(labels)), sorted(by_number)


def discover(root: str | os.PathLike) -> Layout:
    """Read the layout under `root`; raise LayoutError with one clear sentence when it does not fit."""
    root = Path(root)
    try:
        return read_layout(root)
    except OSError as error:  # a folder inside that cannot be listed (permissions, I/O errors)
        raise LayoutError(f"cannot read {error.filename or root}: {error.strerror or error}") from None


def read_layout(root: Path) -> Layout:
    if not root.is_dir():
        raise LayoutError(f"data folder {root} does not exist or is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise LayoutError(f"data folder {root} cannot be read (permission denied)")
    if not (root / "real").is_dir():
        raise LayoutError(f"{root} has no real/ folder: expected {root}/real/t1, {root}/real/t2, ...")
    real, numbers = labelled_split("real", root)
    empty = sorted(set(numbers) - set(real.labels))
    if empty:
        raise LayoutError(f"{root}/real has no images for subset(s) {empty}: every candidate subset needs some")
    if len(numbers) < 2:
        raise LayoutError(f"{root}/real needs at least two subset folders, found {len(numbers)}")
    splits, subsets = {"real": real}, tuple(numbers)
    if (root / "generated").is_dir():
        generated, _ = labelled_split("generated", root)
        extra = sorted(set(generated.labels) - set(subsets))
        if extra:
            raise LayoutError(f"{root}/generated names subsets {extra} that real/ does not have")
        if len(generated):
            splits["generated"] = generated
    unknown_dir = root / FOLDERS["unknown"]
    if unknown_dir.is_dir():
        paths = tuple(list_images(unknown_dir, root))
        splits["unknown"] = Split("unknown", paths, (0,) * len(paths))
    return Layout(root, subsets, splits)
