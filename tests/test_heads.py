"""Stage 2 heads on synthetic 512-d embeddings: accuracy, probability layout, the scikit-learn contract."""
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from ganprov.models import HEADS, ClusterHead, CosineHead, HeadError, KNNHead, LogRegHead, make_head
from ganprov.models.novelty import NoveltyGate

DIM = 512
HEAD_FACTORIES = [LogRegHead, lambda: LogRegHead(pca=8), CosineHead, lambda: KNNHead(k=5), ClusterHead]
HEAD_IDS = ["logreg", "logreg-pca", "cosine", "knn", "cluster"]
# Transductive by design: ClusterHead's labels depend on which other rows share the batch.
TRANSDUCTIVE = {"check_methods_subset_invariance": "clusters the batch it scores",
                "check_methods_sample_order_invariance": "KMeans starts differ with row order"}


def class_means(n_classes, seed=0):
    """Random directions in 512-d: unit length on average and nearly orthogonal."""
    return np.random.default_rng(seed).normal(size=(n_classes, DIM)) / np.sqrt(DIM)


def sample(means, labels, per_class, noise, seed):
    """`per_class` points around each mean; `noise` is the expected length of the noise vector."""
    rng = np.random.default_rng(seed)
    X = np.repeat(means, per_class, axis=0) + rng.normal(scale=noise / np.sqrt(DIM), size=(len(means) * per_class, DIM))
    return X.astype(np.float32), np.repeat(labels, per_class)


def split(labels, noise, per_class=40, seed=0):
    """(X_train, y_train, X_test, y_test) drawn from the same blobs."""
    means = class_means(len(labels), seed)
    return (*sample(means, labels, per_class, noise, seed + 1), *sample(means, labels, per_class, noise, seed + 2))


def accuracy(head, X, y):
    return float(np.mean(head.predict(X) == y))


@pytest.mark.parametrize("make", HEAD_FACTORIES, ids=HEAD_IDS)
@pytest.mark.parametrize("n_classes", [3, 7])
def test_separated_blobs_are_attributed(make, n_classes):
    X, y, X_test, y_test = split(np.arange(1, n_classes + 1), noise=1.0)
    assert accuracy(make().fit(X, y), X_test, y_test) >= 0.95


@pytest.mark.parametrize("make", HEAD_FACTORIES, ids=HEAD_IDS)
def test_overlapping_blobs_beat_chance(make):
    labels = np.arange(1, 6)
    X, y, X_test, y_test = split(labels, noise=6.0, per_class=60)  # noise 6x the signal: heads err often
    assert accuracy(make().fit(X, y), X_test, y_test) > 1 / len(labels) + 0.15


@pytest.mark.parametrize("make", HEAD_FACTORIES, ids=HEAD_IDS)
def test_proba_columns_follow_non_contiguous_classes(make):
    labels = np.array([9, 2, 5])  # unsorted and with gaps, as subset numbers can be
    X, y, X_test, y_test = split(labels, noise=1.0, per_class=20)
    head = make().fit(X, y)
    proba = head.predict_proba(X_test)
    np.testing.assert_array_equal(head.classes_, [2, 5, 9])
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba >= 0).all()
    np.testing.assert_array_equal(head.classes_[proba.argmax(axis=1)], y_test)
    np.testing.assert_array_equal(head.predict(X_test), y_test)


@pytest.mark.parametrize("make", HEAD_FACTORIES, ids=HEAD_IDS)
def test_sklearn_contract(make):
    X, y, X_test, _ = split(np.array([1, 2, 3]), noise=1.0, per_class=10)
    head = make()
    with pytest.raises(NotFittedError):
        head.predict(X_test)
    with pytest.raises(NotFittedError):
        head.predict_proba(X_test)
    assert head.fit(X, y) is head
    twin = clone(head)
    assert twin.get_params() == head.get_params()
    assert not hasattr(twin, "classes_")
    with pytest.raises(ValueError):
        head.predict(X_test[:, :100])  # another embedding width


@pytest.mark.parametrize("head_class", list(HEADS.values()), ids=list(HEADS))
def test_init_only_stores_params(head_class):
    sentinels = {name: object() for name in head_class().get_params()}
    head = head_class(**sentinels)  # nonsense values: __init__ must not look at them
    assert vars(head) == sentinels


# One value each head's __init__ stores as it is and its fit refuses.
BAD_PARAMS = {"logreg": {"pca": 0}, "cosine": {"temperature": 0.0}, "knn": {"k": 0}, "cluster": {"seed": -1},
              "fingerprint": {"content": "svm"}}


