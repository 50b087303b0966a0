#!/usr/bin/env python3
"""Exact against approximate nearest-neighbour search (faiss IVF-flat, HNSW) on the bench's synthetic 512-d
rows: time, recall of the true 10 neighbours, and whether the k-NN head's class vote changes. The numbers
behind models/neighbours.py's choice of exact search.

  python benchmarks/search.py --n 25000
"""
import argparse
import time

import faiss
import numpy as np

from ganprov.models.neighbours import nearest, unit_float32
from ganprov.pipeline.bench.synthetic import synthetic_rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=25000, help="references and queries")
    a = ap.parse_args()
    references, _, labels = synthetic_rows(a.n, 0)
    queries = unit_float32(synthetic_rows(a.n, 1)[0])
    references = unit_float32(references)

    def vote(indices):
        return np.array([np.bincount(labels[row]).argmax() for row in indices])

    started = time.perf_counter()
    _, exact = nearest(queries, references, 10)
    print(f"exact: {time.perf_counter() - started:.1f} s")
    truth = vote(exact)

    def report(name, started, found):
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
        print(f"{name}: {time.perf_counter() - started:.1f} s, recall {recall:.3f}, "
              f"same vote {np.mean(vote(found) == truth):.4f}", flush=True)

    for lists, probes in ((64, 16), (128, 16), (256, 4)):
        started = time.perf_counter()
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(512), 512, lists, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(len(references), min(len(references), 40 * lists), replace=False)
        index.train(references[sample])
        index.add(references)
        index.nprobe = probes
        report(f"IVF-flat {lists} lists, nprobe {probes} (build included)", started, index.search(queries, 10)[1])
    started = time.perf_counter()
    index = faiss.IndexHNSWFlat(512, 32, faiss.METRIC_INNER_PRODUCT)
    index.add(references)
    index.hnsw.efSearch = 64
    report("HNSW M 32, efSearch 64 (build included)", started, index.search(queries, 10)[1])


if __name__ == "__main__":
    main()
