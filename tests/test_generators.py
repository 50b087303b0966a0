"""Noise residuals, generator groups with no assumed number of generators, and group verdicts that can say
"undetermined"."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from ganprov.features.residual import RESIDUAL_DIM, central_crop, noise_residual
from ganprov.models import make_head
from ganprov.models.fingerprint import FingerprintHead
from ganprov.models.generators import (
    content_directions,
    fixed_groups,
    generator_groups,
    image_scores,
    reassign,
    unit_residuals,
)
from ganprov.models.group_evidence import UNDETERMINED, judge_groups, shared_subsets


def generator_outputs(counts, size=32, seed=0, amplitude=6.0):
    """Smooth random images (the content), each generator adding its own faint fixed high-frequency pattern
    at fixed pixel positions (like a transposed convolution's checkerboard and learned biases)."""
    rng = np.random.default_rng(seed)
    residuals, labels = [], []
    for g, n in enumerate(counts):
        pattern = amplitude * np.random.default_rng([seed, 99, g]).choice([-1.0, 1.0], (size, size))
        for _ in range(n):
            smooth = np.cumsum(np.cumsum(rng.normal(0, 1, (size, size)), 0), 1)
            image = 128 + 40 * smooth / np.abs(smooth).max() + pattern + rng.normal(0, 4, (size, size))
            residuals.append(noise_residual(np.clip(image, 0, 255)))
            labels.append(g)
    return np.stack(residuals), np.array(labels)


def shared_anatomy(counts, size=32, seed=0, amplitude=3.0):
    """(real residuals, generated residuals, generator of each): every image, real or generated, is one of six
    sharp-edged shapes at a random contrast, whose edges swamp the generators' faint prints; real images
    carry no print (as a slab of anatomy downscaled by half: its edges fill the residual)."""
    rng = np.random.default_rng(seed)
    shapes = np.random.default_rng([seed, 7]).random((6, size, size)) < 0.5

    def residual(pattern):
        shape = shapes[rng.integers(len(shapes))] * rng.uniform(40, 80)
        return noise_residual(80 + shape + pattern + rng.normal(0, 2, (size, size)))
    real = np.stack([residual(0.0) for _ in range(120)])
    generated, labels = [], []
    for g, n in enumerate(counts):
        pattern = amplitude * np.random.default_rng([seed, 99, g]).choice([-1.0, 1.0], (size, size))
        generated += [residual(pattern) for _ in range(n)]
        labels += [g] * n
    return real, np.stack(generated), np.array(labels)


def test_anatomy_that_real_images_share_is_taken_out_before_grouping():
    for seed in range(2):
        real, residuals, truth = shared_anatomy([40, 40, 40], seed=seed)
        assert adjusted_rand_score(truth, generator_groups(residuals)) < 0.1  # grouped by shape, not generator
        content = content_directions(real, 32)
        assert content.shape == (32, RESIDUAL_DIM)
        np.testing.assert_allclose(content @ content.T, np.eye(32), atol=1e-4)
        assert adjusted_rand_score(truth, generator_groups(residuals, content=content)) == 1.0
        assert adjusted_rand_score(truth, fixed_groups(residuals, 3, content=content)) == 1.0
        one = shared_anatomy([60], seed=seed)[1]
        assert generator_groups(one, content=content).max() == 0  # one generator is still one group
    assert content_directions(real[:1], 32) is None and content_directions(real, 0) is None


def test_residual_has_a_fixed_length_and_comes_from_the_centre():
    for shape in [(64, 64), (512, 384), (20, 30)]:
        assert noise_residual(np.ones(shape)).shape == (RESIDUAL_DIM,)
    window = central_crop(np.arange(100 * 100, dtype=np.float32).reshape(100, 100))
    assert window.shape == (64, 64) and window[0, 0] == 18 * 100 + 18  # the centre, not the corner
    assert np.abs(noise_residual(np.full((64, 64), 77.0))).max() < 1e-4  # flat anatomy leaves nothing


def test_principal_components_from_a_sample_find_the_same_groups(monkeypatch):
    """Past PCA_SAMPLE rows the components are learned from a sample (speed): the groups stay exact."""
    import ganprov.models.generators as generators

    residuals, truth = generator_outputs([60, 40, 20])
    monkeypatch.setattr(generators, "PCA_SAMPLE", 50)
    assert adjusted_rand_score(truth, generator_groups(residuals)) == 1.0


def test_one_generator_is_one_group():
    for seed in range(3):
        residuals, _ = generator_outputs([60], seed=seed)
        assert generator_groups(residuals).max() == 0


def test_groups_are_counted_not_assumed():
    for counts in ([40, 40], [60, 30, 10], [30, 30, 30, 30, 30]):
        residuals, truth = generator_outputs(counts)
        groups = generator_groups(residuals)
        assert groups.max() + 1 == len(counts)
        assert adjusted_rand_score(truth, groups) == 1.0


def test_fixed_groups_make_exactly_k():
    residuals, truth = generator_outputs([30, 30, 30])
    groups = fixed_groups(residuals, 3)
    assert adjusted_rand_score(truth, groups) == 1.0


def test_flat_images_settle_and_leave_the_generators_groups_as_they_were():
    """A flat window (a blank slice) has a residual of zeros: it correlates 0 with every group, so it stays."""
    residuals, truth = generator_outputs([60, 60, 60])
    units = unit_residuals(residuals)
    start = np.concatenate([truth, [0, 1, 2]])
    with_flat = np.vstack([units, np.zeros((3, units.shape[1]), units.dtype)])
    groups = reassign(with_flat, start, min_group=1)
    assert np.array_equal(reassign(with_flat, groups, min_group=1, max_rounds=1), groups)  # settled
    assert groups[-3:].tolist() == [0, 1, 2] and adjusted_rand_score(truth, groups[:-3]) == 1.0


def test_an_image_alone_in_its_group_correlates_with_nothing_not_rounding_noise():
    residuals, truth = generator_outputs([20, 20], seed=3)
    units = unit_residuals(residuals)
    groups = np.concatenate([truth[:-1], [2]])  # the last image alone in a group of its own
    norms = np.ones(len(units))
    scores = image_scores(units, groups, norms)
    assert scores[-1, 2] == 0.0  # its leave-one-out fingerprint is empty, not 0/0's rounding noise
    fingerprint = units[truth == 1][:-1].sum(axis=0)
    assert scores[-1, 1] == pytest.approx(units[-1] @ fingerprint / np.linalg.norm(fingerprint), abs=1e-5)
    own = units[:20].sum(axis=0) - units[0]  # an image among others: its group's sum without it
    assert scores[0, 0] == pytest.approx(units[0] @ own / np.linalg.norm(own), abs=1e-5)


def test_a_groups_verdict_does_not_depend_on_the_groups_before_it():
    subsets = np.array([2, 5, 9])
    group = np.repeat([0, 1], [2, 10])  # votes for 2 and for 5, near the level
    alone = judge_groups(group, np.zeros(12, int), subsets)[0]
    after = judge_groups(np.concatenate([[2] * 7, group]), np.repeat([0, 1], [7, 12]), subsets)[1]
    assert (after.subset, after.support, after.support_by_subset) == (alone.subset, alone.support,
                                                                       alone.support_by_subset)


def test_votes_decide_only_when_significant():
    subsets = np.array([1, 2, 3])
    groups = np.repeat([0, 1, 2], [160, 200, 3])
    votes = np.concatenate([np.repeat([0, 1], [89, 71]), np.repeat([2, 0], [150, 50]), [1, 1, 1]])
    close, clear, tiny = judge_groups(votes, groups, subsets, alpha=0.01)
    assert close.subset == UNDETERMINED and close.best == 1 and 0.5 < close.support < 0.99  # 89 against 71
    assert clear.subset == 3 and clear.support > 0.99 and clear.margin == 0.5
    assert tiny.subset == UNDETERMINED  # three votes are no proof
    assert judge_groups(votes, groups, subsets, alpha=0.2)[0].subset == 1


def test_votes_of_a_content_model_that_cannot_tell_the_subsets_apart_decide_nothing():
    """200 images vote 120/40/40, but on held-out images that model's votes were no better than chance."""
    subsets = np.array([1, 2, 3])
    votes, groups = np.repeat([0, 1, 2], [120, 40, 40]), np.zeros(200, dtype=int)
    blind = np.full((3, 3), 10)
    sharp = np.diag([28, 28, 28]) + 1
    assert judge_groups(votes, groups, subsets, confusion=blind)[0].subset == UNDETERMINED
    assert judge_groups(votes, groups, subsets, confusion=sharp)[0].subset == 1


def test_several_groups_may_go_to_one_subset_and_a_subset_to_none():
    subsets = np.array([1, 2, 3])
    groups = np.repeat([0, 1, 2], 50)
    votes = np.concatenate([np.full(50, 1), np.full(50, 1), np.full(50, 0)])
    free = [v.subset for v in judge_groups(votes, groups, subsets)]
    assert free == [2, 2, 1]
    matched = [v.subset for v in judge_groups(votes, groups, subsets, one_per_subset=True)]
    assert sorted(matched)[-1] != 3 and matched.count(2) == 1  # one-to-one: the second group cannot have 2
    assert shared_subsets(free) == [2] and shared_subsets(matched) == []
    assert shared_subsets([UNDETERMINED, UNDETERMINED, 3]) == []  # undetermined groups claim nothing


def fingerprint_problem(counts, content_noise=1.5, seed=1):
    """Rows of [16-d embeddings | residuals]: a weak content signal per image, a clear generator pattern."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (3, 16))
    residuals, generator = generator_outputs(counts, seed=seed)
    source = np.array([1, 2, 2, 3])[generator]  # generators 1 and 2 both learned subset 2
    embeddings = centres[source - 1] + rng.normal(0, content_noise, (len(source), 16))
    train_labels = np.repeat([1, 2, 3], 40)
    train = centres[train_labels - 1] + rng.normal(0, content_noise, (120, 16))
    val_labels = np.repeat([1, 2, 3], 20)
    val = centres[val_labels - 1] + rng.normal(0, content_noise, (60, 16))

    def pad(X):
        return np.hstack([X, np.zeros((len(X), RESIDUAL_DIM))])
    return pad(train), train_labels, pad(val), val_labels, np.hstack([embeddings, residuals]), source, generator


def test_fingerprint_head_attributes_whole_generators_many_to_one():
    X, y, X_val, y_val, X_test, source, generator = fingerprint_problem([50, 50, 50, 50])
    head = FingerprintHead(n_embedding=16).fit(X, y, X_val, y_val)
    labels, proba, groups, verdicts = head.explain(X_test)
    per_image = make_head("cosine").fit(X[:, :16], y).predict(X_test[:, :16])
    assert np.mean(per_image == source) < 0.93  # about one image in ten looks like another subset
    assert len(verdicts) == 4 and adjusted_rand_score(generator, groups) == 1.0
    assert np.mean(labels == source) == 1.0  # two generators of subset 2, each attributed on its own
    assert np.allclose(proba.sum(axis=1), 1) and (head.predict(X_test) == labels).all()
    assert clone(head).get_params() == head.get_params()


def test_fingerprint_head_attributes_image_by_image_where_its_groups_mix_the_labelled_generators():
    """Held-out generated images (challenge regime) check the grouping: when their prints no longer tell their
    generators apart (here all three share one), the head stops trusting groups."""
    X, y, X_val, y_val, X_test, source, _ = fingerprint_problem([50, 50, 50, 50])
    content = X_val[:, :16]  # 20 held-out images per subset, by content
    apart, _ = generator_outputs([20, 20, 20], seed=5)  # one generator per subset, each its own print
    alike, _ = generator_outputs([60], seed=5)  # three generators whose prints are one
    for residuals, trusted in ((apart, True), (alike, False)):
        head = FingerprintHead(n_embedding=16).fit(X, y, np.hstack([content, residuals]), y_val, generated_val=True)
        labels, _, groups, verdicts = head.explain(X_test)
        assert (head.grouping_homogeneity_ > 0.9) == trusted
        assert (len(verdicts) == 4) == trusted and (groups is not None) == trusted
        if not trusted:
            np.testing.assert_array_equal(labels, head.content_.predict(X_test[:, :16]))
    # Real held-out images carry no print: without generated_val nothing is checked, groups are trusted.
    head = FingerprintHead(n_embedding=16).fit(X, y, np.hstack([content, alike]), y_val)
    assert head.grouping_homogeneity_ is None and len(head.explain(X_test)[3]) == 4


def test_fingerprint_head_takes_the_real_images_anatomy_out_of_the_residuals_it_groups():
    real, residuals, generator = shared_anatomy([40, 40, 40])
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 16))
    X = np.hstack([centres[generator] + rng.normal(0, 1, (120, 16)), residuals])
    y = generator + 1
    head = FingerprintHead(n_embedding=16).fit(X, y, content_residuals=real)
    assert head.content_directions_.shape == (64, RESIDUAL_DIM)
    assert adjusted_rand_score(generator, head.groups(X)) == 1.0
    unaware = FingerprintHead(n_embedding=16, content_components=0).fit(X, y, content_residuals=real)
    assert unaware.content_directions_ is None and adjusted_rand_score(generator, unaware.groups(X)) < 0.1


def test_fingerprint_head_without_residuals_scores_image_by_image():
    X, y, X_val, y_val, X_test, _, _ = fingerprint_problem([20, 20, 20, 20])
    head = FingerprintHead(n_embedding=16).fit(X[:, :16], y)
    labels, proba = head.attribute(X_test[:5, :16])
    np.testing.assert_array_equal(labels, head.content_.predict(X_test[:5, :16]))


def test_large_sets_are_grouped_on_a_sample_and_assigned_block_by_block_from_disk(tmp_path, monkeypatch):
    import h5py

    from ganprov.models import generators
    residuals, truth = generator_outputs([70, 50, 30], seed=3)
    whole, fixed = generator_groups(residuals), fixed_groups(residuals, 3)
    with h5py.File(tmp_path / "r.h5", "w") as handle:
        handle["residuals"] = residuals.astype(np.float16)
    monkeypatch.setattr(generators, "GROUP_SAMPLE", 60)  # 60 of 150 rows learn the groups
    monkeypatch.setattr(generators, "ASSIGN_ROWS", 16)
    with h5py.File(tmp_path / "r.h5", "r") as handle:
        on_disk = handle["residuals"]
        assert adjusted_rand_score(truth, generator_groups(on_disk)) == 1.0 == adjusted_rand_score(truth, whole)
        assert adjusted_rand_score(truth, fixed_groups(on_disk, 3)) == 1.0 == adjusted_rand_score(truth, fixed)


def test_fingerprint_head_explains_rows_whose_residuals_stay_on_disk(tmp_path):
    import h5py
    X, y, X_val, y_val, X_test, source, generator = fingerprint_problem([50, 50, 50, 50])
    head = FingerprintHead(n_embedding=16).fit(X[:, :16], y, X_val, y_val)  # fit reads the embeddings alone
    assert head.n_features_in_ == 16
    with h5py.File(tmp_path / "r.h5", "w") as handle:
        handle["residuals"] = X_test[:, 16:]
    with h5py.File(tmp_path / "r.h5", "r") as handle:
        labels, proba, groups, verdicts = head.explain_rows(X_test[:, :16], handle["residuals"])
    expected = head.explain(X_test)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(groups, expected[2])
    assert np.mean(labels == source) == 1.0 and verdicts == expected[3]
    np.testing.assert_array_equal(labels, FingerprintHead(n_embedding=16).fit(X, y, X_val, y_val).predict(X_test))
