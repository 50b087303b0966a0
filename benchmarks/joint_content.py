#!/usr/bin/env python3
"""The two trainings' embeddings side by side under one head, against their agreement: a `fingerprint` head
whose content model (logistic regression) reads both backbones' 512-d embeddings of each image (1,024 columns),
fitted as `ganprov fit` fits it in the audit regime (training real rows, held-out real rows for what a vote is
worth, real residuals for the anatomy), attributing the unknown set; beside it `ganprov agree` of the two
trainings' own heads. Truth files are read only to score.

  python benchmarks/joint_content.py SC SC-AUG     # as benchmarks/agreement.py
"""
import argparse
from pathlib import Path

import numpy as np
from agreement import figures, paired_runs  # this folder: scripts run from it

from ganprov.models.embeddings import EmbeddingsFile
from ganprov.models.fingerprint import FingerprintHead
from ganprov.pipeline.agree import agreed_labels
from ganprov.pipeline.predict import unknown_filename
from ganprov.pipeline.truth import read_labels


def joint_labels(plain: EmbeddingsFile, augmented: EmbeddingsFile) -> dict[str, int]:
    rows = [(f.training("real", residuals=False), f.validation(), f.read("unknown")) for f in (plain, augmented)]
    for ours, theirs in zip(*rows):
        assert list(ours.paths) == list(theirs.paths), "the two embeddings files hold other images"
    (train, val, unknown), (train2, val2, unknown2) = rows
    head = FingerprintHead(n_embedding=1024).fit(
        np.hstack([train.embeddings, train2.embeddings]), train.labels,
        X_val=np.hstack([val.embeddings, val2.embeddings, val.residuals.astype(np.float32)]), y_val=val.labels,
        content_residuals=plain.real_residuals())
    labels = head.predict(np.hstack([unknown.embeddings, unknown2.embeddings, unknown.residuals.astype(np.float32)]))
    return dict(zip((unknown_filename(p) for p in unknown.paths), labels.tolist()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plain", type=Path)
    ap.add_argument("augmented", type=Path)
    a = ap.parse_args()
    print("| data | scenario | **joint: accuracy** | wrong | undetermined | agreed: accuracy | wrong | undetermined |")
    print("|---|---|---|---|---|---|---|---|")
    for bench, scenario, run, other, truth in paired_runs(a.plain, a.augmented, "fingerprint"):
        joint = joint_labels(EmbeddingsFile(run.parents[1] / "embeddings.h5"),
                             EmbeddingsFile(other.parents[1] / "embeddings.h5"))
        agreed = agreed_labels([read_labels(run), read_labels(other)])
        print(f"| {bench} | {scenario} | **{figures(truth, joint)}** | {figures(truth, agreed)} |", flush=True)


if __name__ == "__main__":
    main()
