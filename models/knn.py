"""k-nearest-neighbour head: the labelled embeddings closest in cosine similarity vote for their class."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np
from joblib import cpu_count
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval
from threadpoolctl import threadpool_limits

from .base import EmbeddingHead
from .cosine import unit_rows

# Keeps an exact duplicate (cosine distance 0) from getting an infinite vote.
EPS = 1e-6
# Every class keeps a sliver of probability, so no row is all-zero and log-loss stays finite.
FLOOR = 1e-9
# Query rows per similarity block: 1024 x 25k float32 is 100 MB, and its argpartition indices twice that.
CHUNK = 1024


def nearest(queries, units, k):
    """(cosine distances, indices) of the k rows of `units` most similar to each query, both unit rows; exact
    brute force, the k in no particular order."""
    similarity = queries @ units.T
    index = np.argpartition(similarity, -k, axis=1)[:, -k:]
    # As sklearn's cosine_distances: rounding can put a duplicate's similarity a hair above 1.
    return np.clip(1.0 - np.take_along_axis(similarity, index, axis=1), 0.0, 2.0), index


class KNNHead(EmbeddingHead):
    """The k labelled rows nearest in cosine vote, each with weight 1 / (cosine distance + EPS).

    Parameters
    ----------
    k : int, default=10
        Neighbours that vote; clipped to the number of labelled rows.

    Attributes
    ----------
    classes_, n_features_in_
        As every head's (EmbeddingHead).
    units_ : ndarray of shape (n_samples, n_features)
        The labelled rows scaled to unit length, in their input dtype.
    class_index_ : ndarray of shape (n_samples,)
        Column in `classes_` of each labelled row.

    Notes
    -----
    Exact brute-force search in blocks of CHUNK query rows, run in parallel. Every class keeps a probability
    of at least about FLOOR, so log-loss stays finite.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.1]], dtype=np.float32)
    >>> KNNHead(k=2).fit(X, [1, 1, 2, 2]).predict([[0.05, 0.95]])
    array([1])
    """

    _parameter_constraints = {"k": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, k=10):
        self.k = k

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Keep the labelled embeddings X, as unit rows, with their subset labels y; returns self."""
        X, self.class_index_ = self._fit_input(X, y)  # column in classes_ of each row
        self.units_ = unit_rows(X)  # in X's dtype: float32 embeddings keep float32 products
        return self

    def predict_proba(self, X):
        """Each class's share of the weighted votes of each row's k nearest neighbours."""
        queries = unit_rows(self._predict_input(X).astype(self.units_.dtype, copy=False))
        k = min(self.k, len(self.units_))
        # Blocks run in parallel, one BLAS thread each: numpy's argpartition holds the GIL, so with one
        # multithreaded product at a time a core would idle through every block's argpartition.
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(cpu_count()) as pool:
            blocks = list(pool.map(lambda start: nearest(queries[start:start + CHUNK], self.units_, k),
                                   range(0, len(queries), CHUNK)))
        distances, indices = (np.vstack(part) for part in zip(*blocks))
        votes = np.full((len(queries), len(self.classes_)), FLOOR)
        rows = np.repeat(np.arange(len(queries)), k)
        np.add.at(votes, (rows, self.class_index_[indices].ravel()), 1.0 / (distances.ravel() + EPS))
        return votes / votes.sum(axis=1, keepdims=True)
