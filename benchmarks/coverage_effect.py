#!/usr/bin/env python3
"""A scored batch's agreed labels (the run's fingerprint head and its second opinion's, 0 where they differ)
with and without the coverage check (models/coverage.py), scored against the batch's truth file.

  ganprov score --run RUN --head fingerprint --images SCENARIO/generated_unknown --out OUT.csv
  python benchmarks/coverage_effect.py SCENARIO.truth.csv RUN OUT.h5 OUT.second-opinion.h5

Prints accuracy / wrong / label-0 share with coverage_neighbours 0 (off) and the head's own.
"""
import sys
from pathlib import Path

from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.persistence import load_head
from ganprov.pipeline.metrics import shares
from ganprov.pipeline.truth import read_labels


def labels(run: Path, scored: str, neighbours: int | None) -> dict:
    head, _ = load_head(run / "heads" / "fingerprint.joblib")
    if neighbours is not None:
        head.set_params(coverage_neighbours=neighbours)
    batch = EmbeddingsFile(scored).read("images", residuals=True)
    return dict(zip((Path(p).name for p in batch.paths), head.explain_rows(batch.embeddings, batch.residuals)[0].tolist()))


def main():
    truth_file, run, first, second = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    truth = read_labels(truth_file)
    names = sorted(truth)
    row = []
    for tag, neighbours in (("off", 0), ("on", None)):
        a, b = labels(run, first, neighbours), labels(run / "second-opinion", second, neighbours)
        agreed = [a.get(n, 0) if a.get(n, 0) == b.get(n, 0) else 0 for n in names]
        m = shares([truth[n] for n in names], agreed)
        row.append(f"{tag} {m['accuracy']:.3f} / {m['wrong']:.3f} / {m['undetermined']:.3f}")
    print(f"{truth_file.name}: " + "   ".join(row))


if __name__ == "__main__":
    main()
