"""The challenge's data layout: real/<subset>/, generated/<subset>/ (optional), generated_unknown/.

A subset's label is the number in its folder name (`t3`, `gen_t3` and `subset_03` all mean 3), so K is
whatever the data holds. Paths are relative to the data root, POSIX-style, sorted: the row order of every
file ganprov writes follows from this module alone. No torch here: stage 2 may import it. Subset 0 is refused:
label 0 means undetermined.

Symlinks: the folders that lay DATA out (real/, generated/, generated_unknown/ and each subset folder) may
link anywhere: that is how a data set is assembled without copying (the challenge's own tools link real/ and
generated/ into every recomposed set). Below them a symlink, to a file or a folder, is followed only when its
target stays inside DATA or inside the subset (or generated_unknown) folder it sits in, so a subset holds
exactly what its folder holds; a link leading elsewhere, or into a folder already walked (a loop), is skipped
with a warning on stderr. One real file reachable under two subset labels (say real/t2 a link to real/t1) is
refused with a LayoutError naming both paths; under one label, each path to it is its own row.
"""
from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import schema, volumes
from .errors import GanprovError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
SPLITS = ("real", "generated", "unknown")
FOLDERS = {"real": "real", "generated": "generated", "unknown": "generated_unknown"}
HOLDOUT_FRACTION = 0.2
# The undetermined rule (models/group_evidence.py) trusts a vote only as far as held-out images show what it
# is worth: from a fifth of a small subset (11 of 55) that stays too uncertain to attribute anything, so a
# subset holds out at least this many images, or half of them when it has fewer than twice as many.
MIN_HELDOUT = 20


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
        return schema.regime(self.splits)

    @property
    def validation_split(self) -> str:
        """Where held-out images for validation come from: the generators' output when we have it."""
        return schema.validation_group(self.splits)

    def heldout(self, split: str, seed: int, at_least: int) -> np.ndarray:
        """Rows of `split` that no training or fitting may see: a seeded, per-subset fifth of the
        validation split (more for small subsets: `stratified_holdout`); nothing elsewhere. `at_least` has no
        default: a run's split must come from its own settings (runs saved before MIN_HELDOUT used 0)."""
        labels = np.asarray(self.splits[split].labels)
        if split != self.validation_split:
            return np.zeros(len(labels), dtype=bool)
        return stratified_holdout(labels, seed, at_least)


def stratified_holdout(labels: np.ndarray, seed: int, at_least: int, fraction: float = HOLDOUT_FRACTION) -> np.ndarray:
    """A seeded `fraction` of each label's rows, but at least `at_least` of them, or half where a label has
    fewer than twice as many (at least one when a label has two or more)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        n = max(1, round(len(rows) * fraction), min(at_least, len(rows) // 2)) if len(rows) >= 2 else 0
        mask[rng.permutation(rows)[:n]] = True
    return mask


def subset_number(folder: Path) -> int:
    numbers = re.findall(r"\d+", folder.name)
    if not numbers:
        raise LayoutError(f"subset folder {folder} has no number in its name (expected e.g. t1 or gen_t1)")
    if int(numbers[-1]) == 0:
        raise LayoutError(f"subset folder {folder} is numbered 0, the label of undetermined images: number subsets from 1")
    return int(numbers[-1])


@functools.cache  # once per process: train and embed in `ganprov run` each read the layout
def warn(message: str) -> None:
    print(f"ganprov: warning: {message}", file=sys.stderr)


def inside(real: str, real_root: str) -> bool:
    return os.path.commonpath([real, real_root]) == real_root


def raise_error(error: OSError) -> None:
    raise error


def utf8_path(path: str) -> str:
    """`path`, refused unless it is valid UTF-8: the HDF5 and CSV files name every row by its path."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise LayoutError(f"file name {os.fsencode(path)!r} is not valid UTF-8: rename it") from None
    return path


def list_images(folder: Path, root: Path, slice_axis: int = 2) -> list[str]:
    """Images below `folder`, nested folders included, hidden files skipped, sorted: one per ordinary file,
    one per frame or slice of a DICOM or NIfTI file (core/volumes.py)."""
    try:
        return sorted(image_files(folder, root, slice_axis), key=volumes.item_order)
    except OSError as error:
        raise unreadable(error, folder) from None


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES or volumes.is_dicom(name) or volumes.is_nifti(name)


