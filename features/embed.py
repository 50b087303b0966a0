"""Images to embeddings: `embed_paths` turns lists of image files into a finished embeddings file (features/
store.py: the file, resumable and checked before reuse), for `embed` (a data folder, under torchrun too),
`score` (any folder of images) and `bench`.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torchvision
from tqdm import tqdm

from ganprov import __version__
from ganprov.core import residual_codec
from ganprov.core.atomic import write_csv
from ganprov.core.disk import full_disk_said, require_space
from ganprov.core.layout import discover, refuse_run_inside
from ganprov.core.run_folder import RunFolder
from ganprov.core.schema import EMBEDDING_DIM
from ganprov.core.settings import TrainSettings
from ganprov.core.volumes import Reading

from . import distributed, store
from .backbone import IMAGENET_MEAN, IMAGENET_STD, for_inference
from .channel import resized_twins
from .checkpoint import load_model
from .image_list import ImageList
from .images import ImageFiles, collate
from .ordered_forward import ordered_forward
from .residual import HIGH_PASS_SIGMA, RESIDUAL_DIM, WINDOW
from .store import EmbeddingError, StaleEmbeddings
from .train import pick_device

ROW_BYTES = EMBEDDING_DIM * 4 + RESIDUAL_DIM + 4 + 256  # embedding, residual and its scale, path and flags
# Free space kept beyond the rows themselves (new chunks, metadata). HDF5 meeting a full disk can crash the
# process (a segfault while freeing its objects) instead of raising, so space is checked before each write.
SPACE_SLACK = 2 << 20


def provenance(meta: dict) -> dict:
    """What an embeddings file was made with; `meta` as load_model gives it (with the checkpoint's sha256)."""
    return {
        "checkpoint_sha256": meta["checkpoint_sha256"],
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


@torch.inference_mode()
def write_embeddings(model, root: Path, lists: list[ImageList], out: Path, prov: dict, image_size: int,
                     batch_size: int, workers: int, device: torch.device, strict: bool, progress: bool = True,
                     reading: Reading = Reading()) -> dict:
    """Embed every list into `out` (atomically, via out.partial); return counts for the summary."""
    partial = store.partial_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = for_inference(model).to(device)
    embedded = skipped = 0
    started = time.perf_counter()
    handle = None
    try:
        with full_disk_said(out.parent, partial.name):  # what was flushed stays; a rerun resumes from it
            handle = store.open_partial(partial, lists, prov, batch_size)
            batch_size = int(handle.attrs["batch_size"])  # the one the file was started with: same batch cuts
            left = sum(len(i.paths) - int(handle[i.name].attrs["files_done"]) for i in lists)
            require_space(out.parent, ROW_BYTES * left + SPACE_SLACK, out.name)
            for image_list in lists:
                dataset = ImageFiles(root, image_list.paths, image_list.labels, image_size, residuals=True,
                                     reading=reading, through=image_list.through)
                rows, failed = write_list(model, handle, image_list, dataset, batch_size, workers, device, strict,
                                          progress, out)
                embedded, skipped = embedded + rows, skipped + failed
    finally:
        try:
            if handle is not None:
                handle.close()
        except (OSError, RuntimeError):  # a full disk fails the close too; the error above says why
            pass
    os.replace(partial, out)
    return {"embedded": embedded, "skipped": skipped, "seconds": time.perf_counter() - started}


def write_list(model, handle, image_list: ImageList, dataset: ImageFiles, batch_size: int, workers: int,
               device: torch.device, strict: bool, progress: bool, out: Path) -> tuple[int, int]:
    """Embed the files of one list the partial file has not counted yet, batch by batch; (embedded, skipped)."""
    done = int(handle[image_list.name].attrs["files_done"])
    todo = range(done, len(image_list.paths))
    if not len(todo):
        return 0, 0
    data = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, todo), batch_size=batch_size, num_workers=workers,
        collate_fn=collate, pin_memory=device.type == "cuda")

    def forward(batch):  # the embeddings of a batch's readable images (None: none readable)
        images, _, rows, _ = batch  # images: (pixels, residuals) when any was readable
        if not len(rows):
            return None
        with torch.inference_mode(), torch.autocast(device.type, enabled=device.type == "cuda"):
            return model.features(images[0].to(device, non_blocking=True)).float().cpu().numpy()

    embedded = skipped = 0
    with tqdm(total=len(image_list.paths), initial=done, desc=f"embed {image_list.name}", unit="img",
              disable=not progress) as bar:
        for (images, labels, rows, failures), embeddings in ordered_forward(forward, data, device):
            require_space(out.parent, ROW_BYTES * batch_size + SPACE_SLACK, out.name)  # another writer
            if failures and strict:
                row, reason = failures[0]
                raise EmbeddingError(f"cannot read {dataset.root / image_list.paths[row]}: {reason}")
            batch = {}
            if len(rows):
                batch = {"embeddings": embeddings,
                         "paths": [image_list.paths[r] for r in rows.tolist()], "labels": labels.numpy(),
                         "heldout": image_list.heldout[rows.numpy()], **residual_codec.encode(images[1].numpy())}
            store.add_batch(handle, image_list.name, batch, [(image_list.paths[r], reason) for r, reason in failures])
            embedded += len(rows)
            skipped += len(failures)
            bar.update(len(rows) + len(failures))
    return embedded, skipped


