"""Tests of fastformer_zoo.scoring against small examples worked out by hand."""
import json

import numpy as np
import pytest

from fastformer_zoo.scoring import classification_metrics, format_metrics_table, paired_difference

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


# ----------------------------------------------------------------------------------------------
# many classes: the confusion matrix gives way to the most frequent confusions
# ----------------------------------------------------------------------------------------------
def many_class_metrics(num_classes=10_000):
    # 3 -> 7 confused five times, 9 -> 2 twice, 0 -> 1 once; every other example right.
    labels = [3] * 5 + [9] * 2 + [0] + list(range(num_classes))
    predictions = [7] * 5 + [2] * 2 + [1] + list(range(num_classes))
    return classification_metrics(labels, predictions, num_classes, [f"c{i}" for i in range(num_classes)])


def test_the_dense_matrix_is_kept_up_to_the_documented_class_count():
    from fastformer_zoo.scoring import DENSE_CONFUSION_MAX_CLASSES

    metrics = classification_metrics([0, DENSE_CONFUSION_MAX_CLASSES - 1], [1, 1], DENSE_CONFUSION_MAX_CLASSES)
    matrix = metrics["confusion_matrix"]
    assert len(matrix) == DENSE_CONFUSION_MAX_CLASSES and matrix[0][1] == 1 and matrix[-1][1] == 1
    assert "top_confusions" not in metrics


def test_ten_thousand_classes_keep_the_top_confusions_not_a_dense_matrix():
    metrics = many_class_metrics()
    assert "confusion_matrix" not in metrics
    assert metrics["top_confusions"] == [
        {"true": "c3", "predicted": "c7", "count": 5},
        {"true": "c9", "predicted": "c2", "count": 2},
        {"true": "c0", "predicted": "c1", "count": 1},
    ]
    assert metrics["confused_pairs"] == 3
    assert metrics["per_class_support"]["c3"] == 6 and len(metrics["per_class_f1"]) == 10_000
    assert len(json.dumps(metrics)) < 2_000_000  # a dense matrix alone would be 200 MB of JSON


def test_the_top_confusions_are_capped_most_frequent_first():
    from fastformer_zoo.scoring import TOP_CONFUSIONS

    num_classes = 1000
    labels = [i for i in range(num_classes) for _ in range(1 + i % 3)]
    predictions = [(label + 1) % num_classes for label in labels]
    metrics = classification_metrics(labels, predictions, num_classes)
    top = metrics["top_confusions"]
    assert len(top) == TOP_CONFUSIONS and metrics["confused_pairs"] == num_classes
    assert [pair["count"] for pair in top] == sorted((pair["count"] for pair in top), reverse=True)
    assert top[0] == {"true": "2", "predicted": "3", "count": 3}


def test_table_of_many_classes_lists_the_top_confusions():
    table = format_metrics_table(many_class_metrics(200))
    assert "confusion matrix (rows" not in table
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("most frequent confusions"))
    assert "3 of 3 distinct ones" in lines[start] and "up to 100 classes" in lines[start]
    assert [line.split() for line in lines[start + 2:]] == [["c3", "c7:", "5"], ["c9", "c2:", "2"], ["c0", "c1:", "1"]]


def test_a_results_figure_of_many_classes_is_refused_in_one_line(tmp_path):
    from fastformer_zoo.errors import UserError
    from fastformer_zoo.reporting import plot_confusion_matrices

    run = {"run": "seed-1", "test_file": "test.jsonl", "evaluations": {"test.jsonl": many_class_metrics(200)}}
    with pytest.raises(UserError, match="seed-1: the metrics of test.jsonl hold no confusion matrix \\(200 classes"):
        plot_confusion_matrices(run, str(tmp_path / "confusion.png"))
    assert not (tmp_path / "confusion.png").exists()


# --------------------------------------------------------------------------- paired comparisons of two models


def noisy_predictions(labels, error_rate, seeds, rng, num_classes=3):
    """[seeds, texts] predictions: each wrong with probability ``error_rate``, a wrong one a random other class."""
    labels = np.asarray(labels)
    wrong = rng.random((seeds, labels.size)) < error_rate
    shifted = (labels + rng.integers(1, num_classes, size=(seeds, labels.size))) % num_classes
    return np.where(wrong, shifted, labels)


def test_paired_difference_is_b_minus_a_of_the_metrics_means():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=400)
    runs_a, runs_b = noisy_predictions(labels, 0.4, 3, rng), noisy_predictions(labels, 0.2, 3, rng)
    result = paired_difference(labels, runs_a, runs_b, 3, draws=300)
    scores = {key: [np.mean([classification_metrics(labels, row, 3)[key] for row in runs]) for runs in (runs_a, runs_b)]
              for key in ("accuracy", "macro_f1")}  # fmt: skip
    for key, (a, b) in scores.items():
        assert result[key]["difference"] == pytest.approx(b - a, abs=1e-12)
        assert result[key]["low"] < b - a < result[key]["high"] and result[key]["low"] > 0  # B is clearly better
        assert result[key]["p_value"] < 0.01
    assert (result["texts"], result["seeds"]) == (400, 3)


def test_paired_difference_of_equal_models():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=300)
    same = noisy_predictions(labels, 0.3, 2, rng)
    assert paired_difference(labels, same, same, 3, draws=50)["accuracy"] == {"difference": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}
    other = noisy_predictions(labels, 0.3, 2, rng)  # as good, different errors: the interval spans 0
    interval = paired_difference(labels, same, other, 3, draws=300)["accuracy"]
    assert interval["low"] < 0 < interval["high"] and interval["p_value"] > 0.05


def test_paired_difference_needs_runs_on_the_same_texts():
    with pytest.raises(ValueError, match=r"\[seeds, 3\]"):
        paired_difference([0, 1, 1], [[0, 1, 1]], [[0, 1]], 2)
