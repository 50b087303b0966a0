"""The paper's head: standardise, optionally reduce with PCA, then multinomial logistic regression."""
from __future__ import annotations

from numbers import Integral, Real

from sklearn.base import _fit_context
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval

from .base import SEED, EmbeddingHead
from .errors import HeadError


class LogRegHead(EmbeddingHead):
    """StandardScaler, then PCA when `pca` is set, then multinomial logistic regression.

    Parameters
    ----------
    pca : int or None, default=None
        Principal components kept before the classifier; None keeps every feature. At most
        min(n_samples, n_features).
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.
    max_iter : int, default=2000
        Iterations the lbfgs solver may take.
    seed : int, default=0
        Random state of the PCA.

    Attributes
    ----------
    classes_, n_features_in_
        As every head's (EmbeddingHead).
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted scaler, PCA and classifier, trained on column indices into `classes_`.
    n_iter_ : ndarray of shape (1,)
        Iterations the solver took.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.1]], dtype=np.float32)
    >>> LogRegHead().fit(X, [1, 1, 2, 2]).predict([[0.05, 0.95]])
    array([1])
    """

    _parameter_constraints = {
        "pca": [Interval(Integral, 1, None, closed="left"), None],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "seed": SEED,
    }

    def __init__(self, pca=None, C=1.0, max_iter=2000, seed=0):
        self.pca = pca
        self.C = C
        self.max_iter = max_iter
        self.seed = seed

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on embeddings X (n_samples, n_features) with subset labels y; returns self."""
        X, y_index = self._fit_input(X, y)
        steps = [StandardScaler()]
        if self.pca is not None:
            if self.pca > min(X.shape):  # PCA would fail with a traceback
                raise HeadError(f"--pca {self.pca}: at most {min(X.shape)} components fit {len(X)} rows of "
                                f"{X.shape[1]} features")
            steps.append(PCA(n_components=self.pca, random_state=self.seed))
        # lbfgs fits one multinomial (softmax) model for K > 2 classes, scikit-learn's default.
        steps.append(LogisticRegression(C=self.C, max_iter=self.max_iter))
        # Fit on column indices so the pipeline's columns are exactly `classes_`.
        self.pipeline_ = make_pipeline(*steps).fit(X, y_index)
        self.n_iter_ = self.pipeline_[-1].n_iter_  # sklearn convention for estimators with max_iter
        return self

    def predict_proba(self, X):
        """Probability of each class of `classes_` for each row of X, shape (n_samples, n_classes)."""
        X = self._predict_input(X)
        return self.pipeline_.predict_proba(X)
