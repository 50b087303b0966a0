"""The embeddings file on disk: its HDF5 schema, written batch by batch, resumable, checked before reuse.

Work goes to `<out>.partial`: one group per split with chunked, resizable datasets, appended and flushed per
batch; the group's attrs `files_done` and `rows` are written after the rows they count, so a run killed at
any point resumes by cutting the datasets back to `rows` and reading on from `files_done`. Batches are cut
at the same file boundaries every time (the batch size is pinned in the file), so a resumed file equals an
uninterrupted one. When every split is done, the partial file is renamed into place.

Under torchrun each process embeds a contiguous run of whole batches of every split into its own shard
(`RUN/embeddings-shards/rank-R-of-N.h5`, resumable like the one file), and rank 0 then copies the shards, in
rank order, into `RUN/embeddings.h5`: the same rows, in the same order, cut into the same batches as one
process would write.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
from tqdm import tqdm

from ganprov.core.atomic import atomic_path
from ganprov.core.errors import GanprovError
from ganprov.core.residual_codec import SCALES
from ganprov.core.schema import EMBEDDING_DIM, SAME_FILE_KEYS

from . import distributed
from .image_list import ImageList
from .residual import RESIDUAL_DIM

CHUNK_ROWS = 256
DATASETS = ("embeddings", "paths", "labels", "heldout", "residuals", SCALES, "skipped_paths", "skipped_reasons")
COPY_ROWS = 4096  # rows copied from a shard at a time: memory stays flat whatever the shard's size
# The decoding workers of a killed embed live on for up to ~5 s holding its file lock: a rerun typed at once
# waits this long for the lock before saying the file is in use.
LOCK_WAIT_SECONDS = 15
CHANGED_FILES = "the image files changed (names, sizes or modification times)"
OTHER_HELDOUT = "other images are held out for validation (another regime, seed or --min-heldout)"


class EmbeddingError(GanprovError):
    """Embeddings that cannot be written or resumed as asked; the message says what differs."""


class StaleEmbeddings(EmbeddingError):
    """An existing (or partial) embeddings file made from another checkpoint or other images."""


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def shard_path(out: Path, world: distributed.World) -> Path:
    return out.with_name(f"{out.stem}-shards") / f"rank-{world.rank}-of-{world.size}.h5"


def discard(out: Path) -> None:
    """Delete a finished file and its partial one."""
    for path in (out, partial_path(out)):
        path.unlink(missing_ok=True)


def differences(expected: dict, found, keys) -> list[str]:
    """Human-readable list of provenance keys whose values differ."""
    return [f"{key}: {found.get(key)!r} here, {expected.get(key)!r} expected" for key in keys
            if str(found.get(key)) != str(expected.get(key))]


def other_inputs(handle: h5py.File, lists: list[ImageList], prov: dict) -> str | None:
    """Why `handle` was made from other inputs than `lists` and `prov`; None when it was made from these."""
    differ = differences(prov, handle.attrs, SAME_FILE_KEYS)
    here, expected = sorted(handle), sorted(i.name for i in lists)
    if here != expected:  # a folder gone (generated/, generated_unknown/) or new
        differ.append(f"groups: {', '.join(here)} here, {', '.join(expected)} expected")
    same_files = all(i.name in handle and handle[i.name].attrs.get("files_sha256") == i.files_sha256 for i in lists)
    # Files written before heldout_sha256 was kept are taken at their word.
    same_heldout = all(i.name not in handle or handle[i.name].attrs.get("heldout_sha256", i.heldout_sha256)
                       == i.heldout_sha256 for i in lists)
    if differ or not same_files or not same_heldout:
        return "; ".join(differ) or (CHANGED_FILES if not same_files else OTHER_HELDOUT)
    return None


def start_file(handle: h5py.File, lists: list[ImageList], prov: dict, batch_size: int) -> None:
    """The provenance and one empty group per list."""
    handle.attrs.update(prov, batch_size=batch_size, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    strings = h5py.string_dtype("utf-8")
    for images in lists:
        group = handle.create_group(images.name)
        group.create_dataset("embeddings", (0, EMBEDDING_DIM), "float32", maxshape=(None, EMBEDDING_DIM),
                             chunks=(CHUNK_ROWS, EMBEDDING_DIM))
        group.create_dataset("paths", (0,), strings, maxshape=(None,), chunks=(CHUNK_ROWS,))
        group.create_dataset("labels", (0,), "int32", maxshape=(None,), chunks=(CHUNK_ROWS,))
        group.create_dataset("heldout", (0,), "bool", maxshape=(None,), chunks=(CHUNK_ROWS,))
        residuals = group.create_dataset("residuals", (0, RESIDUAL_DIM), "int8", maxshape=(None, RESIDUAL_DIM),
                                         chunks=(64, RESIDUAL_DIM))
        residuals.attrs["decoding"] = f"row i is residuals[i] * {SCALES}[i] (core/residual_codec.py)"
        group.create_dataset(SCALES, (0,), "float32", maxshape=(None,), chunks=(CHUNK_ROWS,))
        group.create_dataset("skipped_paths", (0,), strings, maxshape=(None,), chunks=(64,))
        group.create_dataset("skipped_reasons", (0,), strings, maxshape=(None,), chunks=(64,))
        group.attrs.update(files_total=len(images.paths), files_sha256=images.files_sha256,
                           heldout_sha256=images.heldout_sha256, files_done=0, rows=0)
        if images.through is not None:  # provenance: the size every image was resized to first, and from
            group.attrs["through"] = list(images.through)
            group.attrs["resized_from"] = list(images.resized_from or ())


def append(group: h5py.Group, name: str, values) -> None:
    dataset = group[name]
    start = dataset.shape[0]
    dataset.resize(start + len(values), axis=0)
    dataset[start:] = values


def add_batch(handle: h5py.File, name: str, rows: dict, skipped: list[tuple[str, str]]) -> None:
    """Append one batch to group `name`: `rows` (values per row dataset, none when no file was read) and the
    (path, reason) of each skipped file; then count them and flush, so the counts never run ahead."""
    group = handle[name]
    for dataset, values in rows.items():
        append(group, dataset, values)
    if skipped:
        append(group, "skipped_paths", [path for path, _ in skipped])
        append(group, "skipped_reasons", [reason for _, reason in skipped])
    group.attrs["rows"] = group["embeddings"].shape[0]
    group.attrs["files_done"] = int(group.attrs["files_done"]) + len(rows.get("paths", ())) + len(skipped)
    handle.flush()


def open_waiting(path: Path, mode: str) -> h5py.File:
    """h5py.File, waiting up to LOCK_WAIT_SECONDS for a lock held by another process: a locked file is in
    use, not damaged, and deleting it would lose its work."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return h5py.File(path, mode)
        except BlockingIOError as error:
            if time.monotonic() > deadline:
                raise EmbeddingError(f"{path} is in use by another process ({error}); run again when it ends") from None
            time.sleep(0.25)


