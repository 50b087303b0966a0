"""Several groups attributed to one subset: a group that covers the subset's labelled images significantly less
than another is undetermined (models/coverage.py); two generators of the same data both keep it."""
import numpy as np
from test_generators import generator_outputs

from ganprov.features.residual import RESIDUAL_DIM
from ganprov.models.coverage import covered, outcovered, radii, reference_rows
from ganprov.models.fingerprint import FingerprintHead
from ganprov.models.group_evidence import UNDETERMINED


def along_a_curve(t, seed, noise=0.02):
    """Unit-ish 8-d points along a smooth curve (a subset's slices from one end to the other)."""
    rng = np.random.default_rng(seed)
    points = np.stack([np.cos(t), np.sin(t), np.cos(2 * t), np.sin(2 * t)], axis=1)
    return np.hstack([points, np.zeros((len(t), 4))]) + rng.normal(0, noise, (len(t), 8))


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def claim(*groups_rows):
    """(labels, embeddings, groups) for groups that all claim class 0."""
    embeddings = np.vstack(groups_rows)
    groups = np.repeat(np.arange(len(groups_rows)), [len(g) for g in groups_rows])
    return np.zeros(len(groups_rows), dtype=int), embeddings, groups


REFERENCE = reference_rows(along_a_curve(np.linspace(0, 1.5, 80), seed=0), np.zeros(80, int), 1, seed=0)
RADII_5 = radii(REFERENCE[0], 5)  # each labelled image's 5th nearest labelled neighbour


def test_coverage_counts_the_labelled_images_a_group_reaches():
    whole = along_a_curve(np.linspace(0, 1.5, 60), seed=1)
    edge = along_a_curve(np.linspace(1.35, 1.8, 60), seed=2)  # where this subset meets the next one
    assert covered(REFERENCE[0], REFERENCE[0], RADII_5).all()  # the labelled images cover themselves
    assert covered(REFERENCE[0], unit(whole), RADII_5).mean() > 0.9
    assert covered(REFERENCE[0], unit(edge), RADII_5).mean() < 0.2


def test_a_generator_of_the_neighbouring_data_is_outcovered_by_the_subsets_own():
    own = along_a_curve(np.random.default_rng(3).uniform(0, 1.5, 100), seed=4)
    neighbour = along_a_curve(np.random.default_rng(5).uniform(1.3, 1.9, 100), seed=6)
    found, reach = outcovered(*claim(own, neighbour), REFERENCE, neighbours=10, alpha=0.01)
    assert set(found) == {1} and found[1].by == 0 and found[1].p_value < 1e-3
    # every claimant's reach is reported, the out-covered one's far below the subset's own
    assert set(reach) == {0, 1} and reach[0].labelled == reach[1].labelled == 80
    assert reach[0].covered > 2 * reach[1].covered


def test_two_generators_of_the_same_data_both_keep_it_whatever_their_sizes():
    one = along_a_curve(np.random.default_rng(3).uniform(0, 1.5, 300), seed=4, noise=0.05)
    other = along_a_curve(np.random.default_rng(7).uniform(0, 1.5, 30), seed=8, noise=0.05)
    assert outcovered(*claim(one, other), REFERENCE, neighbours=5, alpha=0.01)[0] == {}
    # compared at the smaller group's size: all 300 images reach far more labelled ones than 30 do
    reached = [covered(REFERENCE[0], unit(rows), RADII_5).sum() for rows in (one, other)]
    assert reached[0] > 1.5 * reached[1]


def absent_generator_problem(seed=1):
    """[16-d embeddings | residuals] of three generators: subset 1's, subset 2's, and one of data that is no
    candidate and sits at subset 2's edge (its images vote for subset 2, but reach only one side of it)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (2, 16))
    spread = np.eye(16)[0] * 3  # each subset varies along one axis, like slices through a slab

    def subset(label, t):
        return centres[label - 1] + np.outer(t, spread) + rng.normal(0, 0.3, (len(t), 16))
    residuals, generator = generator_outputs([60, 60, 60], seed=seed)
    t = rng.uniform(-1, 1, 180)
    embeddings = np.vstack([subset(1, t[:60]), subset(2, t[60:120]), subset(2, 1.0 + np.abs(t[120:]) * 0.4)])
    train_labels, val_labels = np.repeat([1, 2], 60), np.repeat([1, 2], 20)
    train = np.vstack([subset(1, rng.uniform(-1, 1, 60)), subset(2, rng.uniform(-1, 1, 60))])
    val = np.vstack([subset(1, rng.uniform(-1, 1, 20)), subset(2, rng.uniform(-1, 1, 20))])

    def pad(X):
        return np.hstack([X, np.zeros((len(X), RESIDUAL_DIM))])
    return pad(train), train_labels, pad(val), val_labels, np.hstack([embeddings, residuals]), generator


def test_fingerprint_head_leaves_the_generator_of_absent_look_alike_data_undetermined():
    X, y, X_val, y_val, X_test, generator = absent_generator_problem()
    checked = FingerprintHead(n_embedding=16).fit(X, y, X_val, y_val)
    labels, _, groups, verdicts = checked.explain(X_test)
    assert len(verdicts) == 3
    expected = {0: 1, 1: 2, 2: UNDETERMINED}
    assert all((labels[generator == g] == label).all() for g, label in expected.items())
    absent = verdicts[groups[generator == 2][0]]
    assert absent.best == 2 and absent.outcovered_by == groups[generator == 1][0] and absent.coverage_p <= 0.01
    own = verdicts[groups[generator == 1][0]]  # both claimants carry their reach; the other subset's group none
    assert own.labelled == absent.labelled == 60 and own.covers > absent.covers
    assert verdicts[groups[generator == 0][0]].covers is None
    unchecked = FingerprintHead(n_embedding=16, coverage_neighbours=0).fit(X, y, X_val, y_val)
    assert (unchecked.predict(X_test)[generator == 2] == 2).all()  # the votes alone send it to subset 2
    matched = FingerprintHead(n_embedding=16, one_generator_per_subset=True).fit(X, y, X_val, y_val)
    assert all(v.outcovered_by is None for v in matched.explain(X_test)[3])  # one-to-one: nothing to compare
