"""Attribute the unknown set: the challenge's submission CSV and a CSV of per-subset probabilities."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ganprov.core.atomic import write_csv, write_text
from ganprov.core.layout import FOLDERS
from ganprov.core.run_folder import RunFolder
from ganprov.core.schema import EMBEDDING_DIM
from ganprov.models import HeadError, group_evidence
from ganprov.models.embeddings import EmbeddingsFile

from .run_heads import load_gate, load_run_head

PREDICT_ROWS = 65536  # rows an image-by-image head scores at once: 128 MiB of float32 embeddings
LISTED_GROUPS = 10  # generator groups `predict` prints, largest first


def unknown_filename(path: str) -> str:
    """A path as the challenge names it: relative to generated_unknown/."""
    return str(PurePosixPath(path).relative_to(FOLDERS["unknown"]))


@dataclass
class Attribution:
    """The unknown set as one head attributes it, sorted by file name. `proba` has one column per subset of
    the embeddings file (0 for subsets the head was not fitted on); label 0 means undetermined or abstained.
    Heads that attribute whole generators also give each image's group and a verdict per group."""
    names: list[str]
    proba: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None
    verdicts: list = field(default_factory=list)


def unknown_count(file: EmbeddingsFile) -> int:
    """Rows of the unknown set: 0 without generated_unknown/ or when none of its images could be read."""
    return file.count("unknown")


def attribute(run: RunFolder, name: str, file: EmbeddingsFile, abstain: float | None = None) -> Attribution:
    """Attribute the unknown set with head `name`. With `abstain` (a quantile, e.g. 0.99), images farther from
    every labelled image than that quantile of held-out ones get label 0."""
    if not unknown_count(file):
        raise HeadError(f"nothing to attribute in {file.path}: the data folder had no generated_unknown/ or no "
                        "readable image in it")
    head, sidecar = load_run_head(run, name, file)
    gate = None if abstain is None else load_gate(run, sidecar["info"]["fit_on"], file)  # fitted with the head
    # Residuals (8 KB a row) in memory only for a head or a gate that reads them all at once (gates saved by
    # earlier versions were given them whether they used them or not); `explain_rows` reads them from disk.
    on_disk = hasattr(head, "explain_rows")
    residuals = (head.uses_residuals and not on_disk) or (gate is not None and gate.n_features_in_ > EMBEDDING_DIM)
    unknown = file.read("unknown", residuals)
    names = [unknown_filename(p) for p in unknown.paths]
    order = np.argsort(names, kind="stable")
    if on_disk:  # the whole set at once, in file order (that of the names, as embed writes it), then sorted
        with file.residuals_on_disk("unknown") as rows:
            labels, scores, groups, verdicts = head.explain_rows(unknown.embeddings, rows)
        labels, scores, groups = labels[order], scores[order], None if groups is None else groups[order]
    elif head.transductive:  # the whole set at once, in name order
        labels, scores = head.attribute(unknown.inputs_for(head)[order])
        groups, verdicts = None, []
    else:  # block by block, in file order: no sorted copy of every row, nor one of the head's own
        parts = [head.attribute(unknown.inputs_for(head)[start:start + PREDICT_ROWS])
                 for start in range(0, len(order), PREDICT_ROWS)]
        labels, scores = (np.concatenate(part)[order] for part in zip(*parts))
        groups, verdicts = None, []
    proba = np.zeros((len(order), len(file.subsets)))
    proba[:, [file.subsets.index(c) for c in head.classes_.tolist()]] = scores
    if gate is not None:
        labels = labels.copy()
        labels[gate.novel(unknown.with_residuals()[order], abstain)] = 0
    return Attribution([names[i] for i in order], proba, labels, groups, verdicts)


def predict(run_dir, name: str, abstain: float | None = None) -> tuple[Path, Path]:
    """RUN/predictions/NAME.csv (filename,label; no header), NAME.proba.csv (with header) and, for heads that
    attribute generator groups, NAME.groups.json (one verdict per group)."""
    run = RunFolder(run_dir)
    file = EmbeddingsFile(run.embeddings)
    result = attribute(run, name, file, abstain)
    submission = run.prediction(name)
    # Files matched by file name (the challenge's scorer; the report and benchmarks read NAME.proba.csv):
    # names verbatim, no spreadsheet-formula escaping.
    write_csv(submission, zip(result.names, result.labels.tolist()), escape_formulas=False)
    grouped = result.groups is not None
    header = ["filename"] + [f"p_{s}" for s in file.subsets] + ["label", "confidence"] + (["group"] if grouped else [])
    rows = ([n, *(f"{p:.6f}" for p in row), label, f"{row.max():.6f}"] for n, row, label in
            zip(result.names, result.proba, result.labels.tolist()))
    if grouped:
        rows = (row + [group] for row, group in zip(rows, result.groups.tolist()))
    write_csv(run.probabilities(name), rows, header, escape_formulas=False)
    verdicts = [asdict(v) for v in result.verdicts]  # NAME.groups.json, and what the shared-subset note reads
    if grouped:
        write_text(run.groups(name), json.dumps(verdicts, indent=1) + "\n")
    undetermined = int(np.sum(result.labels == 0))
    note = f" in {len(result.verdicts)} generator group(s)" if grouped else ""
    note += f" ({undetermined} undetermined or abstained: label 0)" if undetermined or abstain is not None else ""
    print(f"{name}: {len(result.names)} unknown images attributed{note} → {submission}")
    for v in result.verdicts[:LISTED_GROUPS]:  # the verdicts an auditor reads first; all in NAME.groups.json
        print(f"  group {v.group}: {v.size} images → " + (f"subset {v.subset}" if v.subset else "undetermined")
              + f" (best {v.best}, support {v.support:.3f}, vote margin {v.margin:.2f}"
              + group_evidence.outcovered_note(v.best, v.outcovered_by, v.coverage_p) + ")")
    if len(result.verdicts) > LISTED_GROUPS:
        print(f"  and {len(result.verdicts) - LISTED_GROUPS} smaller groups: {run.groups(name)}")
    shared = group_evidence.shared_subsets(v.subset for v in result.verdicts)
    if shared:
        print(f"{name}: several groups attributed to subset {', '.join(map(str, shared))}: "
              f"{group_evidence.SHARED_SUBSET} (see the report)")
        for note in filter(None, (group_evidence.shared_coverage(verdicts, s) for s in shared)):
            print(f"  {note}")
    return submission, run.probabilities(name)
