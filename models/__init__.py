"""Stage 2 heads: classifiers on 512-d embeddings that name the real subset behind each generated image.

No torch here: heads are plain scikit-learn estimators, fit and loaded without the backbone.
"""
from __future__ import annotations

from .cluster import ClusterHead
from .cosine import CosineHead
from .errors import HeadError
from .fingerprint import FingerprintHead
from .knn import KNNHead
from .logreg import LogRegHead

HEADS = {"logreg": LogRegHead, "cosine": CosineHead, "knn": KNNHead, "cluster": ClusterHead,
         "fingerprint": FingerprintHead}


def parameters() -> dict[str, set[str]]:
    """The parameters each registered head takes."""
    return {key: set(head().get_params()) for key, head in HEADS.items()}


def make_head(name: str, **params):
    """A head by registry name. Params are shared across heads (the CLI passes pca, k, seed, ... to all), so
    those this head does not take are dropped; one that no head takes is a typo and raises HeadError."""
    if name not in HEADS:
        raise HeadError(f"unknown head {name!r}; valid names: {', '.join(HEADS)}")
    known = parameters()
    unknown = set(params) - set().union(*known.values())
    if unknown:
        raise HeadError(f"no head takes parameter(s) {', '.join(sorted(unknown))}")
    return HEADS[name](**{key: value for key, value in params.items() if key in known[name]})
