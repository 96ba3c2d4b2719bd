"""Tests of fastformer_zoo.scoring against small examples worked out by hand."""
import json

import pytest

from fastformer_zoo.scoring import classification_metrics, format_metrics_table

# Two classes where macro-F1 (mean of per-class F1) differs from the F1 of mean precision and recall.
#   true 0: predicted 0,0,0            true 1: predicted 0,0,0,1,1
#   class 0: TP=3, predicted 6 times, 3 true -> P=1/2, R=1,   F1=2/3
#   class 1: TP=2, predicted 2 times, 5 true -> P=1,   R=2/5, F1=4/7
#   macro-F1 = (2/3 + 4/7) / 2 = 13/21;  F1 of (mean P=3/4, mean R=7/10) = 21/29
TWO_CLASS_LABELS = [0, 0, 0, 1, 1, 1, 1, 1]
TWO_CLASS_PREDICTIONS = [0, 0, 0, 0, 0, 0, 1, 1]

# Three classes, class 2 ("pos") never predicted.
#   class 0: TP=2, predicted 3 times, 2 true -> P=2/3, R=1,   F1=4/5
#   class 1: TP=1, predicted 3 times, 2 true -> P=1/3, R=1/2, F1=2/5
#   class 2: TP=0, never predicted,   2 true -> P=0 (undefined), R=0, F1=0
ABSENT_LABELS = [0, 0, 1, 1, 2, 2]
ABSENT_PREDICTIONS = [0, 0, 1, 0, 1, 1]
ABSENT_NAMES = ["neg", "neu", "pos"]


def test_macro_f1_is_mean_of_per_class_f1_not_f1_of_means():
    metrics = classification_metrics(TWO_CLASS_LABELS, TWO_CLASS_PREDICTIONS, num_classes=2)
    assert metrics["accuracy"] == pytest.approx(5 / 8)
    assert metrics["per_class_precision"] == pytest.approx({"0": 1 / 2, "1": 1.0})
    assert metrics["per_class_recall"] == pytest.approx({"0": 1.0, "1": 2 / 5})
    assert metrics["per_class_f1"] == pytest.approx({"0": 2 / 3, "1": 4 / 7})
    assert metrics["macro_f1"] == pytest.approx(13 / 21)
    assert metrics["macro_f1"] != pytest.approx(21 / 29)
    assert metrics["per_class_support"] == {"0": 3, "1": 5}
    assert metrics["num_examples"] == 8


def test_class_absent_from_predictions_scores_zero():
    metrics = classification_metrics(ABSENT_LABELS, ABSENT_PREDICTIONS, num_classes=3, label_names=ABSENT_NAMES)
    assert list(metrics["per_class_f1"]) == ABSENT_NAMES
    assert metrics["per_class_precision"] == pytest.approx({"neg": 2 / 3, "neu": 1 / 3, "pos": 0.0})
    assert metrics["per_class_recall"] == pytest.approx({"neg": 1.0, "neu": 1 / 2, "pos": 0.0})
    assert metrics["per_class_f1"] == pytest.approx({"neg": 4 / 5, "neu": 2 / 5, "pos": 0.0})
    assert metrics["macro_f1"] == pytest.approx((4 / 5 + 2 / 5 + 0) / 3)
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 2, 0]]


def test_class_absent_everywhere_still_counts_in_macro_average():
    metrics = classification_metrics(ABSENT_LABELS, ABSENT_PREDICTIONS, num_classes=4)
    assert metrics["macro_f1"] == pytest.approx((4 / 5 + 2 / 5 + 0 + 0) / 4)
    assert metrics["per_class_support"]["3"] == 0
    assert metrics["confusion_matrix"][3] == [0, 0, 0, 0]


def test_confusion_matrix_rows_are_true_classes():
    # Every true 0 predicted as 1: the count belongs in row 0, column 1.
    metrics = classification_metrics([0, 0, 0, 1], [1, 1, 1, 1], num_classes=2)
    assert metrics["confusion_matrix"] == [[0, 3], [0, 1]]


def test_perfect_predictions():
    metrics = classification_metrics([2, 0, 1], [2, 0, 1], num_classes=3)
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0


def test_result_is_json_serialisable():
    metrics = classification_metrics(ABSENT_LABELS, ABSENT_PREDICTIONS, num_classes=3, label_names=ABSENT_NAMES)
    assert json.loads(json.dumps(metrics)) == metrics


@pytest.mark.parametrize("labels, predictions, num_classes, names, fragment", [
    ([], [], 3, None, "empty"),
    ([0, 1], [0], 2, None, "2 labels but 1 predictions"),
    ([0, 3], [0, 1], 3, None, "label id 3"),
    ([0, 1], [0, -1], 2, None, "prediction id -1"),
    ([0, 1], [0, 1], 2, ["a"], "1 label names for 2 classes"),
])
def test_invalid_input(labels, predictions, num_classes, names, fragment):
    with pytest.raises(ValueError, match=fragment):
        classification_metrics(labels, predictions, num_classes, label_names=names)


def test_table_shows_per_class_scores_and_confusion_matrix():
    metrics = classification_metrics(ABSENT_LABELS, ABSENT_PREDICTIONS, num_classes=3, label_names=ABSENT_NAMES)
    table = format_metrics_table(metrics)
    lines = table.splitlines()
    assert "accuracy: 0.5000" in lines[0] and "macro-F1: 0.4000" in lines[0] and "examples: 6" in lines[0]
    neg_row = next(line for line in lines if line.startswith("neg ") and "0.6667" in line)
    assert neg_row.split() == ["neg", "0.6667", "1.0000", "0.8000", "2"]
    pos_row = next(line for line in lines if line.startswith("pos ") and "." in line)
    assert pos_row.split() == ["pos", "0.0000", "0.0000", "0.0000", "2"]
    matrix_start = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    assert lines[matrix_start + 1].split() == ABSENT_NAMES
    assert [line.split() for line in lines[matrix_start + 2:]] == [
        ["neg", "2", "0", "0"],
        ["neu", "1", "1", "0"],
        ["pos", "0", "2", "0"],
    ]
