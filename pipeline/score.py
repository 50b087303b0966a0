"""`ganprov score`: attribute any folder of images with a run's checkpoint and a fitted head, offline.

Embeddings stream into an HDF5 file beside the CSV (resumable like `embed`); the head then reads them back in
blocks, so neither step holds more than a block in memory whatever the number of images.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ganprov.core.atomic import CsvWriter, atomic_path, output_file
from ganprov.core.errors import GanprovError
from ganprov.core.layout import list_images
from ganprov.core.run_folder import RunFolder
from ganprov.core.volumes import Reading

from .agree import agreed

BLOCK_ROWS = 65536  # rows a head scores at once: 128 MiB of float32 embeddings


def score(run_dir, head: str, images: str | os.PathLike, out: str | None = None, embeddings_out: str | None = None,
          batch_size: int = 64, workers: int = 2, device: str = "auto", strict: bool = False,
          second_opinion: bool | None = None) -> Path:
    """Write `out` (path,label,confidence) for every readable image under `images`. With `second_opinion` (None:
    whenever RUN/second-opinion has the head fitted, as `run` leaves it in the audit regime), that backbone
    scores the batch too, each writes its own CSV beside `out` (OUT.first.csv, OUT.second-opinion.csv), and
    `out` keeps a label only where both give it, 0 elsewhere, as `run`'s submission.csv does."""
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
    second = run.second_opinion
    has_second = second.checkpoint.is_file() and second.head(head).is_file()
    if second_opinion and not has_second:
        raise GanprovError(f"--second-opinion: {second.path} has no checkpoint or no fitted {head} head "
                           "(`ganprov run` trains one in the audit regime)")
    if second_opinion is None:
        second_opinion = has_second
    # (run, its CSV, its embeddings file): `out` itself is the agreement when there are two
    jobs = [(run, out, embeddings_out)] if not second_opinion else [
        (run, tagged(out, "first"), embeddings_out),
        (second, tagged(out, "second-opinion"), tagged(embeddings_out, "second-opinion"))]
    from ganprov.features.checkpoint import load_model
    models = [load_model(r.checkpoint) for r, _, _ in jobs]  # each read and hashed once
    # A stale head is refused before any work.
    heads = [fitted_head(r, head, meta["checkpoint_sha256"]) for (r, _, _), (_, meta) in zip(jobs, models)]
    listed = [embed_batch(r, model, meta, images, embeddings, warn=i == 0, batch_size=batch_size, workers=workers,
                          device=device, strict=strict)
              for i, ((r, _, embeddings), (model, meta)) in enumerate(zip(jobs, models))]
    scored = write_scores(heads, jobs, out if second_opinion else None)
    for (_, csv_out, _), files in zip(jobs, listed):
        print(f"scored {scored} files with {head} ({files - scored} unreadable, skipped) → {csv_out}")
    if second_opinion:
        print(f"{out}: a label only where {run.path} and {second.path} give the same one, 0 elsewhere")
    return out


def tagged(path: Path, tag: str) -> Path:
    """OUT.csv → OUT.TAG.csv: a file of its own beside the one asked for."""
    return path.with_name(f"{path.stem}.{tag}{path.suffix}")


def fitted_head(run: RunFolder, head: str, checkpoint_sha256: str):
    """RUN's head, refused unless it was fitted on embeddings of the checkpoint that will embed the batch,
    whose sha256 is given (a `train --force` or a `--resume` that improved validation rewrites checkpoint.pt)."""
    from ganprov.models.embeddings import EmbeddingsFile

    from .run_heads import load_run_head
    fitted, sidecar = load_run_head(run, head, EmbeddingsFile(run.embeddings))
    if sidecar["info"]["provenance"].get("checkpoint_sha256") != checkpoint_sha256:
        raise GanprovError(f"{run.head(head)} was fitted on embeddings of another checkpoint than {run.checkpoint} "
                           "(trained again since): embed and fit again, e.g. "
                           f"`ganprov run --data DATA --run {run.path}`")
    return fitted


def embed_batch(run: RunFolder, model, meta: dict, images: Path, embeddings_out: Path, *, warn: bool, batch_size: int,
                workers: int, device: str, strict: bool) -> int:
    """Embed every image under `images` with the run's network (`model` and `meta` as load_model gives them)
    into `embeddings_out` (resumable); returns the number of files listed."""
    from ganprov.features.embed import embed_paths, provenance
    from ganprov.features.image_list import ImageList
    from ganprov.features.train import pick_device

    reading = Reading.of(meta["settings"])  # DICOM and NIfTI read as in training
    paths = tuple(list_images(images, images, reading.slice_axis))
    if not paths:
        raise GanprovError(f"{images} holds no PNG, JPEG, TIFF, BMP, DICOM or NIfTI files")
    if warn:
        warn_if_resized(run, images, paths)
    image_list = ImageList.stamped("images", images, paths, (0,) * len(paths), np.zeros(len(paths), dtype=bool))
    summary = embed_paths(model, int(meta["image_size"]), images, [image_list], embeddings_out,
                          provenance(meta), batch_size=batch_size, workers=workers,
                          device=pick_device(device), strict=strict,
                          redo_stale=True,  # a cache of other images under these names (last month's batch)
                          reading=reading)
    if summary is None:
        print(f"{embeddings_out} is complete for these images and this checkpoint; scoring it")
    else:
        print(f"embedded {summary['embedded']} images ({summary['skipped']} skipped) in {summary['seconds']:.1f} s")
    return len(paths)


def write_scores(heads: list, jobs: list, agreed_out: Path | None) -> int:
    """Each job's CSV from its head on its embeddings file, block by block; with `agreed_out`, also the
    agreement of the two. Returns the number of files scored."""
    from ganprov.models.embeddings import EmbeddingsFile

    files = [EmbeddingsFile(embeddings) for _, _, embeddings in jobs]
    different = GanprovError(f"{' and '.join(str(f.path) for f in files)} hold different images")
    if len({f.count("images") for f in files}) > 1:  # both skip the same unreadable files, or disagree on some
        raise different
    outputs = [csv_out for _, csv_out, _ in jobs] + ([agreed_out] if agreed_out else [])
    scored = 0
    with ExitStack() as stack:
        writers = []
        for path in outputs:
            temporary = stack.enter_context(atomic_path(path))
            writers.append(CsvWriter(stack.enter_context(open(temporary, "w", encoding="utf-8", newline=""))))
            writers[-1].writerow(["path", "label", "confidence"])
        for blocks in zip(*(f.blocks("images", BLOCK_ROWS) for f in files)):
            paths = blocks[0].paths
            if any(list(b.paths) != list(paths) for b in blocks[1:]):
                raise different
            results = [head.attribute(block.inputs_for(head)) for head, block in zip(heads, blocks)]
            rows = [(labels, proba.max(axis=1)) for labels, proba in results]
            if agreed_out:  # the smaller confidence: the agreed label is no surer than either backbone
                (first, c1), (other, c2) = rows
                rows.append((agreed([first, other]), np.minimum(c1, c2)))
            for writer, (labels, confidence) in zip(writers, rows):
                writer.writerows((path, label, f"{c:.6f}") for path, label, c in zip(paths, labels.tolist(), confidence))
            scored += len(paths)
    return scored


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
