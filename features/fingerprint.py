"""Generator fingerprints: the log power spectrum of an image's high-pass residual.

A GAN stamps the same high-frequency pattern on everything it makes (its upsampling layers, its learned
noise maps), while anatomy lives mostly in the low frequencies. Removing a Gaussian blur keeps the pattern
and drops the anatomy, so images from one generator cluster together on this descriptor whatever they show.
It is taken at the file's native resolution (resizing would smear the pattern), from a fixed central window
so every image gives a vector of the same length. No torch here.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

WINDOW = 64  # pixels; smaller images are zero-padded
FINGERPRINT_DIM = WINDOW * (WINDOW // 2 + 1)  # real FFT of a WINDOW×WINDOW residual
HIGH_PASS_SIGMA = 1.0


def central_window(grey: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """The size×size centre of a 2-D image, zero-padded where the image is smaller."""
    h, w = grey.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = grey[top:top + size, left:left + size]
    window = np.zeros((size, size), dtype=np.float32)
    window[:crop.shape[0], :crop.shape[1]] = crop
    return window


def fingerprint(grey: np.ndarray) -> np.ndarray:
    """FINGERPRINT_DIM float32 values: log(1 + |FFT(window − blur(window))|²)."""
    window = central_window(np.asarray(grey, dtype=np.float32))
    residual = window - gaussian_filter(window, HIGH_PASS_SIGMA)
    return np.log1p(np.abs(np.fft.rfft2(residual)) ** 2).astype(np.float32).ravel()
