"""Noise residuals on disk: int8 with one float32 scale per row, 4 KB an image instead of float16's 8 KB.

Each row is divided by its largest magnitude over 127 and rounded, so nothing is clipped and a faint image
keeps as many levels as a bright one. Rows decode to float32, what the grouping computes in (numpy converts
float32 to float16 six times slower than it decodes int8); files written before this (float16 `residuals`, no
`residual_scales`) read as they are. What rounding costs was measured on the benchmarks' unknown sets (README
"Stage 2 at a million rows": the generator groups did not change). No torch here.
"""
from __future__ import annotations

import numpy as np

SCALES = "residual_scales"  # the dataset beside `residuals` holding each row's scale
LEVELS = 127


def encode(residuals: np.ndarray) -> dict[str, np.ndarray]:
    """N×D float residuals → {"residuals": N×D int8, SCALES: N float32}, ready for the embeddings file."""
    residuals = np.asarray(residuals, dtype=np.float32)
    scales = np.abs(residuals).max(axis=1, initial=0) / LEVELS
    safe = np.where(scales > 0, scales, 1)[:, None]  # an all-zero row stays zero
    return {"residuals": np.rint(residuals / safe).astype(np.int8), SCALES: scales.astype(np.float32)}


def decode(values: np.ndarray, scales: np.ndarray | None) -> np.ndarray:
    """Stored rows as float32, or as stored where `scales` is None (a file that stored float16 itself)."""
    if scales is None:
        return values
    return np.multiply(values, scales[:, None], dtype=np.float32)


class StoredResiduals:
    """A group's residuals, sliced like an array (an h5py dataset's way: only what is sliced is read) and
    decoded (`decode`)."""

    def __init__(self, group):
        self.values = group["residuals"]
        self.scales = group.get(SCALES)
        self.shape = self.values.shape

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        return decode(self.values[rows], None if self.scales is None else self.scales[rows])
