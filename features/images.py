"""Image decoding: any PNG/JPEG/TIFF/BMP becomes a 3×S×S uint8 tensor.

Normalisation (ImageNet mean/std) happens on the device inside the network (see backbone.py), so workers
ship uint8 — a quarter of the bytes of float32 — and the same preprocessing serves training, embedding and
scoring. A file that cannot be decoded yields a reason instead of a tensor; callers decide whether to skip it.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# Modes with more than 8 bits per pixel: stretched to their own range, since CT exports rarely fill 16 bits.
HIGH_DEPTH_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}


class BadImage(Exception):
    """A file that cannot be used as an image; the message says why."""


def to_8bit(image: Image.Image) -> Image.Image:
    """Greyscale stays one 8-bit channel (cheaper to resize); everything else becomes RGB."""
    if image.mode in HIGH_DEPTH_MODES:
        pixels = np.asarray(image, dtype=np.float32)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode in ("L", "1"):
        return image.convert("L")
    return image.convert("RGB")  # RGB, RGBA, LA, P, PA, CMYK, YCbCr, ...


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """Decode, convert and resize one file to a 3×size×size uint8 tensor; BadImage says what went wrong."""
    try:
        with warnings.catch_warnings():
            # Over MAX_IMAGE_PIXELS is a warning in PIL; a decompression bomb must be refused, not decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.draft(image.mode, (size, size))  # JPEG: decode at reduced scale when much larger
                image = to_8bit(image)
                if image.size != (size, size):
                    image = image.resize((size, size), Image.Resampling.BILINEAR)
                pixels = np.asarray(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise BadImage(f"{type(error).__name__}: {error}") from None
    if pixels.ndim == 2:
        return torch.from_numpy(pixels.copy()).expand(3, size, size)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


class ImageFiles(torch.utils.data.Dataset):
    """(image or None, label, row, reason) for each file; a bad file never raises inside a worker."""

    def __init__(self, root: str | Path, paths, labels, size: int, transform=None):
        self.root, self.paths, self.labels, self.size, self.transform = Path(root), paths, labels, size, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, row: int):
        try:
            image = load_image(self.root / self.paths[row], self.size)
        except BadImage as error:
            return None, self.labels[row], row, str(error)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[row], row, ""


def collate(batch):
    """Stack the good images; return the bad ones as (row, reason) beside them."""
    good = [item for item in batch if item[0] is not None]
    failures = [(row, reason) for image, _, row, reason in batch if image is None]
    images = torch.stack([item[0] for item in good]) if good else torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    labels = torch.tensor([item[1] for item in good], dtype=torch.long)
    rows = torch.tensor([item[2] for item in good], dtype=torch.long)
    return images, labels, rows, failures
