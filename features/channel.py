"""Reference images seen through the scored images' channel.

A scored set is often not at its references' resolution: a generator trained on downscaled slices, a batch
re-saved at half or twice the size. The backbone then sees a blurrier or sharper picture of the same anatomy
than the real images it is compared with, and a content head fitted on those real images votes for the
wrong subset (mri-slab scaled ×0.5: 20 % of images wrongly attributed). So when the unknown images' usual
size differs from the labelled images', every labelled image is embedded a second time after being resized
to it — the same resize the scored images went through — into a twin group `NAME_resized`, and heads learn
from both (models/embeddings.py); the backbone, too, trains on both (features/train.py). Only the size is
matched: JPEG re-saving left attribution unchanged.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from PIL import Image

from ganprov.core import volumes
from ganprov.core.schema import resized

from .image_list import ImageList
from .images import UNREADABLE, BadImage, check_regular_file, refusing_bombs

# Headers read to find a set's usual size: enough for a clear majority, instant for any set.
SIZE_SAMPLE = 500


def usual_size(root: Path, paths) -> tuple[int, int] | None:
    """The most common (width, height) among evenly spaced files of `paths`, read from their headers only;
    None for DICOM/NIfTI slices (already at their scanner's resolution) or when no header can be read."""
    step = max(1, len(paths) // SIZE_SAMPLE)
    sizes = Counter()
    for path in paths[::step]:
        file = volumes.split_item(path)[0]
        if volumes.is_dicom(file) or volumes.is_nifti(file):
            continue
        try:
            check_regular_file(root / file)  # open() on a FIFO named x.png would wait forever
            with refusing_bombs(), Image.open(root / file) as image:  # reads the header, not the pixels
                sizes[image.size] += 1
        except (BadImage, *UNREADABLE):
            continue  # decoding will skip it with its reason
    return sizes.most_common(1)[0][0] if sizes else None


def resize_target(root: Path, unknown_paths, labelled_paths) -> tuple[int, int] | None:
    """The unknown images' usual size where it differs from the labelled images' own; None otherwise."""
    target = usual_size(root, unknown_paths) if len(unknown_paths) else None
    return target if other_size(root, labelled_paths, target) else None


def other_size(root: Path, labelled_paths, target: tuple[int, int] | None) -> tuple[int, int] | None:
    """The labelled images' usual size where it is known and differs from `target` (not None); else None."""
    own = None if target is None else usual_size(root, labelled_paths)
    return None if own in (None, target) else own


def resized_twins(root: Path, lists: list[ImageList]) -> list[ImageList]:
    """For each labelled list, its twin resized to the unknown images' usual size, when that differs from the
    labelled images' own; none when there is no unknown list or the sizes agree."""
    by_name = {images.name: images for images in lists}
    if "unknown" not in by_name or not len(by_name["unknown"].paths):
        return []
    target = usual_size(root, by_name["unknown"].paths)  # read once, for every labelled list
    twins = []
    for name in ("real", "generated"):
        images = by_name.get(name)
        own = None if images is None else other_size(root, images.paths, target)
        if own is not None:
            twins.append(replace(images, name=resized(name), through=target, resized_from=own))
    return twins


def reference_sizes(embeddings: Path) -> set[tuple[int, int]]:
    """The sizes a run's heads learned their labelled images at: the real images' own usual size (while they
    are still where they were embedded from) and that of any resized twin."""
    import h5py

    sizes = set()
    with h5py.File(embeddings, "r") as handle:
        root = Path(handle.attrs.get("data_root", ""))
        for name in handle:
            if "through" in handle[name].attrs:
                sizes.add(tuple(int(v) for v in handle[name].attrs["through"]))
        real = [p.decode() for p in handle["real/paths"][:SIZE_SAMPLE]] if "real" in handle else []
    native = usual_size(root, real) if real and root.is_dir() else None
    return sizes | ({native} if native else set())
