"""Abstention: flag images that no candidate subset explains, e.g. from a generator trained on none of them.

The score is the cosine distance from an image to its nearest labelled training image, described by its
embedding and, when the training rows are generated images, also by the log power spectrum of its noise
residual (centred on the training rows'): an unfamiliar generator shows in both. The threshold is a quantile of the same
score on held-out labelled images, so `quantile=0.99` abstains on about 1 % of images like those. Calibrated
on held-out generated images (challenge regime) it flags outputs of generators unlike any candidate's; in the
audit regime it uses embeddings alone, is calibrated on held-out real images and abstains more, since
generated images sit further from real ones than real images do.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from .cosine import unit_rows

BLOCK = 4096  # rows compared at once: bounds memory for large sets


def log_power_spectrum(residuals: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|²) of each square residual (rows of W·W values), flattened: where a generator's periodic
    pattern shows whatever its position in the image."""
    side = int(round(np.sqrt(residuals.shape[1])))
    windows = np.asarray(residuals, dtype=np.float32).reshape(len(residuals), side, side)
    return np.log1p(np.abs(np.fft.rfft2(windows)) ** 2).astype(np.float32).reshape(len(residuals), -1)


class NoveltyGate(BaseEstimator):
    """fit(X_train, X_heldout) and novel(X) take [embeddings | residuals] rows (residuals optional)."""

    def __init__(self, quantile=0.99, n_embedding=512, use_residuals=True):
        self.quantile = quantile
        self.n_embedding = n_embedding
        self.use_residuals = use_residuals

    def spectra(self, X) -> np.ndarray:
        return log_power_spectrum(X[:, self.n_embedding:])

    def describe(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        parts = [unit_rows(X[:, :self.n_embedding])]
        if self.use_residuals and X.shape[1] > self.n_embedding:
            parts.append(unit_rows(self.spectra(X) - self.centre_))
        return np.hstack(parts)

    def similarity(self, X) -> np.ndarray:
        """Cosine similarity (summed over the parts) of each row of X to its nearest training row."""
        described = self.describe(X)
        blocks = np.split(described, range(BLOCK, len(described), BLOCK))
        return np.concatenate([(block @ self.bank_.T).max(axis=1) for block in blocks])

    def fit(self, X_train, X_heldout):
        X_train = np.asarray(X_train, dtype=np.float32)
        self.centre_ = self.spectra(X_train).mean(axis=0) if X_train.shape[1] > self.n_embedding else 0.0
        self.bank_ = self.describe(X_train)
        self.threshold_ = float(np.quantile(self.similarity(X_heldout), 1 - self.quantile))
        return self

    def novel(self, X) -> np.ndarray:
        return self.similarity(X) < self.threshold_
