"""The paper's head: standardise, optionally reduce with PCA, then multinomial logistic regression."""
from __future__ import annotations

from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .base import EmbeddingHead
from .errors import HeadError


class LogRegHead(EmbeddingHead):
    """StandardScaler -> PCA(pca) when pca is not None -> LogisticRegression(C, max_iter)."""

    def __init__(self, pca=None, C=1.0, max_iter=2000, seed=0):
        self.pca = pca
        self.C = C
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X, y):
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
        X = self._predict_input(X)
        return self.pipeline_.predict_proba(X)
