"""k-nearest-neighbour head: the labelled embeddings closest in cosine similarity vote for their class."""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from .base import EmbeddingHead

# Keeps an exact duplicate (cosine distance 0) from getting an infinite vote.
EPS = 1e-6
# Every class keeps a sliver of probability, so no row is all-zero and log-loss stays finite.
FLOOR = 1e-9


class KNNHead(EmbeddingHead):
    """Votes weighted by 1 / (cosine distance + EPS): nearer neighbours count more; k is clipped to the
    number of labelled rows."""

    def __init__(self, k=10):
        self.k = k

    def fit(self, X, y):
        X, self.class_index_ = self._fit_input(X, y)  # column in classes_ of each row
        # Brute force is exact for cosine and, at 25k x 512, quick: it is a chunked matrix product.
        self.neighbours_ = NearestNeighbors(metric="cosine", algorithm="brute").fit(X)
        return self

    def predict_proba(self, X):
        X = self._predict_input(X)
        k = min(self.k, self.neighbours_.n_samples_fit_)
        distances, indices = self.neighbours_.kneighbors(X, n_neighbors=k)
        votes = np.full((len(X), len(self.classes_)), FLOOR)
        rows = np.repeat(np.arange(len(X)), k)
        np.add.at(votes, (rows, self.class_index_[indices].ravel()), 1.0 / (distances.ravel() + EPS))
        return votes / votes.sum(axis=1, keepdims=True)
