"""Transductive head: cluster the set being attributed, then name each cluster after a class.

The unknown set holds the outputs of K generators. Generated images can sit away from the real subset they
came from (domain shift), so nearest-centroid mislabels many of them one by one; as a group, though, each
generator's images form a cluster whose centre is still closest to its own subset. So: KMeans with K
clusters on the batch, a one-to-one cluster-to-class matching (Hungarian, on cosine similarity between
cluster centres and class centroids), then each image is scored against the matched cluster centres.

Predictions therefore depend on the whole batch being scored: the same image can get another label in
another batch, and a batch should hold images of all K classes.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from .base import SEED
from .cosine import CosineHead, similarity_proba, unit_rows

FIT_SAMPLE = 50_000  # rows k-means learns the centres from


class ClusterHead(CosineHead):
    """`fit` learns class centroids (as CosineHead); `predict_proba(X)` clusters X itself.

    Parameters
    ----------
    seed : int, default=0
        Random state of the k-means starts.
    temperature : float, default=0.05
        Softmax temperature of the cosine to the matched cluster centres.

    Attributes
    ----------
    classes_, n_features_in_, centroids_
        As CosineHead's.

    Notes
    -----
    Transductive: a row's label depends on the other rows of the batch. With fewer rows than classes it
    falls back to cosine-to-class-centroid (CosineHead).
    """

    transductive = True
    _parameter_constraints = {**CosineHead._parameter_constraints, "seed": SEED}

    def __init__(self, seed=0, temperature=0.05):
        self.seed = seed
        self.temperature = temperature

    def predict_proba(self, X):
        """softmax over the classes of each row's cosine to the cluster centre matched to each class."""
        units = unit_rows(self._predict_input(X))
        n_classes = len(self.classes_)
        if len(units) < n_classes:
            return similarity_proba(units, self.centroids_, self.temperature)
        # Only the centres are used, so past FIT_SAMPLE rows they are learned from a sample: at 500,000 rows
        # k-means on all of them took 33 s and 9 GB. float64: sklearn's k-means++ runs float32 data through
        # many small upcast blocks, several times slower. Three k-means++ starts gave the same partition as
        # ten on 5 noisy, separated 512-d blobs.
        sample = units
        if len(units) > FIT_SAMPLE:
            sample = units[np.sort(np.random.default_rng(self.seed).choice(len(units), FIT_SAMPLE, replace=False))]
        kmeans = KMeans(n_clusters=n_classes, n_init=3, random_state=self.seed).fit(sample.astype(np.float64))
        centres = unit_rows(kmeans.cluster_centers_.astype(units.dtype))
        # Maximise total similarity: linear_sum_assignment minimises, hence the minus.
        cluster_of, class_of = linear_sum_assignment(-(centres @ self.centroids_.T))
        matched = centres.copy()
        matched[class_of] = centres[cluster_of]
        return similarity_proba(units, matched, self.temperature)
