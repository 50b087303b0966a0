"""Abstention: flag images that no candidate subset explains, e.g. from a generator trained on none of them.

The score is the cosine distance from an image to its nearest labelled training image, described by its
embedding and, when the training rows are generated images, also by the log power spectrum of its noise
residual (centred on the training rows'): an unfamiliar generator shows in both. The threshold is a quantile of the same
score on held-out labelled images, so quantile 0.99 abstains on about 1 % of images like those. Calibrated
on held-out generated images (challenge regime) it flags outputs of generators unlike any candidate's; in the
audit regime it uses embeddings alone, is calibrated on held-out real images and abstains more, since
generated images sit further from real ones than real images do.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .cosine import unit_rows
from .neighbours import nearest

BLOCK_ROWS = 16384  # rows described at a time: a residual's spectrum and its intermediates, 100 KB a row


def log_power_spectrum(residuals: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|²) of each square residual (rows of W·W values), flattened: where a generator's periodic
    pattern shows whatever its position in the image."""
    side = int(round(np.sqrt(residuals.shape[1])))
    windows = np.asarray(residuals, dtype=np.float32).reshape(len(residuals), side, side)
    return np.log1p(np.abs(np.fft.rfft2(windows)) ** 2).astype(np.float32).reshape(len(residuals), -1)


class NoveltyGate(BaseEstimator):
    """Flags rows less similar to every training row than most held-out rows are.

    Parameters
    ----------
    n_embedding : int, default=512
        Columns of X that hold the embedding; those after them, when present, hold the noise residual.
    use_residuals : bool, default=True
        Describe rows by their residual's spectrum too, when X has residuals. False for real training rows:
        real images carry no generator's print.

    Attributes
    ----------
    n_features_in_ : int
        Width of the rows `fit` saw.
    centre_ : ndarray of shape (n_frequencies,) or float
        Mean log power spectrum of the training rows; 0.0 when they have no residuals.
    bank_ : ndarray of shape (n_samples, n_described)
        The training rows as `describe` gives them.
    heldout_similarity_ : ndarray of shape (n_heldout,)
        Each held-out row's similarity to its nearest training row: `threshold` is a quantile of these, so
        any quantile is read without fitting again.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(4, 6, dtype=np.float32)
    >>> gate = NoveltyGate(n_embedding=6).fit(X[:3], X_val=X[:3])
    >>> gate.novel(X, quantile=0.5)
    array([False, False, False,  True])
    """

    _parameter_constraints = {"n_embedding": [Interval(Integral, 1, None, closed="left")],
                              "use_residuals": ["boolean"]}

    def __init__(self, n_embedding=512, use_residuals=True):
        self.n_embedding = n_embedding
        self.use_residuals = use_residuals

    def spectra(self, X) -> np.ndarray:
        return log_power_spectrum(X[:, self.n_embedding:])

    def describe(self, X) -> np.ndarray:
        """The rows as the gate compares them, BLOCK_ROWS at a time: the spectrum's intermediates are several
        times a row's size."""
        return np.concatenate([self.describe_block(X[start:start + BLOCK_ROWS])
                               for start in range(0, len(X), BLOCK_ROWS)] or [self.describe_block(X[:0])])

    def describe_block(self, X) -> np.ndarray:
        parts = [unit_rows(X[:, :self.n_embedding])]
        if self.use_residuals and X.shape[1] > self.n_embedding:
            parts.append(unit_rows(self.spectra(X) - self.centre_))
        return np.ascontiguousarray(np.hstack(parts), dtype=np.float32)

    def similarity(self, X) -> np.ndarray:
        """Cosine similarity (summed over the parts) of each row of X to its nearest training row, BLOCK_ROWS
        rows at a time (a row's answer depends on it and the bank alone). Exact search at any size: a missed
        nearest row would make an image look novel."""
        return np.concatenate([nearest(self.describe_block(X[start:start + BLOCK_ROWS]), self.bank_, 1,
                                       exact=True)[0][:, 0] for start in range(0, len(X), BLOCK_ROWS)]
                              or [np.empty(0, np.float32)])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, X_val=None):
        """Keep the training rows X ([embeddings | residuals]) and calibrate on the held-out rows X_val, which
        neither the backbone nor the head saw; y is ignored. Returns self."""
        if X_val is None:
            raise ValueError("NoveltyGate.fit needs X_val: held-out rows to calibrate its threshold on")
        X = validate_data(self, X, dtype=np.float32)
        X_val = validate_data(self, X_val, dtype=np.float32, reset=False)
        self.centre_ = 0.0
        if X.shape[1] > self.n_embedding:  # the mean spectrum, summed a block at a time
            blocks = range(0, len(X), BLOCK_ROWS)
            self.centre_ = (self.spectra(X).mean(axis=0) if len(X) <= BLOCK_ROWS else
                            (sum(self.spectra(X[s:s + BLOCK_ROWS]).sum(axis=0, dtype=np.float64) for s in blocks)
                             / len(X)).astype(np.float32))
        self.bank_ = self.describe(X)
        self.heldout_similarity_ = self.similarity(X_val)
        return self

    def threshold(self, quantile: float) -> float:
        """The similarity that a fraction `quantile` of the held-out rows reach."""
        check_is_fitted(self)
        return float(np.quantile(self.heldout_similarity_, 1 - quantile))

    def novel(self, X, quantile: float = 0.99) -> np.ndarray:
        """True for the rows of X less similar to every training row than `quantile` of the held-out rows."""
        threshold = self.threshold(quantile)
        return self.similarity(validate_data(self, X, dtype=np.float32, reset=False)) < threshold
