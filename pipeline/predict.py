"""Attribute the unknown set: the challenge's submission CSV and a CSV of per-subset probabilities."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from features.atomic import write_csv
from features.layout import FOLDERS
from features.run_folder import RunFolder
from models import HeadError
from models.embeddings import EmbeddingsFile
from models.novelty import NoveltyGate

from .heads import load_run_head


def unknown_filename(path: str) -> str:
    """A path as the challenge names it: relative to generated_unknown/."""
    return str(PurePosixPath(path).relative_to(FOLDERS["unknown"]))


def attribute(run: RunFolder, name: str, file: EmbeddingsFile, abstain: float | None = None
              ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(file names, probabilities N×K with one column per subset of the file, labels) for the unknown set,
    sorted by file name. A head fit on rows lacking some subsets scores those columns 0. With `abstain`
    (a quantile, e.g. 0.99), images farther from every labelled image than that quantile of held-out ones
    get label 0."""
    if "unknown" not in file.groups:
        raise HeadError(f"{file.path} has no unknown group: the data folder had no generated_unknown/")
    head, sidecar = load_run_head(run, name, file)
    unknown = file.read("unknown")
    names = [unknown_filename(p) for p in unknown.paths]
    order = np.argsort(names, kind="stable")
    scores = head.predict_proba(unknown.inputs_for(head))[order]
    proba = np.zeros((len(order), len(file.subsets)))
    proba[:, [file.subsets.index(c) for c in head.classes_.tolist()]] = scores
    labels = head.classes_[scores.argmax(axis=1)]
    if abstain is not None:
        fit_on = sidecar["info"]["fit_on"]
        gate = NoveltyGate(abstain, use_fingerprints=fit_on != "real")  # real images carry no generator's print
        gate.fit(file.training(fit_on).with_fingerprints(), file.validation().with_fingerprints())
        labels[gate.novel(unknown.with_fingerprints()[order])] = 0
    return [names[i] for i in order], proba, labels


def predict(run_dir, name: str, abstain: float | None = None) -> tuple[Path, Path]:
    """RUN/predictions/NAME.csv (filename,label; no header) and NAME.proba.csv (with header)."""
    run = RunFolder(run_dir)
    file = EmbeddingsFile(run.embeddings)
    names, proba, labels = attribute(run, name, file, abstain)
    submission = run.predictions / f"{name}.csv"
    write_csv(submission, zip(names, labels.tolist()))
    header = ["filename"] + [f"p_{s}" for s in file.subsets] + ["label", "confidence"]
    write_csv(run.predictions / f"{name}.proba.csv",
              ([n, *(f"{p:.6f}" for p in row), label, f"{row.max():.6f}"] for n, row, label in zip(names, proba, labels)),
              header)
    abstained = f" ({np.sum(labels == 0)} abstained: label 0)" if abstain is not None else ""
    print(f"{name}: {len(names)} unknown images attributed{abstained} → {submission}")
    return submission, run.predictions / f"{name}.proba.csv"
