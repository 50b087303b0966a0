"""Nearest-centroid head on the unit sphere: each class is the direction of its mean embedding."""
from __future__ import annotations

import numpy as np
from scipy.special import softmax

from .base import EmbeddingHead


def unit_rows(X):
    """Rows scaled to length 1 (all-zero rows stay zero), so dot products are cosine similarities."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, np.finfo(X.dtype).tiny)


def similarity_proba(units, directions, temperature):
    """softmax(cosine / temperature) over the rows of `directions`; float64 so rows sum to 1 closely."""
    return softmax((units @ directions.T).astype(np.float64) / temperature, axis=1)


class CosineHead(EmbeddingHead):
    """proba = softmax(cosine(x, class centroid) / temperature); a small temperature sharpens it."""

    def __init__(self, temperature=0.05):
        self.temperature = temperature

    def fit(self, X, y):
        X, y_index = self._fit_input(X, y)
        units = unit_rows(X)
        sums = np.zeros((len(self.classes_), X.shape[1]), dtype=units.dtype)
        np.add.at(sums, y_index, units)
        self.centroids_ = unit_rows(sums)
        return self

    def predict_proba(self, X):
        return similarity_proba(unit_rows(self._predict_input(X)), self.centroids_, self.temperature)
