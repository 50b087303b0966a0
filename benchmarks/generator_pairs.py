#!/usr/bin/env python3
"""How different two generators' images are in content, pair by pair, on LABELLED folders (no truth file).

  python benchmarks/generator_pairs.py EMBEDDINGS.h5 [--group images] [--tag 'REGEX']

EMBEDDINGS.h5 holds the images of several generators (`ganprov score --embeddings`, or a run's
embeddings.h5 with --group unknown), each file's generator named in its path (the first group of REGEX,
default `(gen_t\\d+|twin|upsample)`). Per pair: the cosine between the two generators' mean embedding
directions, and a classifier two-sample test, the 5-fold cross-validated accuracy of a logistic regression
telling the two apart (0.5: alike; 1.0: fully separable).
"""
import argparse
import re
from itertools import combinations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from ganprov.models.cosine import unit_rows
from ganprov.models.embeddings import EmbeddingsFile


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("embeddings")
    ap.add_argument("--group", default="images")
    ap.add_argument("--tag", default=r"(gen_t\d+|twin|upsample)")
    a = ap.parse_args()
    rows = EmbeddingsFile(a.embeddings).read(a.group, residuals=False)
    tags = np.array([re.search(a.tag, p)[1] for p in rows.paths])
    X = unit_rows(rows.embeddings)
    means = {t: unit_rows(X[tags == t].mean(axis=0, keepdims=True))[0] for t in np.unique(tags)}
    for a_, b in combinations(sorted(means), 2):
        both = (tags == a_) | (tags == b)
        accuracy = cross_val_score(LogisticRegression(C=0.1, max_iter=2000), X[both], tags[both] == b, cv=5).mean()
        print(f"{a_:>10} {b:>10}  mean-direction cosine {means[a_] @ means[b]:.3f}  two-sample accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
