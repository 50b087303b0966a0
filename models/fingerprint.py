"""Transductive head that attributes whole generators, not single images, and can say "undetermined".

The set being attributed holds the outputs of an unknown number of generators. Their noise residuals split it
into generator groups (models/generators.py), however many there are. Every image then votes for the subset
its embedding resembles most (a content head fitted on labelled embeddings: logreg by default), and each group,
as a whole, goes to the subset its images vote for — several groups may go to one subset, a subset may get
none — unless a bootstrap over its images says the votes do not decide at level `alpha`: then its images get
label 0 (models/group_evidence.py). An image that looks like another subset on its own is carried by the rest
of its generator's images.

X holds the embeddings in its first `n_embedding` columns and the noise residuals after them; fit reads the
embeddings only (the residuals of the set scored are what it groups), so its X may leave the residuals out. Predictions depend on the whole batch scored: a batch should hold many images of each
generator. With `one_generator_per_subset` (the challenge's setting) there are exactly K groups, matched
one-to-one to the K subsets.
"""
from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.metrics import confusion_matrix, homogeneity_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .base import FLOATS, SEED, EmbeddingHead
from .coverage import outcovered, reference_rows
from .generators import content_directions, fixed_groups, generator_groups
from .group_evidence import UNDETERMINED, judge_groups

# Held-out generated images per subset needed to check the grouping: two of its smallest groups (5 images).
CHECK_ROWS = 10


def content_head(name: str, seed: int):
    from . import make_head  # the registry imports this module
    return make_head(name, seed=seed)