def open_partial(partial: Path, lists: list[ImageList], prov: dict, batch_size: int) -> h5py.File:
    """Open the partial file to resume it, or start a new one; refuse one from another checkpoint."""
    if partial.exists():
        try:
            handle = open_waiting(partial, "r+")
        except OSError as error:  # killed in the middle of a write: start over rather than trust it
            print(f"{partial} is damaged ({error}); starting it again")
            partial.unlink()
        else:
            why = other_inputs(handle, lists, prov)
            if why:
                handle.close()
                raise StaleEmbeddings(f"{partial} was started with other inputs ({why}); delete it or pass --force")
            if any(SCALES not in handle[images.name] for images in lists):
                handle.close()
                raise StaleEmbeddings(f"{partial} was started by an older ganprov (float16 residuals); "
                                      "delete it or pass --force")
            batch = int(handle.attrs["batch_size"])
            for images in lists:  # cut back anything written after the last complete batch
                group = handle[images.name]
                rows, done = int(group.attrs["rows"]), int(group.attrs["files_done"])
                for name in DATASETS:
                    keep = done - rows if name.startswith("skipped") else rows
                    # Grow by a batch, then cut: HDF5 refills the cut part of the last chunk. A kill mid-flush
                    # can leave string references there, past the saved extent, to heap objects never
                    # written; writing over them fails with "bad heap index".
                    group[name].resize(max(group[name].shape[0], keep) + batch, axis=0)
                    group[name].resize(keep, axis=0)
            return handle
    # Made under a temporary name, renamed when its provenance and groups are in: a partial file that exists
    # was fully set up (a kill or a full disk during the setup leaves nothing to refuse as "other inputs").
    # Not libver="latest": its superblock (v3) stays marked open-for-write after a kill, and HDF5 then refuses
    # to open the file at all (h5clear needed), so every killed run would start over.
    with atomic_path(partial) as temporary, h5py.File(temporary, "w", libver=("v108", "latest")) as handle:
        start_file(handle, lists, prov, batch_size)
    return h5py.File(partial, "r+")


def existing_matches(out: Path, lists: list[ImageList], prov: dict) -> bool:
    """True when `out` is finished and made from these inputs; raise when it was made from others."""
    if not out.exists():
        return False
    try:
        handle = open_waiting(out, "r")
    except OSError as error:  # truncated or overwritten: it holds nothing to keep
        print(f"{out} is damaged ({error}); embedding again")
        out.unlink(missing_ok=True)
        return False
    with handle:
        why = other_inputs(handle, lists, prov)
    if why:
        raise StaleEmbeddings(f"{out} was made from other inputs ({why}); pass --force to embed again")
    return True


def update_attribute(out: Path, key: str, value) -> None:
    """Set one file attribute; a file that already holds `value` is left untouched."""
    with h5py.File(out, "r") as handle:
        same = handle.attrs.get(key) == value
    if not same:
        with h5py.File(out, "r+") as handle:
            handle.attrs[key] = value


def skipped_rows(path: Path) -> list[tuple[str, str, str]]:
    """(group, path, reason) for every file an embeddings file skipped."""
    with h5py.File(path, "r") as handle:
        return [(name, p.decode(), r.decode()) for name in handle
                for p, r in zip(handle[name]["skipped_paths"][:], handle[name]["skipped_reasons"][:])]


def combine(shards: list[Path], lists: list[ImageList], out: Path, prov: dict, batch_size: int) -> None:
    """Copy the shards, in order, into `out` (atomically, via out.partial). Each group's attrs are updated
    after its rows, so a partial file left by a kill is a valid prefix that `embed` resumes."""
    partial = partial_path(out)
    with h5py.File(partial, "w", libver=("v108", "latest")) as handle:
        start_file(handle, lists, prov, batch_size)
        for shard in tqdm(shards, desc="combine shards", unit="shard"):
            with h5py.File(shard, "r") as part:
                for images in lists:
                    source, target = part[images.name], handle[images.name]
                    for name in DATASETS:
                        for start in range(0, source[name].shape[0], COPY_ROWS):
                            append(target, name, source[name][start:start + COPY_ROWS])
                    for key in ("rows", "files_done"):
                        target.attrs[key] = int(target.attrs[key]) + int(source.attrs[key])
                    handle.flush()
    os.replace(partial, out)
