"""A list of image files to embed into one group of an embeddings file, and the key that says whether a cached
file was made from them."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ganprov.core import volumes

from . import distributed


@dataclass(frozen=True)
class ImageList:
    """One group to write: its files (relative to root), labels, held-out flags and each file's stamp."""
    name: str
    paths: tuple[str, ...]
    labels: tuple[int, ...]
    heldout: np.ndarray
    stamps: tuple[str, ...]  # size and modification time per file (file_stamps)
    through: tuple[int, int] | None = None  # (width, height) each image is resized to first (features/channel.py)
    resized_from: tuple[int, int] | None = None  # with `through`: the images' own usual size

    @classmethod
    def stamped(cls, name: str, root: Path, paths: tuple[str, ...], labels: tuple[int, ...],
                heldout: np.ndarray) -> ImageList:
        """The list with each file's stamp taken now."""
        return cls(name, paths, labels, heldout, file_stamps(root, paths))

    @property
    def files_sha256(self) -> str:
        """The cache key: names, sizes and modification times, so other pixels under the same names (a
        replaced image, next month's batch) make an embeddings file stale instead of silently reused."""
        key = "\n".join(f"{p}\t{s}" for p, s in zip(self.paths, self.stamps))
        if self.through is not None:  # the same files through another resize are other rows
            key += "\nthrough\t{}x{}".format(*self.through)
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def heldout_sha256(self) -> str:
        """Which files are held out for validation: another regime or split makes a cached file stale."""
        return hashlib.sha256(np.packbits(np.asarray(self.heldout, dtype=bool)).tobytes()).hexdigest()

    def share(self, world: distributed.World, batch_size: int) -> ImageList:
        """This process's contiguous run of whole batches: every image lands in the batch it would have
        in one process, and the shards, concatenated in rank order, give back the whole list."""
        batches = -(-len(self.paths) // batch_size)
        start, stop = (batches * rank // world.size * batch_size for rank in (world.rank, world.rank + 1))
        part = slice(start, min(stop, len(self.paths)))
        return replace(self, paths=self.paths[part], labels=self.labels[part], heldout=self.heldout[part],
                       stamps=self.stamps[part])


def file_stamps(root: Path, paths) -> tuple[str, ...]:
    """`size:mtime_ns` of each file: one stat per file, no reading, so checking a cache stays instant."""
    stamps = []
    for path in paths:
        try:
            info = os.stat(root / volumes.split_item(path)[0])  # a DICOM frame or NIfTI slice: its file
        except OSError:  # vanished since it was listed: decoding will skip it with the reason
            stamps.append("missing")
        else:
            stamps.append(f"{info.st_size}:{info.st_mtime_ns}")
    return tuple(stamps)
