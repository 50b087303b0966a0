"""Evaluate fitted heads side by side: on held-out labelled images and, given the truth, on the unknown set."""
from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ganprov.core.atomic import write_text
from ganprov.core.run_folder import RunFolder
from ganprov.models.embeddings import EmbeddingsFile

from . import plots
from .metrics import attribution_metrics
from .predict import attribute
from .run_heads import fitted_heads, load_run_head
from .truth import read_truth

COLUMNS = (("accuracy", "acc"), ("precision_weighted", "prec_w"), ("recall_weighted", "rec_w"),
           ("f1_weighted", "f1_w"), ("specificity_macro", "spec"), ("wrong", "wrong"), ("undetermined", "undet"),
           ("ece", "ece"))


def figure(result: dict, key: str) -> float:
    """A metric for printing: NaN where it does not apply (no ECE when no image was attributed)."""
    value = result.get(key)
    return float("nan") if value is None else value


def table(results: list[dict]) -> str:
    """One line per (head, set): the figures a user compares when iterating on heads."""
    lines = [f"{'head':<10} {'fit on':<10} {'set':<11} {'n':>6} " + " ".join(f"{short:>7}" for _, short in COLUMNS)]
    for r in results:
        lines.append(f"{r['head']:<10} {r['fit_on']:<10} {r['set']:<11} {r['n']:>6} "
                     + " ".join(f"{figure(r, key):>7.4f}" for key, _ in COLUMNS))
    return "\n".join(lines)


def evaluate(run_dir, head: str | None = None, truth: str | None = None) -> list[dict]:
    """Metrics for one head or every fitted head; writes RUN/evaluation/metrics.json and PNGs; prints a table."""
    run = RunFolder(run_dir)
    file = EmbeddingsFile(run.embeddings)
    names = [head] if head else fitted_heads(run)
    results = []
    for name in names:
        fitted, sidecar = load_run_head(run, name, file)
        validation = file.head_validation(fitted.uses_residuals)
        sets = []
        if len(validation.labels):  # none where every subset has a single labelled image to hold out
            labels, proba = fitted.attribute(validation.inputs_for(fitted))
            sets.append(("validation", validation.labels, labels, proba.max(axis=1), {}))
        if truth:
            unknown = attribute(run, name, file)
            truth_of = read_truth(truth, unknown.names, file.subsets)
            expected = np.array([truth_of[f] for f in unknown.names])
            extra = {} if unknown.groups is None else {
                "groups": len(unknown.verdicts), "groups_ari": float(adjusted_rand_score(expected, unknown.groups))}
            sets.append(("unknown", expected, unknown.labels, unknown.proba.max(axis=1), extra))
        for set_name, y_true, y_pred, confidence, extra in sets:
            result = {"head": name, "fit_on": sidecar["info"]["fit_on"], "set": set_name}
            result |= attribution_metrics(y_true, y_pred, file.subsets, confidence) | extra
            results.append(result)
            figure = plots.confusion_figure(result["confusion"], result["confusion_labels"],
                                            f"{name} on {set_name} (accuracy {result['accuracy']:.4f})")
            plots.save(figure, run.confusion_plot(name, set_name))
    write_pca(run, file)
    write_text(run.metrics, json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"→ {run.metrics}")
    return results


def write_pca(run: RunFolder, file: EmbeddingsFile) -> None:
    groups = {}
    for name in ("real", "generated"):
        if name in file.groups:
            part = file.read(name, residuals=False)
            groups[name] = (part.embeddings, part.labels)
    plots.save(plots.pca_figure(groups, "PCA of real and generated embeddings, coloured by subset"),
               run.pca_plot)
