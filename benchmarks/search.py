#!/usr/bin/env python3
"""Exact against approximate nearest-neighbour search on the bench's synthetic 512-d rows (near-isotropic:
the hardest case for any index): time, recall of the true 10 neighbours, and whether the k-NN head's class
vote changes. The numbers behind models/neighbours.py's APPROXIMATE_FROM and PROBED_SHARE.

  python benchmarks/search.py --n 10000 25000 50000        # ganprov's search, exact and past APPROXIMATE_FROM
  python benchmarks/search.py --n 25000 --faiss-indexes    # also faiss's own IVF-flat and HNSW indexes
"""
import argparse
import time

import faiss
import numpy as np

from ganprov.models.neighbours import nearest, nearest_by_lists, unit_float32
from ganprov.pipeline.bench.synthetic import synthetic_rows


def compare(n: int, faiss_indexes: bool) -> None:
    references, _, labels = synthetic_rows(n, 0)
    queries = unit_float32(synthetic_rows(n, 1)[0])
    references = unit_float32(references)

    def vote(indices):
        return np.array([np.bincount(labels[row]).argmax() for row in indices])

    started = time.perf_counter()
    _, exact = nearest(queries, references, 10, exact=True)
    print(f"{n} × {n}: exact {time.perf_counter() - started:.2f} s", flush=True)
    truth = vote(exact)

    def report(name, started, found):
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
        print(f"  {name}: {time.perf_counter() - started:.2f} s, recall {recall:.3f}, "
              f"same vote {np.mean(vote(found) == truth):.4f}", flush=True)

    started = time.perf_counter()
    report("ganprov's lists (k-means, PROBED_SHARE of them per query)", started,
           nearest_by_lists(queries, references, 10)[1])
    if not faiss_indexes:
        return
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[25000], help="references and as many queries")
    ap.add_argument("--faiss-indexes", action="store_true", help="also faiss's IVF-flat and HNSW indexes")
    a = ap.parse_args()
    for n in a.n:
        compare(n, a.faiss_indexes)


if __name__ == "__main__":
    main()