@pytest.mark.parametrize("name", list(HEADS))
def test_a_bad_parameter_raises_at_fit(name):
    X, y, _, _ = split(np.array([1, 2, 3]), noise=1.0, per_class=10)
    (param, value), = BAD_PARAMS[name].items()
    head = HEADS[name](**{param: value})
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter of {HEADS[name].__name__} must be"):
        head.fit(X, y)


@pytest.mark.parametrize("estimator", [head() for head in HEADS.values()] + [NoveltyGate()],
                         ids=[*HEADS, "novelty"])
def test_every_parameter_is_constrained(estimator):
    """scikit-learn's own check: a constraint for every parameter, and fit refuses values of another type."""
    check_param_validation(type(estimator).__name__, estimator)


def test_every_head_says_whether_it_uses_residuals():
    assert {name: head.uses_residuals for name, head in HEADS.items()} == {
        "logreg": False, "cosine": False, "knn": False, "cluster": False, "fingerprint": True}


@parametrize_with_checks([head() for head in HEADS.values()],
                         # FingerprintHead scores image by image here: the checks' data have no fingerprint columns.
                         expected_failed_checks=lambda head: TRANSDUCTIVE if isinstance(head, ClusterHead) else {},
                         xfail_strict=False)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_knn_clips_k_and_keeps_every_class_possible():
    X, y, X_test, _ = split(np.array([1, 2, 3]), noise=1.0, per_class=4)
    proba = KNNHead(k=1000).fit(X, y).predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba > 0).all()


def brute_force_votes(X, y, X_test, k):
    """The k-NN head's probabilities from scikit-learn's exact cosine neighbours."""
    from sklearn.neighbors import NearestNeighbors

    from ganprov.models.knn import EPS, FLOOR

    distances, indices = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(X).kneighbors(X_test)
    votes = np.full((len(X_test), y.max() + 1), FLOOR)
    np.add.at(votes, (np.repeat(np.arange(len(X_test)), k), y[indices].ravel()), 1.0 / (distances.ravel() + EPS))
    return votes / votes.sum(axis=1, keepdims=True)


def test_knn_matches_sklearn_cosine_brute_force():
    """faiss's search gives the votes sklearn's exact cosine neighbours give, over more queries than one of its
    BLAS blocks (4,096) holds."""
    rng = np.random.default_rng(0)
    X, X_test = (rng.normal(size=(n, 64)).astype(np.float32) for n in (3000, 4096 + 7))
    y = rng.integers(0, 4, len(X))
    np.testing.assert_allclose(KNNHead(k=7).fit(X, y).predict_proba(X_test), brute_force_votes(X, y, X_test, 7),
                               rtol=1e-4)


def clustered_rows(n: int, seed: int, dim: int = 32, clusters: int = 40):
    """Unit rows around `clusters` centres, as embeddings of several kinds of image are."""
    from ganprov.models.neighbours import unit_float32

    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(clusters, dim))
    return unit_float32(centres[rng.integers(0, clusters, n)] + 0.8 * rng.normal(size=(n, dim)))


