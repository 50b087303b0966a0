"""`ganprov score`: attribute any folder of images with a run's checkpoint and a fitted head, offline.

Embeddings stream into an HDF5 file beside the CSV (resumable like `embed`); the head then reads them back in
blocks, so neither step holds more than a block in memory whatever the number of images.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ganprov.core.atomic import CsvWriter, atomic_path, output_file
from ganprov.core.errors import GanprovError
from ganprov.core.layout import list_images
from ganprov.core.run_folder import RunFolder
from ganprov.core.volumes import Reading

BLOCK_ROWS = 65536  # rows a head scores at once: 128 MiB of float32 embeddings


def score(run_dir, head: str, images: str | os.PathLike, out: str | None = None, embeddings_out: str | None = None,
          batch_size: int = 64, workers: int = 2, device: str = "auto", strict: bool = False) -> Path:
    from ganprov.features.checkpoint import load_model
    from ganprov.features.embed import embed_paths, provenance
    from ganprov.features.image_list import ImageList
    from ganprov.features.train import pick_device
    from ganprov.models.embeddings import EmbeddingsFile

    from .run_heads import load_run_head

    run, images = RunFolder(run_dir), Path(images)
    if not images.is_dir():
        raise GanprovError(f"{images} is not a folder of images")
    # Checked before any work. Only RUN/scores/ may be created: a folder the user names must exist.
    out = output_file(out or run.scores / f"{images.resolve().name}.csv", ".csv", "--out",
                      new_folder_ok=out is None)
    embeddings_out = output_file(embeddings_out or out.with_suffix(".h5"), ".h5", "--embeddings",
                                 new_folder_ok=embeddings_out is None)
    if embeddings_out.resolve() == out.resolve():  # one a link to the other
        raise GanprovError(f"--embeddings {embeddings_out} and --out {out} are the same file")
    for path, option in ((out, "--out"), (embeddings_out, "--embeddings")):  # the run's own files stay its own
        inside = path.resolve().parent
        if inside.is_relative_to(run.path.resolve()) and not inside.is_relative_to(run.scores.resolve()):
            raise GanprovError(f"{option} {path} is inside the run folder, whose files are the run's own: "
                               f"write scores outside it or under {run.scores}")
    model, meta = load_model(run.checkpoint)
    prov = provenance(run.checkpoint, meta)
    fitted, _ = load_run_head(run, head, EmbeddingsFile(run.embeddings))  # refuse a stale head before any work
    reading = Reading.of(meta["settings"])  # DICOM and NIfTI read as in training
    paths = tuple(list_images(images, images, reading.slice_axis))
    if not paths:
        raise GanprovError(f"{images} holds no PNG, JPEG, TIFF, BMP, DICOM or NIfTI files")
    warn_if_resized(run, images, paths)
    image_list = ImageList.stamped("images", images, paths, (0,) * len(paths), np.zeros(len(paths), dtype=bool))
    summary = embed_paths(model, int(meta["image_size"]), images, [image_list], embeddings_out, prov,
                          batch_size=batch_size, workers=workers, device=pick_device(device), strict=strict,
                          redo_stale=True,  # a cache of other images under these names (last month's batch)
                          reading=reading)
    if summary is None:
        print(f"{embeddings_out} is complete for these images and this checkpoint; scoring it")
    else:
        print(f"embedded {summary['embedded']} images ({summary['skipped']} skipped) in {summary['seconds']:.1f} s")
    scored = 0
    with atomic_path(out) as temporary, open(temporary, "w", encoding="utf-8", newline="") as csv_file:
        writer = CsvWriter(csv_file)
        writer.writerow(["path", "label", "confidence"])
        for block in EmbeddingsFile(embeddings_out).blocks("images", BLOCK_ROWS):
            labels, proba = fitted.attribute(block.inputs_for(fitted))
            writer.writerows((path, label, f"{confidence:.6f}")
                             for path, label, confidence in zip(block.paths, labels, proba.max(axis=1)))
            scored += len(block.paths)
    print(f"scored {scored} files with {head} ({len(paths) - scored} unreadable, skipped) → {out}")
    return out


def warn_if_resized(run: RunFolder, images: Path, paths) -> None:
    """Say so when the batch is not at a size the heads learned their references at (features/channel.py):
    a content head then sees blurrier or sharper anatomy than it learned, and attributes worse."""
    from ganprov.features.channel import reference_sizes, usual_size

    batch, learned = usual_size(images, paths), reference_sizes(run.embeddings)
    if batch is not None and learned and batch not in learned:
        sizes = ", ".join(f"{w}×{h}" for w, h in sorted(learned))
        print(f"warning: these images are mostly {batch[0]}×{batch[1]} pixels, but the heads learned from labelled "
              f"images at {sizes}: attribution suffers (on a benchmark scaled ×0.5, 20 % wrongly attributed). For a "
              f"backbone and references resized to match, put them in DATA/generated_unknown and `ganprov run` a new run.")
