"""The scikit-learn classifier contract every stage-2 head shares.

Heads score 512-d embeddings, never images. Each subclass stores its parameters in `__init__`, declares their
valid values in `_parameter_constraints`, learns in `fit` (which checks them, as scikit-learn's own estimators
do, with `@_fit_context`) and implements `predict_proba`; this base checks inputs the sklearn way and derives
`predict`.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

# Embeddings are float32 on disk; keep them so (no float64 copy of 25k x 512) unless they come in as float64.
FLOATS = (np.float32, np.float64)
# Valid `seed` values: what numpy and scikit-learn accept, as core.settings.seed_int checks for the CLI.
SEED = [Interval(Integral, 0, 2 ** 32 - 1, closed="both")]


class EmbeddingHead(ClassifierMixin, BaseEstimator):
    """Base for heads; mixin before BaseEstimator, as scikit-learn requires for its tags.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Subset labels seen in `fit`, in the order of `predict_proba`'s columns.
    n_features_in_ : int
        Width of the rows `fit` saw.
    uses_residuals : bool
        Class attribute: whether the head scores [embeddings | noise residuals] rows rather than embeddings
        alone (see models/embeddings.py, `inputs_for`). False here.
    transductive : bool
        Class attribute: whether a row's prediction depends on the other rows scored with it (the head
        clusters the batch), so a set must be scored whole. False here: any split into blocks gives the same.
    """

    uses_residuals = False
    transductive = False
    _parameter_constraints: dict = {}

    def _fit_input(self, X, y):
        """Validated (X, y as column indices into `classes_`); sets `classes_` and `n_features_in_`."""
        X, y = validate_data(self, X, y, dtype=FLOATS)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        return X, y_index

    def _predict_input(self, X):
        """Validated X for a fitted head: NotFittedError before fit, ValueError on a wrong width."""
        check_is_fitted(self)
        return validate_data(self, X, dtype=FLOATS, reset=False)

    def attribute(self, X):
        """(labels, probabilities) in one pass. Heads that may leave an image undetermined (label 0) override
        this; for the others the label is the most probable class."""
        proba = self.predict_proba(X)  # first, so an unfitted head raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)], proba

    def predict(self, X):
        """The label of each row of X: one of `classes_`, or 0 where the head leaves it undetermined."""
        return self.attribute(X)[0]
