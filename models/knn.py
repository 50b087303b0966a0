"""k-nearest-neighbour head: the labelled embeddings closest in cosine similarity vote for their class."""
from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from .base import EmbeddingHead
from .neighbours import nearest, unit_float32

# Keeps an exact duplicate (cosine distance 0) from getting an infinite vote.
EPS = 1e-6
# Every class keeps a sliver of probability, so no row is all-zero and log-loss stays finite.
FLOOR = 1e-9


class KNNHead(EmbeddingHead):
    """The k labelled rows nearest in cosine vote, each with weight 1 / (cosine distance + EPS).

    Parameters
    ----------
    k : int, default=10
        Neighbours that vote; clipped to the number of labelled rows.
    exact : bool, default=False
        Exact search whatever the number of labelled rows. By default it is exact below
        neighbours.APPROXIMATE_FROM labelled rows and approximate past it (about 0.98 of the true neighbours,
        at a third of the time).

    Attributes
    ----------
    classes_, n_features_in_
        As every head's (EmbeddingHead).
    units_ : ndarray of shape (n_samples, n_features)
        The labelled rows scaled to unit length, float32.
    class_index_ : ndarray of shape (n_samples,)
        Column in `classes_` of each labelled row.

    Notes
    -----
    Search by faiss (models/neighbours.py). Every class keeps a probability of at least about FLOOR, so
    log-loss stays finite.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.1]], dtype=np.float32)
    >>> KNNHead(k=2).fit(X, [1, 1, 2, 2]).predict([[0.05, 0.95]])
    array([1])
    """

    _parameter_constraints = {"k": [Interval(Integral, 1, None, closed="left")], "exact": ["boolean"]}

    def __init__(self, k=10, exact=False):
        self.k = k
        self.exact = exact

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Keep the labelled embeddings X, as unit rows, with their subset labels y; returns self."""
        X, self.class_index_ = self._fit_input(X, y)  # column in classes_ of each row
        self.units_ = unit_float32(X)
        return self

    def predict_proba(self, X):
        """Each class's share of the weighted votes of each row's k nearest neighbours."""
        similarities, indices = nearest(unit_float32(self._predict_input(X)), self.units_, self.k, self.exact)
        # As sklearn's cosine_distances: rounding can put a duplicate's similarity a hair above 1.
        distances = np.clip(1.0 - similarities, 0.0, 2.0)
        k = indices.shape[1]
        votes = np.full((len(indices), len(self.classes_)), FLOOR)
        rows = np.repeat(np.arange(len(indices)), k)
        np.add.at(votes, (rows, self.class_index_[indices].ravel()), 1.0 / (distances.ravel() + EPS))
        return votes / votes.sum(axis=1, keepdims=True)
