"""Nearest rows by cosine similarity, for the k-NN head and the novelty gate (always exact): faiss, exact up to
APPROXIMATE_FROM reference rows, an inverted-file search past it.

Exact: faiss computes the similarities in BLAS blocks on every core and keeps each query's k best in a heap,
without building an index or copying the reference rows. At 25,000 × 25,000 512-d rows that is 640 GFLOP,
3.5–6 s on this project's two cores, so past APPROXIMATE_FROM references the search is approximate: k-means
cuts the references into lists, each query is compared with the references of the few lists whose centres
are nearest to it, list by list in BLAS blocks (as faiss.contrib.big_batch_search does, whose progress
lines cannot be silenced), and faiss's heap keeps the best k. Its cost is about PROBED_SHARE of the exact
search's. `python benchmarks/search.py` measures both; the choice of sizes is in README ("Performance").
"""
from __future__ import annotations

import math

import faiss
import numpy as np

from .cosine import unit_rows

# Reference rows from which search is approximate: below it exact search costs at most ~1 s for as many
# queries, and every benchmark's heads stay exact.
APPROXIMATE_FROM = 10_000
# Share of the lists each query scans: on the bench's near-isotropic rows (the hardest case for any index)
# it finds 0.96–0.99 of the true 10 neighbours at 10,000–50,000 rows; clustered embeddings do better.
PROBED_SHARE = 3 / 16


def unit_float32(X) -> np.ndarray:
    """Rows scaled to length 1, as the C-contiguous float32 faiss takes."""
    return np.ascontiguousarray(unit_rows(np.asarray(X, dtype=np.float32)))


def nearest(queries, references, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, indices), each n_queries × k, most similar first: the k rows of `references` with the
    largest cosine similarity to each query. Both are unit float32 rows (unit_float32). Exact when `exact`
    or below APPROXIMATE_FROM references; either way each query's answer depends on it and the references
    alone, not on the other queries."""
    k = min(k, len(references))
    if exact or len(references) < APPROXIMATE_FROM:
        return exact_nearest(queries, references, k)
    return nearest_by_lists(queries, references, k)


def exact_nearest(queries, references, k: int) -> tuple[np.ndarray, np.ndarray]:
    """nearest's exact search (k at most the number of references)."""
    return faiss.knn(queries, references, k, metric=faiss.METRIC_INNER_PRODUCT)


def by_list(assigned: np.ndarray, lists: int) -> list[np.ndarray]:
    """Per list, in ascending order, the rows whose row of `assigned` (n × m list numbers, as faiss's search
    gives them) names it: one sort instead of a pass over every row per list."""
    flat = assigned.ravel()
    order = np.argsort(flat, kind="stable")  # stable: each list's rows stay in ascending order
    bounds = np.searchsorted(flat[order], np.arange(lists + 1))
    rows = order // assigned.shape[1]
    return [rows[bounds[n]:bounds[n + 1]] for n in range(lists)]


def nearest_by_lists(queries, references, k: int) -> tuple[np.ndarray, np.ndarray]:
    """nearest's approximate search: each query against the references of its PROBED_SHARE nearest k-means
    lists. A query whose lists hold fewer than k references is searched exactly."""
    lists = max(16, round(math.sqrt(len(references)) / 5))
    probes = math.ceil(PROBED_SHARE * lists)
    # Seeded on a fixed sample, so refitting on the same references gives the same lists.
    sample = np.random.default_rng(0).choice(len(references), min(len(references), 40 * lists), replace=False)
    kmeans = faiss.Kmeans(references.shape[1], lists, niter=10, seed=0, spherical=True)
    kmeans.train(references[np.sort(sample)])
    members_of = by_list(kmeans.index.search(references, 1)[1], lists)
    askers_of = by_list(kmeans.index.search(queries, probes)[1], lists)
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for members, askers in zip(members_of, askers_of):
        if len(members) and len(askers):
            similarities, found = exact_nearest(queries[askers], references[members], min(k, len(members)))
            heap.add_result_subset(askers, similarities, members[found])
    heap.finalize()
    short = (heap.I < 0).any(axis=1)
    if short.any():
        heap.D[short], heap.I[short] = exact_nearest(queries[short], references, k)
    return heap.D, heap.I
