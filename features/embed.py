"""Stream 512-d embeddings into HDF5, batch by batch, resumable.

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

import hashlib
import json
import os
import shutil
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import torch
import torchvision
from tqdm import tqdm

from . import distributed
from ganprov.core.atomic import atomic_path, write_csv
from ganprov import __version__
from ganprov.core.schema import EMBEDDING_DIM, MATCHING_KEYS, SAME_FILE_KEYS

from .backbone import IMAGENET_MEAN, IMAGENET_STD, for_inference
from ganprov.core.digest import sha256_of
from .checkpoint import load_model
from ganprov.core.disk import out_of_space, require_space, space_error
from ganprov.core.errors import GanprovError
from .residual import HIGH_PASS_SIGMA, RESIDUAL_DIM, WINDOW
from .images import ImageFiles, collate
from ganprov.core.layout import discover, refuse_run_inside
from ganprov.core.run_folder import RunFolder
from .train import pick_device

CHUNK_ROWS = 256
DATASETS = ("embeddings", "paths", "labels", "heldout", "residuals", "skipped_paths", "skipped_reasons")
COPY_ROWS = 4096  # rows copied from a shard at a time: memory stays flat whatever the shard's size
ROW_BYTES = EMBEDDING_DIM * 4 + RESIDUAL_DIM * 2 + 256  # embedding, residual, path and flags of one image
# The decoding workers of a killed embed live on for up to ~5 s holding its file lock: a rerun typed at once
# waits this long for the lock before saying the file is in use.
LOCK_WAIT_SECONDS = 15
# Free space kept beyond the rows themselves (new chunks, metadata). HDF5 meeting a full disk can crash the
# process (a segfault while freeing its objects) instead of raising, so space is checked before each write.
SPACE_SLACK = 2 << 20


CHANGED_FILES = "the image files changed (names, sizes or modification times)"


class EmbeddingError(GanprovError):
    """Embeddings that cannot be written or resumed as asked; the message says what differs."""


class StaleEmbeddings(EmbeddingError):
    """An existing (or partial) embeddings file made from another checkpoint or other images."""


@dataclass(frozen=True)
class Work:
    """One group to write: its files (relative to root), labels, held-out flags and each file's stamp."""
    name: str
    paths: tuple[str, ...]
    labels: tuple[int, ...]
    heldout: np.ndarray
    stamps: tuple[str, ...]  # size and modification time per file (file_stamps)

    @property
    def files_sha256(self) -> str:
        """The cache key: names, sizes and modification times, so other pixels under the same names (a
        replaced image, next month's batch) make an embeddings file stale instead of silently reused."""
        return hashlib.sha256("\n".join(f"{p}\t{s}" for p, s in zip(self.paths, self.stamps)).encode()).hexdigest()

    def share(self, world: distributed.World, batch_size: int) -> "Work":
        """This process's contiguous run of whole batches: every image lands in the batch it would have
        in one process, and the shards, concatenated in rank order, give back the whole list."""
        batches = -(-len(self.paths) // batch_size)
        start, stop = (batches * rank // world.size * batch_size for rank in (world.rank, world.rank + 1))
        part = slice(start, min(stop, len(self.paths)))
        return Work(self.name, self.paths[part], self.labels[part], self.heldout[part], self.stamps[part])


def file_stamps(root: Path, paths) -> tuple[str, ...]:
    """`size:mtime_ns` of each file: one stat per file, no reading, so checking a cache stays instant."""
    stamps = []
    for path in paths:
        try:
            info = os.stat(root / path)
        except OSError:  # vanished since it was listed: decoding will skip it with the reason
            stamps.append("missing")
        else:
            stamps.append(f"{info.st_size}:{info.st_mtime_ns}")
    return tuple(stamps)


def provenance(checkpoint_path: Path, meta: dict) -> dict:
    return {
        "checkpoint_sha256": sha256_of(checkpoint_path),
        "image_size": int(meta["image_size"]),
        "normalisation": json.dumps({"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "scale": 255}),
        "weights_origin": meta["weights_origin"],
        "residual": json.dumps({"window": WINDOW, "high_pass_sigma": HIGH_PASS_SIGMA, "feature": "image minus blur, residual zero-padded"}),
        "subsets": np.asarray(meta["subsets"], dtype=np.int64),
        "ganprov_version": __version__,
        "versions": json.dumps({"python": platform.python_version(), "torch": torch.__version__,
                                "torchvision": torchvision.__version__, "h5py": h5py.__version__,
                                "numpy": np.__version__}),
    }


def differences(expected: dict, found, keys=MATCHING_KEYS) -> list[str]:
    """Human-readable list of provenance keys whose values differ."""
    return [f"{key}: {found.get(key)!r} here, {expected.get(key)!r} expected" for key in keys
            if str(found.get(key)) != str(expected.get(key))]


def create_groups(handle: h5py.File, works: list[Work]) -> None:
    strings = h5py.string_dtype("utf-8")
    for work in works:
        group = handle.create_group(work.name)
        group.create_dataset("embeddings", (0, EMBEDDING_DIM), "float32", maxshape=(None, EMBEDDING_DIM),
                             chunks=(CHUNK_ROWS, EMBEDDING_DIM))
        group.create_dataset("paths", (0,), strings, maxshape=(None,), chunks=(CHUNK_ROWS,))
        group.create_dataset("labels", (0,), "int32", maxshape=(None,), chunks=(CHUNK_ROWS,))
        group.create_dataset("heldout", (0,), "bool", maxshape=(None,), chunks=(CHUNK_ROWS,))
        group.create_dataset("residuals", (0, RESIDUAL_DIM), "float16", maxshape=(None, RESIDUAL_DIM),
                             chunks=(64, RESIDUAL_DIM))
        group.create_dataset("skipped_paths", (0,), strings, maxshape=(None,), chunks=(64,))
        group.create_dataset("skipped_reasons", (0,), strings, maxshape=(None,), chunks=(64,))
        group.attrs.update(files_total=len(work.paths), files_sha256=work.files_sha256, files_done=0, rows=0)


def append(group: h5py.Group, name: str, values) -> None:
    dataset = group[name]
    start = dataset.shape[0]
    dataset.resize(start + len(values), axis=0)
    dataset[start:] = values


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


def open_partial(partial: Path, works: list[Work], prov: dict, batch_size: int) -> h5py.File:
    """Open the partial file to resume it, or start a new one; refuse one from another checkpoint."""
    if partial.exists():
        try:
            handle = open_waiting(partial, "r+")
        except OSError as error:  # killed in the middle of a write: start over rather than trust it
            print(f"{partial} is damaged ({error}); starting it again")
            partial.unlink()
        else:
            differ = differences(prov, handle.attrs, SAME_FILE_KEYS)
            same_files = all(w.name in handle and handle[w.name].attrs.get("files_sha256") == w.files_sha256 for w in works)
            if differ or not same_files:
                handle.close()
                why = "; ".join(differ) or CHANGED_FILES
                raise StaleEmbeddings(f"{partial} was started with other inputs ({why}); delete it or pass --force")
            batch = int(handle.attrs["batch_size"])
            for work in works:  # cut back anything written after the last complete batch
                group = handle[work.name]
                rows, done = int(group.attrs["rows"]), int(group.attrs["files_done"])
                for name, keep in (("embeddings", rows), ("paths", rows), ("labels", rows), ("heldout", rows), ("residuals", rows),
                                   ("skipped_paths", done - rows), ("skipped_reasons", done - rows)):
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
        handle.attrs.update(prov, batch_size=batch_size, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        create_groups(handle, works)
    return h5py.File(partial, "r+")


@torch.inference_mode()
def write_embeddings(model, root: Path, works: list[Work], out: Path, prov: dict, image_size: int,
                     batch_size: int, workers: int, device: torch.device, strict: bool, progress: bool = True) -> dict:
    """Embed every work item into `out` (atomically, via out.partial); return counts for the summary."""
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    model = for_inference(model).to(device)
    embedded = skipped = 0
    started = time.perf_counter()
    handle = None
    try:
        handle = open_partial(partial, works, prov, batch_size)
        batch_size = int(handle.attrs["batch_size"])  # the one the file was started with: same batch cuts
        left = sum(len(w.paths) - int(handle[w.name].attrs["files_done"]) for w in works)
        require_space(out.parent, ROW_BYTES * left + SPACE_SLACK, out.name)
        for work in works:
            group = handle[work.name]
            done = int(group.attrs["files_done"])
            todo = range(done, len(work.paths))
            if not len(todo):
                continue
            dataset = ImageFiles(root, work.paths, work.labels, image_size, residuals=True)
            data = torch.utils.data.DataLoader(
                torch.utils.data.Subset(dataset, todo), batch_size=batch_size, num_workers=workers,
                collate_fn=collate, pin_memory=device.type == "cuda")
            with tqdm(total=len(work.paths), initial=done, desc=f"embed {work.name}", unit="img",
                      disable=not progress) as bar:
                for images, labels, rows, failures in data:
                    require_space(out.parent, ROW_BYTES * batch_size + SPACE_SLACK, out.name)  # another writer
                    if failures and strict:
                        row, reason = failures[0]
                        raise EmbeddingError(f"cannot read {root / work.paths[row]}: {reason}")
                    if len(rows):
                        images, residuals = images
                        with torch.autocast(device.type, enabled=device.type == "cuda"):
                            features = model.features(images.to(device, non_blocking=True))
                        append(group, "embeddings", features.float().cpu().numpy())
                        append(group, "paths", [work.paths[r] for r in rows.tolist()])
                        append(group, "labels", labels.numpy())
                        append(group, "heldout", work.heldout[rows.numpy()])
                        append(group, "residuals", residuals.numpy())
                    if failures:
                        append(group, "skipped_paths", [work.paths[r] for r, _ in failures])
                        append(group, "skipped_reasons", [reason for _, reason in failures])
                    n_files = len(rows) + len(failures)
                    group.attrs["rows"] = group["embeddings"].shape[0]
                    group.attrs["files_done"] = int(group.attrs["files_done"]) + n_files
                    handle.flush()
                    embedded += len(rows)
                    skipped += len(failures)
                    bar.update(n_files)
    except (OSError, RuntimeError) as error:
        if out_of_space(error, out.parent):  # what was flushed before stays, and a rerun resumes from it
            raise space_error(out.parent, partial.name) from None
        raise
    finally:
        try:
            if handle is not None:
                handle.close()
        except (OSError, RuntimeError):  # a full disk fails the close too; the error above says why
            pass
    os.replace(partial, out)
    return {"embedded": embedded, "skipped": skipped, "seconds": time.perf_counter() - started}


def skipped_rows(path: Path) -> list[tuple[str, str, str]]:
    """(group, path, reason) for every file an embeddings file skipped."""
    with h5py.File(path, "r") as handle:
        return [(name, p.decode(), r.decode()) for name in handle
                for p, r in zip(handle[name]["skipped_paths"][:], handle[name]["skipped_reasons"][:])]


def existing_matches(out: Path, works: list[Work], prov: dict) -> bool:
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
        differ = differences(prov, handle.attrs, SAME_FILE_KEYS)
        same_files = all(w.name in handle and handle[w.name].attrs.get("files_sha256") == w.files_sha256 for w in works)
    if differ or not same_files:
        why = "; ".join(differ) or CHANGED_FILES
        raise StaleEmbeddings(f"{out} was made from other inputs ({why}); pass --force to embed again")
    return True


def layout_works(data: str | os.PathLike, seed: int, subsets=None) -> tuple[Path, list[Work]]:
    """The data folder's root and its splits as work; refused when its subsets are not `subsets` (the
    checkpoint's), whose labels the heads would not know."""
    layout = discover(data)
    if subsets is not None and list(layout.subsets) != [int(s) for s in subsets]:
        raise EmbeddingError(f"{layout.root} holds subsets {list(layout.subsets)}, but the checkpoint was trained on "
                             f"{[int(s) for s in subsets]}: embed the data it was trained on, or train a run on this data")
    works = [Work(name, split.paths, split.labels, layout.heldout(name, seed), file_stamps(layout.root, split.paths))
             for name, split in layout.splits.items()]
    return layout.root, works


def shard_path(out: Path, world: distributed.World) -> Path:
    return out.with_name(f"{out.stem}-shards") / f"rank-{world.rank}-of-{world.size}.h5"


def combine(shards: list[Path], works: list[Work], out: Path, prov: dict, batch_size: int) -> None:
    """Copy the shards, in order, into `out` (atomically, via out.partial). Each group's attrs are updated
    after its rows, so a partial file left by a kill is a valid prefix that `embed` resumes."""
    partial = out.with_name(out.name + ".partial")
    with h5py.File(partial, "w", libver=("v108", "latest")) as handle:
        handle.attrs.update(prov, batch_size=batch_size, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        create_groups(handle, works)
        for shard in tqdm(shards, desc="combine shards", unit="shard"):
            with h5py.File(shard, "r") as part:
                for work in works:
                    source, target = part[work.name], handle[work.name]
                    for name in DATASETS:
                        for start in range(0, source[name].shape[0], COPY_ROWS):
                            append(target, name, source[name][start:start + COPY_ROWS])
                    for key in ("rows", "files_done"):
                        target.attrs[key] = int(target.attrs[key]) + int(source.attrs[key])
                    handle.flush()
    os.replace(partial, out)


def require_every_subset(run: RunFolder, subsets) -> None:
    """Refuse embeddings where a real subset has no row: no head can learn it (the file stays)."""
    with h5py.File(run.embeddings, "r") as handle:
        lost = sorted(set(int(s) for s in subsets) - set(handle["real/labels"][:].tolist()))
    if lost:
        raise EmbeddingError(f"every image of real subset(s) {lost} was unreadable (reasons in {run.skipped}): "
                             "fix or replace those files and run again")


def embed(data: str | os.PathLike, run_dir: str | os.PathLike, batch_size: int = 64, workers: int = 2,
          device: str = "auto", strict: bool = False, force: bool = False) -> dict:
    """Embed the data folder's images with RUN's best checkpoint into RUN/embeddings.h5; under torchrun,
    each process embeds its share and rank 0 combines them."""
    run = RunFolder(run_dir)
    refuse_run_inside(data, run.path)
    model, meta = load_model(run.checkpoint)
    root, works = layout_works(data, int(meta["settings"]["seed"]), meta["subsets"])
    # Where the images are, for the report's thumbnails; not part of the cache key (moved data is the same data).
    prov = provenance(run.checkpoint, meta) | {"data_root": str(root.resolve())}
    world = distributed.world()
    torch_device = world.device(pick_device(device))
    distributed.start(torch_device)
    if force and world.is_main:
        for path in (run.embeddings, run.embeddings.with_name(run.embeddings.name + ".partial")):
            path.unlink(missing_ok=True)
        shutil.rmtree(shard_path(run.embeddings, world).parent, ignore_errors=True)
    world.barrier()  # every process sees the same files from here on
    if existing_matches(run.embeddings, works, prov):
        if world.is_main:
            with h5py.File(run.embeddings, "r") as handle:
                moved = handle.attrs.get("data_root") != prov["data_root"]
            if moved:  # the same images elsewhere: point the report at them (and leave an unmoved file untouched)
                with h5py.File(run.embeddings, "r+") as handle:
                    handle.attrs["data_root"] = prov["data_root"]
            print(f"{run.embeddings} is complete for these images and this checkpoint; nothing to do")
            require_every_subset(run, meta["subsets"])
        return {"embedded": 0, "skipped": 0, "seconds": 0.0}
    summary = embed_share(model, root, works, run.embeddings, prov, meta, batch_size, workers, torch_device,
                          strict, world)
    if world.is_main:
        write_csv(run.skipped, skipped_rows(run.embeddings), ["split", "path", "reason"])
        rate = summary["embedded"] / max(summary["seconds"], 1e-9)
        print(f"embedded {summary['embedded']} images in {summary['seconds']:.1f} s ({rate:.0f} img/s"
              f"{f', {world.size} processes' if world.size > 1 else ''}); {summary['skipped']} skipped → {run.embeddings}")
        require_every_subset(run, meta["subsets"])
    return summary


def embed_share(model, root: Path, works: list[Work], out: Path, prov: dict, meta: dict, batch_size: int,
                workers: int, device: torch.device, strict: bool, world: distributed.World) -> dict:
    """One process: embed everything into `out`. Several: this one's share into its shard, then rank 0
    combines the shards; the counts returned are the totals over all processes."""
    options = dict(image_size=int(meta["image_size"]), workers=workers, device=device, strict=strict)
    if world.size == 1:
        return write_embeddings(model, root, works, out, prov, batch_size=batch_size, **options)
    started = time.perf_counter()
    shard = shard_path(out, world)
    mine = [work.share(world, batch_size) for work in works]
    summary = {"embedded": 0, "skipped": 0}
    if not existing_matches(shard, mine, prov):  # a rerun keeps every finished shard
        summary = write_embeddings(model, root, mine, shard, prov, batch_size=batch_size, progress=world.is_main,
                                   **options)
    embedded, skipped = world.sum(summary["embedded"], summary["skipped"])
    world.barrier()
    if world.is_main:
        shards = [shard_path(out, distributed.World(rank, world.size)) for rank in range(world.size)]
        with h5py.File(shards[0], "r") as first:  # the batch size the shards were cut with
            combine(shards, works, out, prov, int(first.attrs["batch_size"]))
        shutil.rmtree(shard.parent)
    world.barrier()  # the others return once the combined file is in place
    return {"embedded": int(embedded), "skipped": int(skipped), "seconds": time.perf_counter() - started}
