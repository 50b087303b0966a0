"""Image decoding: any PNG/JPEG/TIFF/BMP, DICOM frame or NIfTI slice becomes a 3×S×S uint8 tensor.

Normalisation (ImageNet mean/std) happens on the device inside the network (see backbone.py), so workers
ship uint8 — a quarter of the bytes of float32 — and the same preprocessing serves training, embedding and
scoring. A file that cannot be decoded yields a reason instead of a tensor; callers decide whether to skip it.
"""
from __future__ import annotations

import contextlib
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganprov.core import volumes
from ganprov.core.bit_depth import to_8bit
from ganprov.core.errors import GanprovError
from ganprov.core.volumes import Reading

from .residual import noise_residual

# What Pillow raises for a file it cannot read, a bomb refused by refusing_bombs() included.
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError)


class BadImage(GanprovError):
    """A file that cannot be used as an image; the message says why."""


def check_regular_file(path: str | Path) -> None:
    """Refuse FIFOs, devices and sockets before opening: open() on a FIFO named x.png waits forever."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # follows symlinks: dangling or looping ones raise OSError
        raise BadImage(f"not a regular file (a FIFO, device, socket or folder): {path}")


@contextlib.contextmanager
def refusing_bombs():
    """Over MAX_IMAGE_PIXELS is a warning in Pillow; a decompression bomb must be refused, not decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def decode(path: str | Path, reading: Reading = Reading()) -> Image.Image:
    """Decode one image at its native resolution into an 8-bit image; BadImage says what went wrong. DICOM
    frames and NIfTI slices (`FILE#N`, core/volumes.py) are windowed as `reading` says."""
    try:
        file, _ = volumes.split_item(path)
        check_regular_file(file)
        if volumes.is_dicom(file) or volumes.is_nifti(file):
            return Image.fromarray(volumes.read(path, reading))
        with refusing_bombs(), Image.open(path) as image:
            # Decode every pixel here, inside the with-block: the file is opened once and closed on any
            # error, and a truncated file raises (LOAD_TRUNCATED_IMAGES stays False) rather than yielding a
            # partly grey image. No JPEG draft mode: residuals need full resolution.
            image.load()
            return to_8bit(image)  # always a new image, independent of the file
    except UNREADABLE as error:
        raise BadImage(f"{type(error).__name__}: {error}") from None


def to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """Resize an 8-bit image to a 3×size×size uint8 tensor (greyscale repeated on three channels)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.array(image))
    return pixels.expand(3, size, size) if pixels.ndim == 2 else pixels.permute(2, 0, 1)


def load_image(path: str | Path, size: int, reading: Reading = Reading()) -> torch.Tensor:
    """Decode, convert and resize one file to a 3×size×size uint8 tensor; BadImage says what went wrong."""
    return to_tensor(decode(path, reading), size)


class ImageFiles(torch.utils.data.Dataset):
    """(image or None, label, row, reason) for each file; a bad file never raises inside a worker.
    With residuals=True the image is an (image, noise residual) pair. With `through` = (width, height) each
    image is first resized to that size, as the scored images were (features/channel.py); a list gives one
    such size per file (None: as decoded)."""

    def __init__(self, root: str | Path, paths, labels, size: int, transform=None, residuals: bool = False,
                 reading: Reading = Reading(), through: tuple[int, int] | None = None):
        self.root, self.paths, self.labels, self.size = Path(root), paths, labels, size
        self.transform, self.residuals, self.reading, self.through = transform, residuals, reading, through

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, row: int):
        try:
            decoded = decode(self.root / self.paths[row], self.reading)
        except BadImage as error:
            return None, self.labels[row], row, str(error)
        through = self.through[row] if isinstance(self.through, list) else self.through
        if through is not None and decoded.size != tuple(through):
            decoded = decoded.resize(tuple(through), Image.Resampling.BILINEAR)
        image = to_tensor(decoded, self.size)
        if self.transform is not None:
            image = self.transform(image)
        if self.residuals:
            image = image, torch.from_numpy(noise_residual(np.asarray(decoded.convert("L"))))
        return image, self.labels[row], row, ""


def collate(batch):
    """Stack the good images (and residuals); return the bad ones as (row, reason) beside them."""
    good = [item for item in batch if item[0] is not None]
    failures = [(row, reason) for image, _, row, reason in batch if image is None]
    if good and isinstance(good[0][0], tuple):
        images = tuple(torch.stack(part) for part in zip(*(item[0] for item in good)))
    else:
        images = torch.stack([item[0] for item in good]) if good else torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    labels = torch.tensor([item[1] for item in good], dtype=torch.long)
    rows = torch.tensor([item[2] for item in good], dtype=torch.long)
    return images, labels, rows, failures
