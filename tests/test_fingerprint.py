import numpy as np
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from features.fingerprint import FINGERPRINT_DIM, central_window, fingerprint
from models import make_head
from models.fingerprint import FingerprintHead


def generator_outputs(k: int, n: int, size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n smooth random images per generator, each generator adding its own faint high-frequency pattern
    (like the checkerboard of a transposed convolution)."""
    images, labels = [], []
    yy, xx = np.mgrid[:size, :size]
    for g in range(k):
        period_x, period_y = [(2, 2), (2, 3), (3, 2), (4, 2)][g]
        pattern = 8 * np.cos(2 * np.pi * xx / period_x) * np.cos(2 * np.pi * yy / period_y)
        for _ in range(n):
            smooth = np.cumsum(np.cumsum(rng.normal(0, 1, (size, size)), 0), 1)
            content = 128 + 30 * smooth / np.abs(smooth).max()
            images.append(np.clip(content + pattern + rng.normal(0, 1, (size, size)), 0, 255))
            labels.append(g)
    return np.stack(images), np.array(labels)


def test_fingerprint_has_a_fixed_length_whatever_the_image_size():
    for shape in [(64, 64), (512, 384), (20, 30)]:
        assert fingerprint(np.ones(shape)).shape == (FINGERPRINT_DIM,)
    window = central_window(np.arange(100 * 100, dtype=np.float32).reshape(100, 100))
    assert window[0, 0] == 18 * 100 + 18  # the centre of the image, not its corner


def test_fingerprints_separate_generators_not_content():
    images, generator = generator_outputs(4, 25, 64, np.random.default_rng(0))
    prints = np.stack([fingerprint(image) for image in images])
    clusters = FingerprintHead().generators(prints, 4)
    assert adjusted_rand_score(generator, clusters) > 0.95
    pixels = images.reshape(len(images), -1)  # the same K-means on raw pixels finds content, not generators
    assert adjusted_rand_score(generator, FingerprintHead().generators(pixels, 4)) < 0.5


def clustered_problem(rng, k=5, n=40, content_noise=2.2):
    """Embeddings: a weak per-image content signal; fingerprints: one tight cluster per generator."""
    centres = rng.normal(0, 1, (k, 16))
    def rows(labels):
        embeddings = centres[labels] + rng.normal(0, content_noise, (len(labels), 16))
        prints = np.eye(k)[labels] * 5 + rng.normal(0, 0.3, (len(labels), k))
        return np.hstack([embeddings, prints])
    train_labels = np.repeat(np.arange(k), n)
    test_labels = rng.permutation(np.repeat(np.arange(k), n))
    return rows(train_labels)[:, :16], train_labels + 1, rows(test_labels), test_labels + 1


def test_whole_clusters_are_attributed_where_single_images_are_not():
    X_train, y_train, X_test, y_test = clustered_problem(np.random.default_rng(1))
    # Fit sees only embeddings' columns; the fingerprint columns of training rows are never used.
    padded = np.hstack([X_train, np.zeros((len(X_train), 5))])
    head = FingerprintHead(n_embedding=16, pca=4).fit(padded, y_train)
    per_image = make_head("logreg").fit(X_train, y_train).predict(X_test[:, :16])
    assert np.mean(per_image == y_test) < 0.8
    assert np.mean(head.predict(X_test) == y_test) == 1.0
    proba = head.predict_proba(X_test)
    assert np.allclose(proba.sum(axis=1), 1) and (head.classes_[proba.argmax(1)] == head.predict(X_test)).all()
    assert clone(head).get_params() == head.get_params()


def test_few_images_fall_back_to_single_image_attribution():
    X_train, y_train, X_test, _ = clustered_problem(np.random.default_rng(2))
    head = FingerprintHead(n_embedding=16, pca=4).fit(np.hstack([X_train, np.zeros((len(X_train), 5))]), y_train)
    assert head.predict_proba(X_test[:3]).shape == (3, 5)
