"""Nearest-centroid head on the unit sphere: each class is the direction of its mean embedding."""
from __future__ import annotations

from numbers import Real

import numpy as np
from scipy.special import softmax
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from .base import EmbeddingHead


def unit_rows(X):
    """Rows scaled to length 1 (all-zero rows stay zero), so dot products are cosine similarities."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, np.finfo(X.dtype).tiny)


def similarity_proba(units, directions, temperature):
    """softmax(cosine / temperature) over the rows of `directions`; float64 so rows sum to 1 closely."""
    return softmax((units @ directions.T).astype(np.float64) / temperature, axis=1)


class CosineHead(EmbeddingHead):
    """Nearest centroid by cosine: proba = softmax(cosine(x, class centroid) / temperature).

    Parameters
    ----------
    temperature : float, default=0.05
        Softmax temperature; a small one sharpens the probabilities, never the labels.

    Attributes
    ----------
    classes_, n_features_in_
        As every head's (EmbeddingHead).
    centroids_ : ndarray of shape (n_classes, n_features)
        Unit direction of each class's mean unit embedding.
    """

    _parameter_constraints = {"temperature": [Interval(Real, 0, None, closed="neither")]}  # softmax divides by it

    def __init__(self, temperature=0.05):
        self.temperature = temperature

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn each class's centroid from embeddings X with subset labels y; returns self."""
        X, y_index = self._fit_input(X, y)
        units = unit_rows(X)
        # One class at a time (np.add.at took 3.6 s on 490,000 rows)
        sums = np.stack([units[y_index == c].sum(axis=0) for c in range(len(self.classes_))])
        self.centroids_ = unit_rows(sums)
        return self

    def predict_proba(self, X):
        """softmax over the classes of each row's cosine to their centroids, shape (n_samples, n_classes)."""
        return similarity_proba(unit_rows(self._predict_input(X)), self.centroids_, self.temperature)
