"""Reading an embeddings file (RUN/embeddings.h5) into numpy: all stage 2 ever reads. No torch here."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ganprov.core import schema
from ganprov.core.errors import GanprovError


@dataclass(frozen=True)
class Embeddings:
    """One group of the file: N×512 embeddings with their paths, subset labels, held-out flags and noise
    residuals (features/residual.py, N×4096 float16), where generators leave their fingerprints."""
    embeddings: np.ndarray
    paths: list[str]
    labels: np.ndarray
    heldout: np.ndarray
    residuals: np.ndarray

    def rows(self, mask: np.ndarray) -> Embeddings:
        return Embeddings(self.embeddings[mask], [p for p, m in zip(self.paths, mask) if m],
                          self.labels[mask], self.heldout[mask], self.residuals[mask])

    def inputs_for(self, head) -> np.ndarray:
        """What `head` scores: the embeddings, with the residuals beside them for heads that use them."""
        return inputs_for(head, self.embeddings, self.residuals)

    def with_residuals(self) -> np.ndarray:
        return stacked(self.embeddings, self.residuals)


class EmbeddingsFile:
    """The groups of an embeddings file, read on demand, and its provenance attributes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise GanprovError(f"no embeddings at {self.path}: run `ganprov embed` first")
        try:
            with h5py.File(self.path, "r") as handle:
                self.groups = tuple(handle)
                self.provenance = {key: as_python(value) for key, value in handle.attrs.items()}
        except OSError as error:  # truncated, overwritten, or not HDF5 at all
            raise GanprovError(f"{self.path} is damaged ({error}); run `ganprov embed` again to redo it") from None

    @property
    def subsets(self) -> list[int]:
        return list(self.provenance["subsets"])

    @property
    def validation_group(self) -> str:
        """Labelled generated images when there are any (challenge regime), else real (audit regime)."""
        return schema.validation_group(self.groups)

    def read(self, group: str) -> Embeddings:
        with h5py.File(self.path, "r") as handle:
            g = handle[group]
            return Embeddings(g["embeddings"][:], [p.decode() for p in g["paths"][:]], g["labels"][:], g["heldout"][:],
                              g["residuals"][:])

    def blocks(self, group: str, rows: int) -> Iterator[Embeddings]:
        """The group `rows` rows at a time, in order: memory stays flat whatever the group's size."""
        with h5py.File(self.path, "r") as handle:
            g = handle[group]
            for start in range(0, g["embeddings"].shape[0], rows):
                block = slice(start, start + rows)
                yield Embeddings(g["embeddings"][block], [p.decode() for p in g["paths"][block]], g["labels"][block],
                                 g["heldout"][block], g["residuals"][block])

    def training(self, fit_on: str) -> Embeddings:
        """Labelled rows a head may learn from: never the held-out ones."""
        wanted = {"real": ["real"], "generated": ["generated"], "both": ["real", "generated"]}[fit_on]
        missing = [g for g in wanted if g not in self.groups]
        if missing:
            raise GanprovError(f"--fit-on {fit_on} needs the {missing[0]} group, which {self.path} does not have")
        parts = [self.read(g) for g in wanted]
        parts = [p.rows(~p.heldout) for p in parts]
        return Embeddings(np.concatenate([p.embeddings for p in parts]), [path for p in parts for path in p.paths],
                          np.concatenate([p.labels for p in parts]), np.concatenate([p.heldout for p in parts]),
                          np.concatenate([p.residuals for p in parts]))

    def validation(self) -> Embeddings:
        """Held-out labelled rows, seen by neither the backbone's training nor any head's fit."""
        group = self.read(self.validation_group)
        return group.rows(group.heldout)


def inputs_for(head, embeddings: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Embeddings, with the residuals (as float32) beside them for heads that group images by generator."""
    return stacked(embeddings, residuals) if head.uses_residuals else embeddings


def stacked(embeddings: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    return np.hstack([embeddings, np.asarray(residuals, dtype=np.float32)])


def as_python(value):
    """HDF5 attribute values as plain Python (JSON-ready) values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
