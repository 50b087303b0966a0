"""The paper's metrics: accuracy, weighted precision/recall/F1, specificity, per-subset table, confusion matrix."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def specificity_per_class(matrix: np.ndarray) -> np.ndarray:
    """TN / (TN + FP) for each class, one-vs-rest, from a confusion matrix (rows = truth)."""
    total = matrix.sum()
    false_positives = matrix.sum(axis=0) - np.diag(matrix)
    true_negatives = total - matrix.sum(axis=1) - false_positives
    denominator = true_negatives + false_positives
    return np.divide(true_negatives, denominator, out=np.zeros(len(matrix)), where=denominator > 0)


def calibration(truth, predicted, confidence, bins: int = 10) -> dict:
    """Expected calibration error of the confidence of attributed images (label ≠ 0) over equal-width bins,
    with each bin's mean confidence, accuracy and count for a reliability diagram."""
    attributed = np.asarray(predicted) != 0
    correct = (np.asarray(truth) == np.asarray(predicted))[attributed]
    confidence = np.asarray(confidence, dtype=float)[attributed]
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    table = [{"confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean()),
              "n": int(np.sum(which == b))} for b in range(bins) if np.any(which == b)]
    if not len(correct):  # nothing attributed: nothing to calibrate
        return {"ece": None, "reliability": []}
    ece = sum(row["n"] * abs(row["accuracy"] - row["confidence"]) for row in table) / len(correct)
    return {"ece": float(ece), "reliability": table}


def shares(truth, predicted) -> dict[str, float]:
    """Accuracy, and the shares attributed to a wrong subset (label ≠ 0 and ≠ truth) and left undetermined
    (label 0): the figures `evaluate` and `agree --truth` print."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    return {"accuracy": float(np.mean(predicted == truth)),
            "wrong": float(np.mean((predicted != 0) & (predicted != truth))),
            "undetermined": float(np.mean(predicted == 0))}


def attribution_metrics(truth, predicted, subsets: list[int], confidence=None) -> dict:
    """All figures for one head on one labelled set; JSON-ready. With `confidence` (one per image), also the
    expected calibration error and the reliability table (see `calibration`)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    # Beyond the subsets, 0 where a head abstains or a truth file says "from no candidate": every image counted.
    labels = list(subsets) + sorted(set(predicted.tolist() + truth.tolist()) - set(subsets))
    matrix = confusion_matrix(truth, predicted, labels=labels)
    kwargs = dict(labels=list(subsets), zero_division=0)
    precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="weighted", **kwargs)
    per_p, per_r, per_f, support = precision_recall_fscore_support(truth, predicted, average=None, **kwargs)
    specificity = specificity_per_class(matrix)[: len(subsets)]
    share = shares(truth, predicted)
    return {
        "n": int(len(truth)),
        "accuracy": share["accuracy"],
        "precision_weighted": float(precision),
        "recall_weighted": float(recall),
        "f1_weighted": float(f1),
        "specificity_macro": float(specificity.mean()),
        "per_subset": [{"subset": int(s), "precision": float(p), "recall": float(r), "f1": float(f),
                        "specificity": float(sp), "support": int(n)}
                       for s, p, r, f, sp, n in zip(subsets, per_p, per_r, per_f, specificity, support)],
        "confusion_labels": [int(x) for x in labels],
        "confusion": matrix.tolist(),
        "undetermined": share["undetermined"],
        "wrong": share["wrong"],
    } | (calibration(truth, predicted, confidence) if confidence is not None else {})
