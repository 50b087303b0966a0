"""Abstention: flag images that no candidate subset explains, e.g. from a generator trained on none of them.

The score is the cosine distance from an image to its nearest labelled training image, described by its
embedding and, when the training rows are generated images, also by its generator fingerprint (centred on
the training fingerprints): an unfamiliar generator shows in both. The threshold is a quantile of the same
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


class NoveltyGate(BaseEstimator):
    """fit(X_train, X_heldout) and novel(X) take [embeddings | fingerprints] rows (fingerprints optional)."""

    def __init__(self, quantile=0.99, n_embedding=512, use_fingerprints=True):
        self.quantile = quantile
        self.n_embedding = n_embedding
        self.use_fingerprints = use_fingerprints

    def describe(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        parts = [unit_rows(X[:, :self.n_embedding])]
        if self.use_fingerprints and X.shape[1] > self.n_embedding:
            parts.append(unit_rows(X[:, self.n_embedding:] - self.centre_))
        return np.hstack(parts)

    def similarity(self, X) -> np.ndarray:
        """Cosine similarity (summed over the parts) of each row of X to its nearest training row."""
        described = self.describe(X)
        blocks = np.split(described, range(BLOCK, len(described), BLOCK))
        return np.concatenate([(block @ self.bank_.T).max(axis=1) for block in blocks])

    def fit(self, X_train, X_heldout):
        X_train = np.asarray(X_train, dtype=np.float32)
        self.centre_ = X_train[:, self.n_embedding:].mean(axis=0)
        self.bank_ = self.describe(X_train)
        self.threshold_ = float(np.quantile(self.similarity(X_heldout), 1 - self.quantile))
        return self

    def novel(self, X) -> np.ndarray:
        return self.similarity(X) < self.threshold_