def image_files(folder: Path, root: Path, slice_axis: int = 2) -> dict[str, str]:
    """Images below `folder` (path relative to `root` → real path, `#N` after both for a frame or slice),
    symlinks followed by the rule above."""
    allowed = (os.path.realpath(root), os.path.realpath(folder))
    found, walked, skipped = {}, set(), []

    def real_path(path: Path, real_parent: str) -> str | None:
        """Where `path` leads; None, noted in `skipped`, for a link out of DATA and out of `folder`, or into a
        folder already walked."""
        real = os.path.realpath(path) if path.is_symlink() else os.path.join(real_parent, path.name)
        if not any(inside(real, top) for top in allowed):
            skipped.append(f"{path} (a symlink to {real}, outside the data folder and {folder.name}/)")
        elif real in walked:  # only through a symlink: following it again would loop, or list it twice
            what = f"a symlink to {real}" if path.is_symlink() else "listed already through a symlink to it"
            skipped.append(f"{path} ({what}, a folder already listed)")
        else:
            return real
        return None

    # followlinks=True with the folders already walked pruned: links inside DATA are followed and a loop cannot
    # trap the walk. onerror: a folder that cannot be listed stops discover() instead of silently adding no
    # images (os.walk ignores such errors by default).
    for dirpath, dirnames, filenames in os.walk(folder, onerror=raise_error, followlinks=True):
        real_dir = os.path.realpath(dirpath)
        walked.add(real_dir)
        # Sorted: which of two paths to one folder is listed must not depend on the file system's order.
        dirnames[:] = [d for d in sorted(dirnames) if not d.startswith(".") and real_path(Path(dirpath, d), real_dir)]
        for name in filenames:
            if name.startswith(".") or not is_image_name(name):
                continue
            if real := real_path(Path(dirpath, name), real_dir):
                relative = utf8_path(Path(dirpath, name).relative_to(root).as_posix())
                for item in volumes.items(Path(real), relative, slice_axis):
                    found[item] = real + item[len(relative):]
    if skipped:
        warn(f"skipped {len(skipped)} symlink(s) under {folder}: {skipped[0]}"
             + (f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""))
    return found


def labelled_split(name: str, root: Path, owners: dict[str, tuple[str, int]], slice_axis: int = 2
                   ) -> tuple[Split, list[int]]:
    """The images of real/ or generated/, labelled by subset, and the subset numbers found. `owners` maps each
    real file seen so far to its first path and label: one file may not carry two labels."""
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
        files = image_files(sub, root, slice_axis)
        for path, real in files.items():
            first, label = owners.setdefault(real, (path, number))
            if label != number:
                raise LayoutError(f"{root / first} and {root / path} are the same file under subsets {label} and "
                                  f"{number} (through a symlink): remove one")
        paths += sorted(files, key=volumes.item_order)
        labels += [number] * len(files)
    return Split(name, tuple(paths), tuple(labels)), sorted(by_number)


def refuse_run_inside(root: str | os.PathLike, run: str | os.PathLike) -> None:
    """Refuse a run folder inside one of the data's image folders: the PNGs ganprov writes into the run (plots,
    figures) would be read back as images of that folder."""
    run = Path(run).resolve()
    for name in FOLDERS.values():
        folder = (Path(root) / name).resolve()
        if run == folder or folder in run.parents:
            raise LayoutError(f"run folder {run} lies inside the image folder {folder}, which ganprov reads "
                              "images from: choose a run folder outside it")


def discover(root: str | os.PathLike, slice_axis: int = 2) -> Layout:
    """Read the layout under `root` (NIfTI volumes sliced along `slice_axis`); raise LayoutError with one
    clear sentence when it does not fit."""
    root = Path(root)
    try:
        return read_layout(root, slice_axis)
    except OSError as error:
        raise unreadable(error, root) from None


def unreadable(error: OSError, where: Path) -> LayoutError:
    """A folder inside `where` that cannot be listed (permissions, I/O errors), in one line."""
    return LayoutError(f"cannot read {error.filename or where}: {error.strerror or error}")


def read_layout(root: Path, slice_axis: int = 2) -> Layout:
    if not root.is_dir():
        raise LayoutError(f"data folder {root} does not exist or is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise LayoutError(f"data folder {root} cannot be read (permission denied)")
    present = {name: folder for name, folder in FOLDERS.items() if (root / folder).is_dir()}
    if "real" not in present:
        raise LayoutError(f"{root} has no real/ folder: expected {root}/real/t1, {root}/real/t2, ...")
    owners: dict[str, tuple[str, int]] = {}
    real, numbers = labelled_split("real", root, owners, slice_axis)
    empty = sorted(set(numbers) - set(real.labels))
    if empty:
        raise LayoutError(f"{root}/real has no images for subset(s) {empty}: every candidate subset needs some")
    if len(numbers) < 2:
        raise LayoutError(f"{root}/real needs at least two subset folders, found {len(numbers)}")
    splits, subsets = {"real": real}, tuple(numbers)
    if "generated" in present:
        generated, _ = labelled_split("generated", root, owners, slice_axis)
        extra = sorted(set(generated.labels) - set(subsets))
        if extra:
            raise LayoutError(f"{root}/generated names subsets {extra} that real/ does not have")
        if len(generated):
            splits["generated"] = generated
            uncovered = sorted(set(subsets) - set(generated.labels))
            if uncovered:
                warn(f"{root}/generated has no images of subset(s) {uncovered}: validation measures the other "
                     "subsets only, and heads are not fitted on generated images alone")
    if "unknown" in present:
        paths = tuple(list_images(root / FOLDERS["unknown"], root, slice_axis))
        if paths:  # an empty generated_unknown/ is as if absent: nothing to attribute
            splits["unknown"] = Split("unknown", paths, (0,) * len(paths))
    return Layout(root, subsets, splits)
