"""Noise residuals: what is left of an image once its anatomy is blurred away, where generators leave their mark.

A GAN stamps the same high-frequency pattern on everything it makes, at the same pixel positions (its
upsampling layers, its learned biases), while anatomy lives mostly in the low frequencies. An image minus its
Gaussian blur keeps the pattern and drops most of the anatomy; averaged over a generator's images it is that
generator's fingerprint (Marra et al. 2019), and stage 2 groups images by it (models/generators.py). It is
taken at the file's native resolution (resizing would smear the pattern), from a fixed central window so
every image gives a vector of the same length, and stored as int8 with a scale per row (core/residual_codec.py:
the pattern needs no more). No torch here.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

WINDOW = 64  # pixels; smaller images are zero-padded
RESIDUAL_DIM = WINDOW * WINDOW
HIGH_PASS_SIGMA = 1.0


def central_crop(grey: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """The centre of a 2-D image, at most size×size."""
    h, w = grey.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return grey[top:top + size, left:left + size]


def noise_residual(grey: np.ndarray) -> np.ndarray:
    """RESIDUAL_DIM float32 values: the central window minus its Gaussian blur, row by row. The residual of a
    smaller image is zero-padded (padding the image instead would add a border edge to every residual)."""
    crop = central_crop(np.asarray(grey, dtype=np.float32))
    window = np.zeros((WINDOW, WINDOW), dtype=np.float32)
    window[:crop.shape[0], :crop.shape[1]] = crop - gaussian_filter(crop, HIGH_PASS_SIGMA, mode="reflect")
    return window.ravel()
