"""Transductive head that attributes whole generators, not single images.

The set being attributed holds the outputs of K generators. Each generator leaves its own fingerprint
(features/fingerprint.py), so K-means on the fingerprints splits the set into one cluster per generator,
whatever the images show. Each cluster is then given, as a whole, to the subset its members' embeddings
resemble most: a logistic-regression head on the embeddings scores every image, the scores are summed per
cluster, and clusters are matched one-to-one to subsets (Hungarian). An image that looks like another
subset on its own (a generator's output can drift in content) is carried by the rest of its cluster.

X holds the embeddings in its first `n_embedding` columns and the fingerprints after them. Every image of a
cluster gets its cluster's probabilities: the softmax of its members' mean log-probabilities, reordered so
the matched subset comes first. Predictions depend on the whole batch scored; a batch should hold several
images from each generator.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import softmax
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from .base import EmbeddingHead
from .logreg import LogRegHead


class FingerprintHead(EmbeddingHead):
    uses_fingerprints = True

    def __init__(self, n_embedding=512, pca=32, seed=0):
        self.n_embedding = n_embedding
        self.pca = pca
        self.seed = seed

    def fit(self, X, y):
        X, y_index = self._fit_input(X, y)
        self.content_ = LogRegHead(seed=self.seed).fit(X[:, :self.n_embedding], self.classes_[y_index])
        return self

    def generators(self, fingerprints: np.ndarray, n_clusters: int) -> np.ndarray:
        """Cluster index of each row: K-means on PCA-reduced fingerprints. Not standardised: the spectral bins
        a generator marks carry more variance than the noise bins, and scaling would hide that."""
        n_components = min(self.pca, len(fingerprints) - 1, fingerprints.shape[1])
        reduced = PCA(n_components, random_state=self.seed).fit_transform(fingerprints)
        return KMeans(n_clusters, n_init=10, random_state=self.seed).fit_predict(reduced)

    def predict_proba(self, X):
        X = self._predict_input(X)
        log_p = np.log(np.clip(self.content_.predict_proba(X[:, :self.n_embedding]), 1e-12, None))
        k = len(self.classes_)
        if len(X) <= k or X.shape[1] <= self.n_embedding:  # too few images, or no fingerprints: image by image
            return np.exp(log_p)
        cluster = self.generators(X[:, self.n_embedding:], k)
        sizes = np.bincount(cluster, minlength=k)[:, None]
        mean_log_p = np.stack([log_p[cluster == c].mean(axis=0) for c in range(k)])
        rows, subsets = linear_sum_assignment(-mean_log_p * sizes)  # maximise the summed evidence
        proba = softmax(mean_log_p, axis=1)
        for c, s in zip(rows, subsets):  # the matched subset gets the top probability
            top = proba[c].argmax()
            proba[c, [s, top]] = proba[c, [top, s]]
        return proba[cluster]