class FingerprintHead(EmbeddingHead):
    """Attributes whole generator groups, found by their noise residuals, by their images' votes.

    Parameters
    ----------
    content : {"logreg", "cosine", "knn"}, default="logreg"
        The head whose per-image votes attribute each group.
    alpha : float, default=0.01
        Significance level, in (0, 1), below which a group is attributed; otherwise its images get label 0.
    merge_above : float, default=0.45
        Fingerprint correlation, in [-1, 1], above which two groups are one generator.
    one_generator_per_subset : bool, default=False
        Exactly one generator per subset, matched one-to-one (the challenge's setting).
    content_components : int, default=64
        Singular directions of the real images' residuals (their anatomy, no generator's print) taken out of
        every residual before grouping, when `fit` is given `content_residuals`; 0 takes out nothing.
    coverage_neighbours : int, default=10
        Where several groups go to one subset, a labelled image of it counts as covered by a group when one of
        the group's images lies within its this-many-th nearest labelled neighbour; a group that covers
        significantly less (at `alpha`) than another is undetermined (models/coverage.py). 0: no check.
    trust_groups_above : float, default=0.9
        With labelled generated held-out rows (challenge regime, at least CHECK_ROWS per subset): the
        homogeneity of the groups found among them (1: no group mixes two generators) below which grouping
        is not trusted and images are attributed one by one by the content head.
    n_embedding : int, default=512
        Columns of X that hold the embedding; those after them hold the noise residual.
    seed : int, default=0
        Random state of the content head, the grouping and the bootstrap.

    Attributes
    ----------
    classes_
        As every head's (EmbeddingHead).
    n_features_in_ : int
        The embedding columns fit read (`n_embedding`).
    content_ : EmbeddingHead
        The fitted content head, on the first `n_embedding` columns.
    confusion_ : ndarray of shape (n_classes, n_classes) or None
        The content head's confusion matrix on the held-out rows given to `fit`; None without them.
    coverage_reference_ : list of ndarray
        Per class, up to 2,000 of the rows fit was given, unit length: what the coverage check measures.
    content_directions_ : ndarray of shape (n_directions, n_residual) or None
        The directions taken out of residuals before grouping; None without `content_residuals`.
    grouping_homogeneity_ : float or None
        Homogeneity of the groups found among held-out labelled generated rows; None when there are none
        (audit regime: real images carry no generator's print to group by).

    Notes
    -----
    Transductive: predictions depend on the whole batch, which should hold many images of each generator.
    Rows without residual columns are attributed image by image by the content head, and so is every row when
    the grouping mixed the generators of the labelled held-out generated rows (`grouping_homogeneity_`).
    """

    uses_residuals = True
    transductive = True
    _parameter_constraints = {
        "content": [StrOptions({"logreg", "cosine", "knn"})],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "merge_above": [Interval(Real, -1, 1, closed="both")],
        "content_components": [Interval(Integral, 0, None, closed="left")],
        "coverage_neighbours": [Interval(Integral, 0, None, closed="left")],
        "trust_groups_above": [Interval(Real, 0, 1, closed="both")],
        "one_generator_per_subset": ["boolean"],
        "n_embedding": [Interval(Integral, 1, None, closed="left")],
        "seed": SEED,
    }

    def __init__(self, content="logreg", alpha=0.01, merge_above=0.45, content_components=64,
                 coverage_neighbours=10, trust_groups_above=0.9, one_generator_per_subset=False, n_embedding=512,
                 seed=0):
        self.content = content
        self.alpha = alpha
        self.merge_above = merge_above
        self.content_components = content_components
        self.coverage_neighbours = coverage_neighbours
        self.trust_groups_above = trust_groups_above
        self.one_generator_per_subset = one_generator_per_subset
        self.n_embedding = n_embedding
        self.seed = seed

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, X_val=None, y_val=None, generated_val=False, content_residuals=None):
        """Fit the content head on (X, y); returns self. (X_val, y_val): held-out labelled rows, seen by neither
        the backbone nor this fit, whose confusion matrix says how much a vote is worth
        (models/group_evidence.py); without them a vote for a subset counts for that subset alone. With
        `generated_val` they are generated images, one generator per subset, and the grouping is checked on
        them: where it mixes their generators (a set downscaled ×0.5 loses most of the generators' prints),
        images are attributed one by one. `content_residuals`: noise residuals of real images, resized as the
        images to be scored are, whose first singular directions (anatomy) are taken out before grouping."""
        X, y_index = self._fit_input(check_array(X, dtype=FLOATS)[:, :self.n_embedding], y)
        self.content_ = content_head(self.content, self.seed).fit(X, self.classes_[y_index])
        self.coverage_reference_ = reference_rows(X, y_index, len(self.classes_), self.seed)
        self.confusion_ = None
        if X_val is not None and len(X_val):
            X_val = self._predict_input(X_val)
            predicted = self.content_.predict(X_val[:, :self.n_embedding])
            self.confusion_ = confusion_matrix(y_val, predicted, labels=self.classes_)
        self.content_directions_ = None
        if content_residuals is not None and self.content_components:
            self.content_directions_ = content_directions(content_residuals, self.content_components, self.seed)
        self.grouping_homogeneity_ = None
        if (generated_val and X_val is not None and len(X_val) and X_val.shape[1] > self.n_embedding
                and min(np.unique(y_val, return_counts=True)[1]) >= CHECK_ROWS):
            self.grouping_homogeneity_ = float(homogeneity_score(y_val, self.groups(X_val)))
        return self

    def _predict_input(self, X):
        """Validated X: its embedding columns checked against what fit saw (for heads saved before fit read
        the embeddings alone, the whole row); residual columns after them of any width (none: no groups)."""
        check_is_fitted(self)
        X = check_array(X, dtype=FLOATS)
        validate_data(self, X[:, :self.n_features_in_], dtype=FLOATS, reset=False)
        return X

    def groups(self, X) -> np.ndarray:
        """Generator group of each row (0..G-1, largest first)."""
        return self.residual_groups(self._predict_input(X)[:, self.n_embedding:])

    def residual_groups(self, residuals) -> np.ndarray:
        """Generator group of each row of `residuals` (an array or an h5py dataset, read a block at a time)."""
        content = getattr(self, "content_directions_", None)  # None in heads saved before it existed
        if self.one_generator_per_subset:
            return fixed_groups(residuals, len(self.classes_), seed=self.seed, content=content)
        return generator_groups(residuals, merge_above=self.merge_above, seed=self.seed, content=content)

    def explain(self, X):
        """(labels, probabilities, groups, verdicts): the per-group evidence behind `attribute`; groups None
        and no verdicts where images are attributed one by one."""
        X = self._predict_input(X)
        return self.explain_rows(X[:, :self.n_embedding], X[:, self.n_embedding:])

    def explain_rows(self, embeddings, residuals):
        """`explain` with the embeddings and the residuals apart: `residuals` may be any array-like of rows,
        e.g. an h5py dataset, read a block at a time, so a million images' residuals never sit in memory."""
        check_is_fitted(self)
        embeddings = check_array(embeddings, dtype=FLOATS)
        width = min(self.n_features_in_, self.n_embedding)  # heads saved before fit read embeddings alone: more
        if embeddings.shape[1] != width or len(residuals) != len(embeddings):
            raise ValueError(f"expected {width} embedding columns and one residual row per row, got "
                             f"{embeddings.shape[1]} columns, {len(embeddings)} and {len(residuals)} rows")
        proba = self.content_.predict_proba(embeddings)
        checked = self.grouping_homogeneity_
        untrusted = checked is not None and checked < self.trust_groups_above
        if not residuals.shape[1] or untrusted:  # no (trusted) groups: the content head image by image
            return self.classes_[proba.argmax(axis=1)], proba, None, []
        votes = proba.argmax(axis=1)  # content_ was fitted on the same labels: same columns as classes_
        groups = self.residual_groups(residuals)
        verdicts = self.checked_coverage(judge_groups(votes, groups, self.classes_, self.alpha, self.confusion_,
                                                      self.one_generator_per_subset, self.seed), embeddings, groups)
        support = np.array([v.support_by_subset for v in verdicts]).reshape(-1, len(self.classes_))
        labels = np.array([v.subset for v in verdicts], dtype=self.classes_.dtype)[groups]
        return labels, support[groups], groups, verdicts

    def checked_coverage(self, verdicts: list, embeddings, groups) -> list:
        """Verdicts with the groups another group of their subset out-covers made undetermined."""
        references = getattr(self, "coverage_reference_", None)  # None in heads saved before it existed
        if references is None or self.one_generator_per_subset or not self.coverage_neighbours:
            return verdicts
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        labels = np.array([index.get(v.subset, -1) if v.subset != UNDETERMINED else -1 for v in verdicts])
        found, reach = outcovered(labels, embeddings, groups, references, self.coverage_neighbours, self.alpha,
                                  self.seed)
        verdicts = [replace(v, covers=reach[v.group].covered, labelled=reach[v.group].labelled)
                    if v.group in reach else v for v in verdicts]
        return [replace(v, subset=UNDETERMINED, outcovered_by=found[v.group].by, coverage_p=found[v.group].p_value)
                if v.group in found else v for v in verdicts]

    def attribute(self, X):
        labels, proba, _, _ = self.explain(X)
        return labels, proba

    def predict_proba(self, X):
        """Each image's group's bootstrap support for every subset: the probability, given its votes, that the
        subset is the one the group's images favour."""
        return self.attribute(X)[1]