def embed_share(model, root: Path, lists: list[ImageList], out: Path, prov: dict, image_size: int, batch_size: int,
                workers: int, device: torch.device, strict: bool, world: distributed.World,
                reading: Reading = Reading()) -> dict:
    """One process: embed everything into `out`. Several: this one's share into its shard, then rank 0
    combines the shards; the counts returned are the totals over all processes."""
    options = dict(image_size=image_size, workers=workers, device=device, strict=strict, reading=reading)
    if world.size == 1:
        return write_embeddings(model, root, lists, out, prov, batch_size=batch_size, **options)
    started = time.perf_counter()
    shard = store.shard_path(out, world)
    mine = [image_list.share(world, batch_size) for image_list in lists]
    summary = {"embedded": 0, "skipped": 0}
    if not store.existing_matches(shard, mine, prov):  # a rerun keeps every finished shard
        summary = write_embeddings(model, root, mine, shard, prov, batch_size=batch_size, progress=world.is_main,
                                   **options)
    embedded, skipped = world.sum(summary["embedded"], summary["skipped"])
    world.barrier()
    if world.is_main:
        shards = [store.shard_path(out, distributed.World(rank, world.size)) for rank in range(world.size)]
        with h5py.File(shards[0], "r") as first:  # the batch size the shards were cut with
            store.combine(shards, lists, out, prov, int(first.attrs["batch_size"]))
        shutil.rmtree(shard.parent)
    world.barrier()  # the others return once the combined file is in place
    return {"embedded": int(embedded), "skipped": int(skipped), "seconds": time.perf_counter() - started}


def embed_paths(model, image_size: int, root: Path, lists: list[ImageList], out: Path, prov: dict, *,
                batch_size: int, workers: int, device: torch.device, strict: bool,
                world: distributed.World | None = None, force: bool = False,
                redo_stale: bool = False, reading: Reading = Reading()) -> dict | None:
    """Turn the image files of `lists` (paths under `root`) into the finished embeddings file `out`: the
    counts of the work done ({"embedded", "skipped", "seconds"}, totals over all processes), or None when
    `out` was already complete for these images and this checkpoint. A partial file is resumed, a damaged
    one redone; one made from other inputs is refused (StaleEmbeddings), or with `redo_stale` (one process
    only) deleted and redone. `force` deletes every earlier file first. Under torchrun (`world`) each
    process embeds its share and rank 0 combines them."""
    world = world or distributed.World()  # one process unless told otherwise
    if force and world.is_main:
        store.discard(out)
        shutil.rmtree(store.shard_path(out, world).parent, ignore_errors=True)
    world.barrier()  # every process sees the same files from here on

    def reuse_or_embed() -> dict | None:
        if not store.existing_matches(out, lists, prov):
            return embed_share(model, root, lists, out, prov, image_size, batch_size, workers, device, strict, world,
                               reading)
        if world.is_main and "data_root" in prov:  # the same images elsewhere: point the report at them
            store.update_attribute(out, "data_root", prov["data_root"])
        return None

    try:
        return reuse_or_embed()
    except StaleEmbeddings:
        if not redo_stale:
            raise
        print(f"{out} holds embeddings of other images or another checkpoint; embedding these again")
        store.discard(out)
        return reuse_or_embed()


def layout_lists(data: str | os.PathLike, seed: int, min_heldout: int, subsets=None,
                 slice_axis: int = 2) -> tuple[Path, list[ImageList]]:
    """The data folder's root and its splits as image lists, held out as the run's `seed` and `min_heldout`
    say; refused when its subsets are not `subsets` (the checkpoint's), whose labels the heads would not know."""
    layout = discover(data, slice_axis)
    if subsets is not None and list(layout.subsets) != [int(s) for s in subsets]:
        raise EmbeddingError(f"{layout.root} holds subsets {list(layout.subsets)}, but the checkpoint was trained on "
                             f"{[int(s) for s in subsets]}: embed the data it was trained on, or train a run on this data")
    lists = [ImageList.stamped(name, layout.root, split.paths, split.labels, layout.heldout(name, seed, min_heldout))
             for name, split in layout.splits.items()]
    return layout.root, lists + resized_twins(layout.root, lists)


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
    reading = Reading.of(meta["settings"])  # DICOM and NIfTI read as in training
    settings = TrainSettings.from_config(meta["settings"])  # the checkpoint's: its images held out again
    root, lists = layout_lists(data, settings.seed, settings.min_heldout, meta["subsets"], settings.slice_axis)
    # Where the images are, for the report's thumbnails; not part of the cache key (moved data is the same data).
    prov = provenance(meta) | {"data_root": str(root.resolve())}
    world = distributed.world()
    torch_device = world.device(pick_device(device))
    distributed.start(torch_device)
    summary = embed_paths(model, int(meta["image_size"]), root, lists, run.embeddings, prov, batch_size=batch_size,
                          workers=workers, device=torch_device, strict=strict, world=world, force=force,
                          reading=reading)
    if world.is_main:
        if summary is None:
            print(f"{run.embeddings} is complete for these images and this checkpoint; nothing to do")
        else:
            write_csv(run.skipped, store.skipped_rows(run.embeddings), ["split", "path", "reason"])
            rate = summary["embedded"] / max(summary["seconds"], 1e-9)
            print(f"embedded {summary['embedded']} images in {summary['seconds']:.1f} s ({rate:.0f} img/s"
                  f"{f', {world.size} processes' if world.size > 1 else ''}); {summary['skipped']} skipped → {run.embeddings}")
        require_every_subset(run, meta["subsets"])
    return {"embedded": 0, "skipped": 0, "seconds": 0.0} if summary is None else summary
