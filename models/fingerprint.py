"""Transductive head that attributes whole generators, not single images, and can say "undetermined".

The set being attributed holds the outputs of an unknown number of generators. Their noise residuals split it
into generator groups (models/generators.py), however many there are. Every image then votes for the subset
its embedding resembles most (a content head fitted on labelled embeddings: logreg by default), and each group,
as a whole, goes to the subset its images vote for — several groups may go to one subset, a subset may get
none — unless a bootstrap over its images says the votes do not decide at level `alpha`: then its images get
label 0 (models/group_evidence.py). An image that looks like another subset on its own is carried by the rest
of its generator's images.

X holds the embeddings in its first `n_embedding` columns and the noise residuals after them; fit uses the
embeddings only. Predictions depend on the whole batch scored: a batch should hold many images of each
generator. With `one_generator_per_subset` (the challenge's setting) there are exactly K groups, matched
one-to-one to the K subsets.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.utils.validation import validate_data

from .base import FLOATS, EmbeddingHead
from .generators import fixed_groups, generator_groups
from .group_evidence import judge_groups


def content_head(name: str, seed: int):
    from . import make_head  # the registry imports this module
    return make_head(name, seed=seed)


class FingerprintHead(EmbeddingHead):
    """Parameters: content (head that gives each image's vote: knn, cosine or logreg), alpha (significance
    level of a group's attribution), merge_above (fingerprint correlation above which two groups are one
    generator), one_generator_per_subset, n_embedding, seed."""

    uses_residuals = True

    def __init__(self, content="logreg", alpha=0.01, merge_above=0.45, one_generator_per_subset=False,
                 n_embedding=512, seed=0):
        self.content = content
        self.alpha = alpha
        self.merge_above = merge_above
        self.one_generator_per_subset = one_generator_per_subset
        self.n_embedding = n_embedding
        self.seed = seed

    def fit(self, X, y, X_val=None, y_val=None):
        """Fit the content head on (X, y). (X_val, y_val): held-out labelled rows, seen by neither the backbone
        nor this fit, whose confusion matrix says how much a vote is worth (models/group_evidence.py); without
        them a vote for a subset counts for that subset alone."""
        X, y_index = self._fit_input(X, y)
        self.content_ = content_head(self.content, self.seed).fit(X[:, :self.n_embedding], self.classes_[y_index])
        self.confusion_ = None
        if X_val is not None and len(X_val):
            X_val = validate_data(self, X_val, dtype=FLOATS, reset=False)
            predicted = self.content_.predict(X_val[:, :self.n_embedding])
            self.confusion_ = confusion_matrix(y_val, predicted, labels=self.classes_)
        return self

    def groups(self, X) -> np.ndarray:
        """Generator group of each row (0..G-1, largest first)."""
        residuals = X[:, self.n_embedding:]
        if self.one_generator_per_subset:
            return fixed_groups(residuals, len(self.classes_), seed=self.seed)
        return generator_groups(residuals, merge_above=self.merge_above, seed=self.seed)

    def explain(self, X):
        """(labels, probabilities, groups, verdicts): the per-group evidence behind `attribute`."""
        X = self._predict_input(X)
        proba = self.content_.predict_proba(X[:, :self.n_embedding])
        if X.shape[1] <= self.n_embedding:  # no residuals, no groups: the content head image by image
            return self.classes_[proba.argmax(axis=1)], proba, np.arange(len(X)), []
        votes = proba.argmax(axis=1)  # content_ was fitted on the same labels: same columns as classes_
        groups = self.groups(X)
        verdicts = judge_groups(votes, groups, self.classes_, self.alpha, self.confusion_,
                                self.one_generator_per_subset, self.seed)
        support = np.array([v.support_by_subset for v in verdicts]).reshape(-1, len(self.classes_))
        labels = np.array([v.subset for v in verdicts], dtype=self.classes_.dtype)[groups]
        return labels, support[groups], groups, verdicts

    def attribute(self, X):
        labels, proba, _, _ = self.explain(X)
        return labels, proba

    def predict_proba(self, X):
        """Each image's group's bootstrap support for every subset: the probability, given its votes, that the
        subset is the one the group's images favour."""
        return self.attribute(X)[1]
