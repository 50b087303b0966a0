"""The paper's metrics against scikit-learn and against figures worked out by hand."""
import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from ganprov.pipeline.metrics import attribution_metrics, specificity_per_class

SUBSETS = [2, 5, 9]  # non-contiguous, as subset numbers can be
TRUTH = [2, 2, 2, 5, 5, 9, 9, 9, 9]


def assert_matches_sklearn(result, truth, predicted):
    kwargs = dict(labels=SUBSETS, average="weighted", zero_division=0)
    assert result["n"] == len(truth)
    assert result["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert result["precision_weighted"] == pytest.approx(precision_score(truth, predicted, **kwargs))
    assert result["recall_weighted"] == pytest.approx(recall_score(truth, predicted, **kwargs))
    assert result["f1_weighted"] == pytest.approx(f1_score(truth, predicted, **kwargs))
    json.dumps(result)  # JSON-ready: plain ints and floats only


def test_hand_made_case_with_gaps_in_the_subset_numbers():
    predicted = [2, 5, 2, 5, 9, 9, 9, 2, 5]
    result = attribution_metrics(np.array(TRUTH), np.array(predicted), SUBSETS)
    assert_matches_sklearn(result, TRUTH, predicted)
    assert result["accuracy"] == pytest.approx(5 / 9)
    # rows = truth, columns = prediction, both in subset order
    assert result["confusion_labels"] == SUBSETS
    assert result["confusion"] == [[2, 1, 0],
                                   [0, 1, 1],
                                   [1, 1, 2]]
    # TN / (TN + FP) one-vs-rest from that matrix (9 rows in all):
    #   2: FP = 3 - 2 = 1, TN = 9 - 3 - 1 = 5;  5: FP = 3 - 1 = 2, TN = 9 - 2 - 2 = 5;  9: FP = 1, TN = 9 - 4 - 1 = 4
    specificity = [5 / 6, 5 / 7, 4 / 5]
    assert result["specificity_macro"] == pytest.approx(np.mean(specificity))
    per_subset = result["per_subset"]
    assert [row["subset"] for row in per_subset] == SUBSETS
    assert [row["support"] for row in per_subset] == [3, 2, 4]
    assert [row["specificity"] for row in per_subset] == pytest.approx(specificity)
    assert [row["precision"] for row in per_subset] == pytest.approx([2 / 3, 1 / 3, 2 / 3])
    assert [row["recall"] for row in per_subset] == pytest.approx([2 / 3, 1 / 2, 1 / 2])
    assert [row["f1"] for row in per_subset] == pytest.approx(
        f1_score(TRUTH, predicted, labels=SUBSETS, average=None).tolist())


def test_abstaining_counts_as_wrong_but_is_no_subset():
    predicted = [2, 0, 2, 5, 9, 9, 0, 2, 5]  # 0: the head declined to attribute
    result = attribution_metrics(TRUTH, predicted, SUBSETS)
    assert_matches_sklearn(result, TRUTH, predicted)
    assert result["accuracy"] == pytest.approx(4 / 9)
    assert result["recall_weighted"] == pytest.approx(4 / 9)  # an abstention misses its true subset
    assert result["confusion_labels"] == [2, 5, 9, 0]
    assert result["confusion"] == [[2, 0, 0, 1],
                                   [0, 1, 1, 0],
                                   [1, 1, 1, 1],
                                   [0, 0, 0, 0]]  # no image is truly "abstain"
    assert [row["subset"] for row in result["per_subset"]] == SUBSETS
    # 2: FP = 1, TN = 9 - 3 - 1 = 5;  5: FP = 1, TN = 9 - 2 - 1 = 6;  9: FP = 1, TN = 9 - 4 - 1 = 4
    specificity = [5 / 6, 6 / 7, 4 / 5]
    assert [row["specificity"] for row in result["per_subset"]] == pytest.approx(specificity)
    assert result["specificity_macro"] == pytest.approx(np.mean(specificity))  # over subsets, not "abstain"


def test_images_from_no_candidate_stay_in_the_matrix_when_no_image_is_called_undetermined():
    truth, predicted = [2, 2, 5, 5, 0, 0], [2, 2, 5, 5, 2, 2]  # a truth file's 0: a generator of no candidate
    result = attribution_metrics(truth, predicted, [2, 5])
    assert result["confusion_labels"] == [2, 5, 0]
    assert result["confusion"] == [[2, 0, 0], [0, 2, 0], [2, 0, 0]]
    # 2: FP = 2 (the two from no candidate), TN = 6 - 2 - 2 = 2;  5: FP = 0, TN = 4
    assert [row["specificity"] for row in result["per_subset"]] == pytest.approx([2 / 4, 1.0])
    assert result["wrong"] == pytest.approx(2 / 6) and result["accuracy"] == pytest.approx(4 / 6)


def test_perfect_and_never_predicted_subsets():
    perfect = attribution_metrics(TRUTH, TRUTH, SUBSETS)
    assert all(perfect[key] == 1.0 for key in ("accuracy", "precision_weighted", "recall_weighted",
                                                "f1_weighted", "specificity_macro"))
    assert perfect["confusion"] == np.diag([3, 2, 4]).tolist()
    predicted = [2] * len(TRUTH)  # 5 and 9 never predicted: precision 0 by convention, no warning-driven NaN
    result = attribution_metrics(TRUTH, predicted, SUBSETS)
    assert_matches_sklearn(result, TRUTH, predicted)
    assert [row["specificity"] for row in result["per_subset"]] == pytest.approx([0.0, 1.0, 1.0])


def test_specificity_of_an_empty_class_is_zero_not_nan():
    matrix = np.array([[3, 0], [0, 0]])  # every row is class 0: class 0 has no negatives at all
    assert specificity_per_class(matrix).tolist() == [0.0, 1.0]


def test_calibration_error_of_attributed_images_only():
    from ganprov.pipeline.metrics import calibration
    truth = [1, 1, 2, 2, 3, 3]
    predicted = [1, 2, 2, 0, 3, 3]  # one wrong, one undetermined (left out)
    confidence = [0.95, 0.95, 0.55, 0.99, 0.95, 0.95]
    result = calibration(truth, predicted, confidence)
    # bin 0.9-1.0: four images, confidence 0.95, accuracy 0.75; bin 0.5-0.6: one, 0.55 against 1.0
    assert result["ece"] == pytest.approx((4 * 0.2 + 1 * 0.45) / 5)
    assert [(r["n"], r["accuracy"]) for r in result["reliability"]] == [(1, 1.0), (4, 0.75)]
    assert calibration([1, 2], [0, 0], [0.5, 0.5]) == {"ece": None, "reliability": []}
