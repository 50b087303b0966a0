"""Of several generator groups attributed to one subset, which ones reproduce that subset's images?

A generator learns its training set's whole distribution; a generator of a look-alike set that is not among
the candidates (a neighbouring slab, a mirror image) resembles the candidate only where the two sets meet.
Votes cannot tell them apart (each image looks most like that candidate), but coverage can (Naeem et al.
2020, "Reliable fidelity and diversity metrics for generative models"): a labelled image of the subset is
covered by a group when one of the group's images lies within the distance of its k-th nearest labelled
neighbour. Where two groups claim one subset, each draws the same number of images and a one-sided exact
McNemar test on the labelled images covered by one group only says whether one covers significantly less:
that group is undetermined. Two generators of the same data cover alike and both keep the subset.

Measured on labelled generated folders only, no truth file (README, "A subset missing from the candidates").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from .cosine import unit_rows

REFERENCE_ROWS = 2000  # labelled rows kept per subset: the radii's cost grows with its square
SAMPLE_ROWS = 2000  # rows drawn per group compared


@dataclass(frozen=True)
class Outcovered:
    by: int  # the group that covers the subset's labelled images significantly more
    p_value: float  # one-sided exact McNemar p-value that this group covers no less


@dataclass(frozen=True)
class Reach:
    covered: int  # the subset's labelled images the group covers (drawing as many images as the smallest claimant)
    labelled: int  # the subset's labelled images compared


def reference_rows(X: np.ndarray, y_index: np.ndarray, n_classes: int, seed: int) -> list[np.ndarray]:
    """Per class, at most REFERENCE_ROWS of its rows of X (seeded draw), unit length, float32."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_classes):
        members = np.flatnonzero(y_index == c)
        if len(members) > REFERENCE_ROWS:
            members = np.sort(rng.choice(members, REFERENCE_ROWS, replace=False))
        rows.append(unit_rows(np.asarray(X[members], dtype=np.float32)))
    return rows


def radii(reference: np.ndarray, neighbours: int) -> np.ndarray:
    """Each reference row's cosine similarity to its k-th nearest other reference row (rows of unit length)."""
    k = min(neighbours, len(reference) - 1)
    within = reference @ reference.T
    np.fill_diagonal(within, -np.inf)
    return -np.partition(-within, k - 1, axis=1)[:, k - 1]  # k-th largest similarity: k-th nearest


def covered(reference: np.ndarray, rows: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Which reference rows (unit length) have one of `rows` (unit length) within their k-th nearest
    reference neighbour's cosine distance (`radius`: radii(reference, k))."""
    return (reference @ rows.T >= radius[:, None]).any(axis=1)


def mcnemar_less(only_g: int, only_h: int) -> float:
    """One-sided exact McNemar p-value that g covers no less than h, from the reference rows only g covers
    and only h covers (1.0 where none differ)."""
    return binomtest(only_g, only_g + only_h, 0.5, alternative="less").pvalue if only_g + only_h else 1.0


def outcovered(labels: np.ndarray, embeddings: np.ndarray, groups: np.ndarray, references: list[np.ndarray],
               neighbours: int, alpha: float, seed: int = 0) -> tuple[dict[int, Outcovered], dict[int, Reach]]:
    """Groups whose subset another group also claims and covers significantly more (at `alpha`), and how many
    of its labelled images each group that shares a subset covers: where all cover few, no test can tell
    them apart. `labels[g]` is group g's attributed class index (-1: none), `groups` each embedding's group,
    `references[c]` class c's labelled rows (reference_rows)."""
    found, reach = {}, {}
    for c in np.unique(labels[labels >= 0]):
        claimants = np.flatnonzero(labels == c)
        reference = references[c]
        if len(claimants) < 2 or len(reference) < 2:
            continue
        members = [np.flatnonzero(groups == g) for g in claimants]
        n = min(SAMPLE_ROWS, *(len(m) for m in members))
        rng = np.random.default_rng([seed, int(c)])  # same n from each: coverage grows with a group's size
        radius = radii(reference, neighbours)
        hits = [covered(reference, unit_rows(embeddings[np.sort(rng.choice(m, n, replace=False))]), radius)
                for m in members]
        reach.update({int(g): Reach(int(h.sum()), len(reference)) for g, h in zip(claimants, hits)})
        for i, g in enumerate(claimants):
            for j, h in enumerate(claimants):
                if i == j:
                    continue
                only_g, only_h = int(np.sum(hits[i] & ~hits[j])), int(np.sum(hits[j] & ~hits[i]))
                if not only_h:  # h covers nothing g does not: no evidence against g, whatever alpha
                    continue
                p = mcnemar_less(only_g, only_h)
                if p <= alpha and (int(g) not in found or p < found[int(g)].p_value):
                    found[int(g)] = Outcovered(int(h), float(p))
    return found, reach
