"""Reading an embeddings file (RUN/embeddings.h5) into numpy: all stage 2 ever reads. No torch here."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ganprov.core import schema
from ganprov.core.errors import GanprovError
from ganprov.core.residual_codec import StoredResiduals


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
                self.groups = tuple(g for g in handle if len(handle[g]["paths"]))  # an empty group is absent
                self.provenance = {key: as_python(value) for key, value in handle.attrs.items()}
                twins = [handle[g].attrs for g in self.groups if "through" in handle[g].attrs]
                # The size labelled images were also resized to (features/channel.py), and from; None: no twins.
                self.through = tuple(int(v) for v in twins[0]["through"]) if twins else None
                self.resized_from = tuple(int(v) for v in twins[0].get("resized_from", ())) if twins else None
        except OSError as error:  # truncated, overwritten, or not HDF5 at all
            raise GanprovError(f"{self.path} is damaged ({error}); run `ganprov embed` again to redo it") from None

    @property
    def subsets(self) -> list[int]:
        return list(self.provenance["subsets"])

    @property
    def validation_group(self) -> str:
        """Labelled generated images when there are any (challenge regime), else real (audit regime)."""
        return schema.validation_group(self.groups)

    def labels(self, group: str) -> np.ndarray:
        """The subset labels of `group`'s rows, read without their embeddings."""
        with h5py.File(self.path, "r") as handle:
            return handle[group]["labels"][...]

    def count(self, group: str) -> int:
        """Rows of `group`; 0 where the file has none."""
        with h5py.File(self.path, "r") as handle:
            return len(handle[group]["paths"]) if group in handle else 0

    def read(self, group: str, residuals: bool = True) -> Embeddings:
        """One group; without `residuals` its noise residuals (4 KB a row on disk, 8 in memory) stay on
        disk and the rows get none (0 columns): for heads that do not use them."""
        return self.select([group], lambda heldout: np.ones(len(heldout), dtype=bool), residuals)

    def blocks(self, group: str, rows: int, residuals: bool = True) -> Iterator[Embeddings]:
        """The group `rows` rows at a time, in order: memory stays flat whatever the group's size."""
        with h5py.File(self.path, "r") as handle:
            g = handle[group]
            for start in range(0, g["embeddings"].shape[0], rows):
                yield read_block(g, slice(start, start + rows), residuals)

    def training(self, fit_on: str, residuals: bool = True) -> Embeddings:
        """Labelled rows a head may learn from: never the held-out ones. A group's resized twin, where embed
        wrote one (features/channel.py), comes with it."""
        wanted = {"real": ["real"], "generated": ["generated"], "both": ["real", "generated"]}[fit_on]
        missing = [g for g in wanted if g not in self.groups]
        if missing:
            raise GanprovError(f"--fit-on {fit_on} needs the {missing[0]} group, which {self.path} does not have")
        return self.select(self.with_twins(wanted), np.logical_not, residuals)

    def validation(self, residuals: bool = True) -> Embeddings:
        """Held-out labelled rows, seen by neither the backbone's training nor any head's fit (with their
        resized twins, as in `training`)."""
        return self.select(self.with_twins([self.validation_group]), np.asarray, residuals)

    def head_validation(self, uses_residuals: bool) -> Embeddings:
        """Held-out rows as a head is validated on them: with noise residuals only for a head that reads them,
        and only where the rows are generated images (challenge regime). Real images carry no generator's
        print, so grouping held-out real rows would judge groups of nothing; a grouping head attributes them
        one by one instead, which measures the content votes its groups are attributed by."""
        return self.validation(uses_residuals and self.validation_group != "real")

    def real_residuals(self, rows: int = 2000) -> np.ndarray:
        """Noise residuals of up to `rows` real images, evenly spread over the group, as the unknown images
        look: from the resized twin where embed wrote one. Real images carry no generator's print, so these
        are the anatomy's share of a residual (models/generators.py takes it out before grouping)."""
        group = schema.resized("real") if schema.resized("real") in self.groups else "real"
        with h5py.File(self.path, "r") as handle:
            residuals = StoredResiduals(handle[group])
            return residuals[::max(1, -(-len(residuals) // rows))]

    @contextmanager
    def residuals_on_disk(self, group: str) -> Iterator[StoredResiduals]:
        """The group's noise residuals, read only where sliced, so a head can go through a million of them
        (4 GB on disk) a block at a time (models/generators.py)."""
        with h5py.File(self.path, "r") as handle:
            yield StoredResiduals(handle[group])

    def with_twins(self, groups: list[str]) -> list[str]:
        return [name for group in groups for name in (group, schema.resized(group)) if name in self.groups]

    def select(self, groups: list[str], keep, residuals: bool) -> Embeddings:
        """The rows of `groups` whose held-out flags `keep` maps to True, in order, read block by block into
        arrays of their final size: memory holds the rows once, never a second copy."""
        with h5py.File(self.path, "r") as handle:
            masks = [np.asarray(keep(handle[g]["heldout"][:]), dtype=bool) for g in groups]
            n = sum(int(mask.sum()) for mask in masks)
            width = handle[groups[0]]["residuals"].shape[1] if residuals and groups else 0
            out = Embeddings(np.empty((n, schema.EMBEDDING_DIM), np.float32), [], np.empty(n, np.int32),
                             np.empty(n, bool), np.empty((n, width), np.float16))
            at = 0
            for group, mask in zip(groups, masks):
                for start in range(0, len(mask), READ_ROWS):
                    block = slice(start, start + READ_ROWS)
                    chosen = mask[block]
                    if not chosen.any():
                        continue
                    part, end = read_block(handle[group], block, residuals, chosen), at + int(chosen.sum())
                    out.paths.extend(part.paths)
                    for name in ("embeddings", "labels", "heldout", "residuals"):
                        getattr(out, name)[at:end] = getattr(part, name)
                    at = end
        return out


READ_ROWS = 16384  # rows read at a time: 32 MiB of embeddings, 64 MiB of stored residuals (256 MiB decoded)


def read_block(group: h5py.Group, block: slice, residuals: bool, chosen: np.ndarray | None = None) -> Embeddings:
    """The rows `block` of one group, or those of them `chosen` (a mask); without `residuals`, none of their
    residuals (0 columns, nothing read). Residuals as float16, converted from the decoded rows kept only."""
    keep = slice(None) if chosen is None else chosen
    embeddings = group["embeddings"][block][keep]
    kept = (StoredResiduals(group)[block][keep].astype(np.float16, copy=False) if residuals
            else np.empty((len(embeddings), 0), np.float16))
    return Embeddings(embeddings, [p.decode() for p in group["paths"][block][keep]], group["labels"][block][keep],
                      group["heldout"][block][keep], kept)


def inputs_for(head, embeddings: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Embeddings, with the residuals (as float32) beside them for heads that group images by generator."""
    # Rows read without residuals (0 columns) stay as they are: no second copy of every embedding.
    return stacked(embeddings, residuals) if head.uses_residuals and residuals.shape[1] else embeddings


def stacked(embeddings: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    return np.hstack([embeddings, np.asarray(residuals, dtype=np.float32)])


def as_python(value):
    """HDF5 attribute values as plain Python (JSON-ready) values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
