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

from .agree import agreed, either

BLOCK_ROWS = 65536  # rows a head scores at once: 128 MiB of float32 embeddings


def score(run_dir, head: str, images: str | os.PathLike, out: str | None = None, embeddings_out: str | None = None,
          batch_size: int = 64, workers: int = 2, device: str = "auto", strict: bool = False,
          second_opinion: bool | None = None, both_resolutions: bool | None = None) -> Path:
    """Write `out` (path,label,confidence) for every readable image under `images`. With `second_opinion` (None:
    whenever RUN/second-opinion has the head fitted, as `run` leaves it in the audit regime), that backbone
    scores the batch too, each writes its own CSV beside `out` (OUT.first.csv, OUT.second-opinion.csv), and
    `out` keeps a label only where both give it, 0 elsewhere, as `run`'s submission.csv does. With
    `both_resolutions` (None: whenever `run` trained RUN/half-resolution or full-resolution), so do the
    backbones there (OUT.half-resolution.csv, ...), and `out` keeps what either resolution decides where the
    other does not give another subset, as `run`'s submission.csv does."""
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
    other = run.other_resolution
    # The backbones of each resolution, each with the tag of its files: this run's first
    resolutions = [[(run, "first")] + [(second, "second-opinion")] * second_opinion,
                   [(other, other.path.name)] + [(other.second_opinion, f"{other.path.name}.second-opinion")] * second_opinion]
    has_other = all(r.checkpoint.is_file() and r.head(head).is_file() for r, _ in resolutions[1])
    if both_resolutions and not has_other:
        raise GanprovError(f"--both-resolutions: {other.path} has no checkpoint or no fitted {head} head"
                           + (" (or its second opinion has none)" if second_opinion else "")
                           + " (`ganprov run` trains one in the audit regime)")
    if not (has_other if both_resolutions is None else both_resolutions):
        resolutions.pop()
    sizes = [len(backbones) for backbones in resolutions]
    # (run, its CSV, its embeddings file): `out` itself is the combination when there are several
    jobs = [(run, out, embeddings_out)] if sum(sizes) == 1 else [
        (r, tagged(out, tag), embeddings_out if tag == "first" else tagged(embeddings_out, tag))
        for backbones in resolutions for r, tag in backbones]
    heads = [fitted_head(r, head) for r, _, _ in jobs]  # a stale head is refused before any work
    listed = [embed_batch(r, images, embeddings, warn=i == 0, batch_size=batch_size, workers=workers, device=device,
                          strict=strict) for i, (r, _, embeddings) in enumerate(jobs)]
    scored = write_scores(heads, jobs, sizes, out if len(jobs) > 1 else None)
    for (_, csv_out, _), files in zip(jobs, listed):
        print(f"scored {scored} files with {head} ({files - scored} unreadable, skipped) → {csv_out}")
    if second_opinion:
        print(f"{out}: a label only where {run.path} and {second.path} give the same one, 0 elsewhere"
              + (f"; where they give none, the one {other.path} and its second opinion agree on" if len(sizes) > 1 else ""))
    elif len(sizes) > 1:
        print(f"{out}: the label {run.path} or {other.path} gives where the other gives no other subset")
    return out


def tagged(path: Path, tag: str) -> Path:
    """OUT.csv → OUT.TAG.csv: a file of its own beside the one asked for."""
    return path.with_name(f"{path.stem}.{tag}{path.suffix}")


def fitted_head(run: RunFolder, head: str):
    """RUN's head, refused unless it was fitted on embeddings of the checkpoint that will embed the batch (a
    `train --force` or a `--resume` that improved validation rewrites checkpoint.pt)."""
    from ganprov.core.digest import sha256_of
    from ganprov.models.embeddings import EmbeddingsFile

    from .run_heads import load_run_head
    fitted, sidecar = load_run_head(run, head, EmbeddingsFile(run.embeddings))
    if sidecar["info"]["provenance"].get("checkpoint_sha256") != sha256_of(run.checkpoint):
        raise GanprovError(f"{run.head(head)} was fitted on embeddings of another checkpoint than {run.checkpoint} "
                           "(trained again since): embed and fit again, e.g. "
                           f"`ganprov run --data DATA --run {run.path}`")
    return fitted


def embed_batch(run: RunFolder, images: Path, embeddings_out: Path, *, warn: bool, batch_size: int, workers: int,
                device: str, strict: bool) -> int:
    """Embed every image under `images` with the run's checkpoint into `embeddings_out` (resumable); returns
    the number of files listed."""
    from ganprov.features.checkpoint import load_model
    from ganprov.features.embed import embed_paths, provenance
    from ganprov.features.image_list import ImageList
    from ganprov.features.train import pick_device

    model, meta = load_model(run.checkpoint)
    reading = Reading.of(meta["settings"])  # DICOM and NIfTI read as in training
    paths = tuple(list_images(images, images, reading.slice_axis))
    if not paths:
        raise GanprovError(f"{images} holds no PNG, JPEG, TIFF, BMP, DICOM or NIfTI files")
    if warn:
        warn_if_resized(run, images, paths)
    image_list = ImageList.stamped("images", images, paths, (0,) * len(paths), np.zeros(len(paths), dtype=bool))
    summary = embed_paths(model, int(meta["image_size"]), images, [image_list], embeddings_out,
                          provenance(run.checkpoint, meta), batch_size=batch_size, workers=workers,
                          device=pick_device(device), strict=strict,
                          redo_stale=True,  # a cache of other images under these names (last month's batch)
                          reading=reading)
    if summary is None:
        print(f"{embeddings_out} is complete for these images and this checkpoint; scoring it")
    else:
        print(f"embedded {summary['embedded']} images ({summary['skipped']} skipped) in {summary['seconds']:.1f} s")
    return len(paths)


def combined(rows: list[tuple[np.ndarray, np.ndarray]], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The agreement of each resolution's backbones (sizes: how many of `rows` each has, in order), and of two
    resolutions `either`. The smaller confidence where labels are agreed: no surer than any backbone giving it."""
    parts, start = [], 0
    for size in sizes:
        labels, confidence = zip(*rows[start:start + size])
        parts.append((agreed(list(labels)), np.minimum.reduce(confidence)))
        start += size
    if len(parts) == 1:
        return parts[0]
    (a, ca), (b, cb) = parts
    alone_a, alone_b = (a != 0) & (b == 0), (b != 0) & (a == 0)
    return either([a, b]), np.where(alone_a, ca, np.where(alone_b, cb, np.minimum(ca, cb)))


def write_scores(heads: list, jobs: list, sizes: list[int], combined_out: Path | None) -> int:
    """Each job's CSV from its head on its embeddings file, block by block; with `combined_out`, also the jobs'
    combination (`combined`; `sizes`: the jobs of each resolution). Returns the number of files scored."""
    from ganprov.models.embeddings import EmbeddingsFile

    files = [EmbeddingsFile(embeddings) for _, _, embeddings in jobs]
    different = GanprovError(f"{' and '.join(str(f.path) for f in files)} hold different images")
    if len({f.count("images") for f in files}) > 1:  # both skip the same unreadable files, or disagree on some
        raise different
    outputs = [csv_out for _, csv_out, _ in jobs] + ([combined_out] if combined_out else [])
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
            if combined_out:
                rows.append(combined(rows, sizes))
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
