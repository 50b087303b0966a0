"""The paper's metrics: accuracy, weighted precision/recall/F1, specificity, per-subset table, confusion matrix."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def specificity_per_class(matrix: np.ndarray) -> np.ndarray:
    """TN / (TN + FP) for each class, one-vs-rest, from a confusion matrix (rows = truth)."""
    total = matrix.sum()
    false_positives = matrix.sum(axis=0) - np.diag(matrix)
    true_negatives = total - matrix.sum(axis=1) - false_positives
    denominator = true_negatives + false_positives
    return np.divide(true_negatives, denominator, out=np.zeros(len(matrix)), where=denominator > 0)


def attribution_metrics(truth, predicted, subsets: list[int]) -> dict:
    """All figures for one head on one labelled set; JSON-ready."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    labels = list(subsets) + sorted(set(predicted.tolist()) - set(subsets))  # e.g. 0 when abstaining
    matrix = confusion_matrix(truth, predicted, labels=labels)
    kwargs = dict(labels=list(subsets), zero_division=0)
    precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="weighted", **kwargs)
    per_p, per_r, per_f, support = precision_recall_fscore_support(truth, predicted, average=None, **kwargs)
    specificity = specificity_per_class(matrix)[: len(subsets)]
    return {
        "n": int(len(truth)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "precision_weighted": float(precision),
        "recall_weighted": float(recall),
        "f1_weighted": float(f1),
        "specificity_macro": float(specificity.mean()),
        "per_subset": [{"subset": int(s), "precision": float(p), "recall": float(r), "f1": float(f),
                        "specificity": float(sp), "support": int(n)}
                       for s, p, r, f, sp, n in zip(subsets, per_p, per_r, per_f, specificity, support)],
        "confusion_labels": [int(x) for x in labels],
        "confusion": matrix.tolist(),
    }