def test_search_past_approximate_from_finds_nearly_every_true_neighbour_and_needs_no_other_query():
    from ganprov.models.neighbours import APPROXIMATE_FROM, nearest

    references, queries = clustered_rows(APPROXIMATE_FROM + 500, 0), clustered_rows(1500, 1)
    exact_similarities, exact = nearest(queries, references, 10, exact=True)
    similarities, found = nearest(queries, references, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
    assert 0.95 <= recall < 1.0  # approximate indeed, and close
    assert (np.diff(similarities, axis=1) <= 0).all() and (similarities <= exact_similarities + 1e-5).all()
    # A query's answer does not depend on which others are searched with it (predict in blocks is safe).
    np.testing.assert_array_equal(nearest(queries[:100], references, 10)[1], found[:100])


def test_knn_exact_option_and_short_lists_search_exactly_past_approximate_from(monkeypatch):
    from ganprov.models import neighbours

    monkeypatch.setattr(neighbours, "APPROXIMATE_FROM", 100)
    X, X_test = clustered_rows(2000, 0), clustered_rows(300, 1)
    y = np.random.default_rng(0).integers(0, 3, len(X))
    # 1,000 neighbours: more than any query's probed lists (3 of 16) hold, so every query is searched exactly.
    np.testing.assert_array_equal(neighbours.nearest(X_test, X, 1000)[1], neighbours.nearest(X_test, X, 1000, exact=True)[1])
    np.testing.assert_allclose(KNNHead(k=7, exact=True).fit(X, y).predict_proba(X_test),
                               brute_force_votes(X, y, X_test, 7), rtol=1e-4)
    approximate = KNNHead(k=7).fit(X, y).predict_proba(X_test)
    assert not np.allclose(approximate, brute_force_votes(X, y, X_test, 7), rtol=1e-4)


def test_rows_by_list_are_the_rows_that_name_the_list_in_ascending_order():
    from ganprov.models.neighbours import by_list

    rng = np.random.default_rng(0)
    probed = np.stack([rng.choice(20, 4, replace=False) for _ in range(500)])  # each row names 4 lists once
    for assigned in (probed, probed[:, :1]):
        rows = by_list(assigned, 20)
        assert len(rows) == 20
        for number, found in enumerate(rows):
            np.testing.assert_array_equal(found, np.flatnonzero((assigned == number).any(axis=1)))


def test_knn_exact_duplicate_dominates():
    X, y, _, _ = split(np.array([1, 2, 3]), noise=1.0, per_class=10)
    proba = KNNHead(k=10).fit(X, y).predict_proba(X[:1])
    assert proba[0, 0] > 0.99


def test_cluster_head_recovers_shifted_generators_that_nearest_centroid_misses():
    """Each generator's images drift 48% of the way toward the next subset: one by one they sit almost
    halfway, so nearest-centroid errs often; as clusters they still match their own subset."""
    labels = np.arange(1, 6)
    means = class_means(len(labels))
    X, y = sample(means, labels, 50, noise=1.5, seed=1)
    shifted = 0.52 * means + 0.48 * np.roll(means, -1, axis=0)
    X_test, y_test = sample(shifted, labels, 40, noise=1.5, seed=2)
    cosine = accuracy(CosineHead().fit(X, y), X_test, y_test)
    cluster = accuracy(ClusterHead().fit(X, y), X_test, y_test)
    assert cosine < 0.85
    assert cluster >= 0.95
    assert cluster > cosine + 0.1


def test_cluster_head_learns_its_centres_from_a_sample_of_a_large_batch(monkeypatch):
    """Past FIT_SAMPLE rows k-means sees a sample (speed and memory at scale): with enough rows per dimension
    in the sample, every row gets the label the whole batch gives it."""
    import ganprov.models.cluster as cluster_module

    rng = np.random.default_rng(0)
    means = rng.normal(0, 3, (5, 16))
    y = np.repeat(np.arange(1, 6), 40)
    X = (means[y - 1] + rng.normal(0, 1, (len(y), 16))).astype(np.float32)
    y_test = np.repeat(np.arange(1, 6), 400)
    drifted = 0.7 * means + 0.3 * np.roll(means, -1, axis=0)
    X_test = (drifted[y_test - 1] + rng.normal(0, 1, (len(y_test), 16))).astype(np.float32)
    whole = ClusterHead().fit(X, y).predict(X_test)
    monkeypatch.setattr(cluster_module, "FIT_SAMPLE", 300)
    np.testing.assert_array_equal(ClusterHead().fit(X, y).predict(X_test), whole)
    assert np.mean(whole == y_test) >= 0.95


def test_cluster_head_falls_back_to_centroids_on_tiny_batches():
    X, y, X_test, _ = split(np.array([1, 2, 3]), noise=1.0, per_class=10)
    cluster, cosine = ClusterHead().fit(X, y), CosineHead().fit(X, y)
    np.testing.assert_allclose(cluster.predict_proba(X_test[:2]), cosine.predict_proba(X_test[:2]))


def test_make_head_filters_shared_params():
    head = make_head("knn", k=3, pca=16, seed=1)
    assert isinstance(head, KNNHead) and head.get_params() == {"k": 3, "exact": False}
    assert make_head("logreg", pca=16, k=3).pca == 16
    assert make_head("cluster", seed=4).seed == 4


def test_make_head_rejects_unknown_names_and_params():
    with pytest.raises(HeadError, match="logreg, cosine, knn, cluster"):
        make_head("svm")
    with pytest.raises(HeadError, match="kk"):
        make_head("knn", kk=3)


def test_models_never_import_torch():
    code = "import sys, ganprov.models, ganprov.models.persistence; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
