"""Scoring, shared by training, evaluation and deployment: classification metrics (accuracy, macro-F1,
per-class scores, the confusion matrix, or its most frequent confusions for many classes) and ROUGE for
generated summaries.

Macro-F1 is the mean of the per-class F1 scores, as scikit-learn and the Fastformer paper compute
it; it is not the harmonic mean of macro precision and macro recall, which can differ noticeably.
All returned values are plain Python numbers so the dict can be written as JSON or YAML.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

__all__ = [
    "classification_metrics", "format_metrics_table", "rouge_scores", "ROUGE_TYPES", "DENSE_CONFUSION_MAX_CLASSES",
    "TOP_CONFUSIONS",
]  # fmt: skip

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# The whole confusion matrix is kept up to this many classes. It grows with the square of the classes: with
# 10,000 of them every dev evaluation would write 10**8 cells into dev_metrics.json, and build them in memory.
DENSE_CONFUSION_MAX_CLASSES = 100
# Above that, the metrics keep this many of the most frequent (true, predicted) confusions instead.
TOP_CONFUSIONS = 100


def classification_metrics(
    labels: Sequence[int],
    predictions: Sequence[int],
    num_classes: int,
    label_names: Optional[Sequence[str]] = None,
    confusion: bool = True,
) -> dict[str, Any]:
    """Score ``predictions`` against ``labels`` (class ids in ``[0, num_classes)``).

    Every class counts in the macro average, even one absent from both labels and predictions,
    so scores stay comparable across evaluation sets; an undefined precision or recall is 0.

    Returns:
        A dict with ``num_examples``, ``accuracy``, ``macro_f1``, ``per_class_precision``,
        ``per_class_recall``, ``per_class_f1``, ``per_class_support`` (each keyed by label name,
        in class-id order) and, with ``confusion``, what was confused with what: up to
        :data:`DENSE_CONFUSION_MAX_CLASSES` classes the whole ``confusion_matrix`` (rows are true
        classes, columns predicted); above, ``top_confusions`` instead, the :data:`TOP_CONFUSIONS`
        most frequent errors as ``{"true", "predicted", "count"}`` (most frequent first), and
        ``confused_pairs``, how many distinct (true, predicted) errors there were in all.

    Raises:
        ValueError: on empty input, mismatched lengths, ids outside the classes, or a
            ``label_names`` whose length is not ``num_classes``.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if labels.size == 0:
        raise ValueError("cannot compute metrics on an empty set of examples")
    if labels.shape != predictions.shape:
        raise ValueError(f"got {labels.size} labels but {predictions.size} predictions")
    names = [str(i) for i in range(num_classes)] if label_names is None else [str(n) for n in label_names]
    if len(names) != num_classes:
        raise ValueError(f"got {len(names)} label names for {num_classes} classes")
    for what, ids in (("label", labels), ("prediction", predictions)):
        # scikit-learn would silently drop ids missing from `labels=`, hiding a data or model bug.
        outside = ids[(ids < 0) | (ids >= num_classes)]
        if outside.size:
            raise ValueError(f"{what} id {int(outside[0])} is outside [0, {num_classes})")

    class_ids = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=class_ids, average=None, zero_division=0
    )
    metrics = {
        "num_examples": int(labels.size),
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, labels=class_ids, average="macro", zero_division=0)),
        "per_class_precision": dict(zip(names, precision.tolist())),
        "per_class_recall": dict(zip(names, recall.tolist())),
        "per_class_f1": dict(zip(names, f1.tolist())),
        # Integers: with some classes never predicted scikit-learn may hand the supports back as floats.
        "per_class_support": dict(zip(names, (int(count) for count in support))),
    }
    if confusion:
        metrics.update(_confusions(labels, predictions, names))
    return metrics


def _confusions(labels: np.ndarray, predictions: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """The confusion matrix, or for many classes its largest off-diagonal cells, counted from the pairs that
    occur: never a matrix of more than DENSE_CONFUSION_MAX_CLASSES squared cells."""
    num_classes = len(names)
    cells = labels * num_classes + predictions  # a pair as one integer: counted without a classes-squared table
    if num_classes <= DENSE_CONFUSION_MAX_CLASSES:
        return {"confusion_matrix": np.bincount(cells, minlength=num_classes**2).reshape(num_classes, num_classes).tolist()}
    codes, counts = np.unique(cells[labels != predictions], return_counts=True)
    top = np.lexsort((codes, -counts))[:TOP_CONFUSIONS]  # ties by class ids, so that a run lists them the same each time
    return {
        "top_confusions": [
            {"true": names[int(code) // num_classes], "predicted": names[int(code) % num_classes], "count": int(count)}
            for code, count in zip(codes[top], counts[top])
        ],
        "confused_pairs": int(codes.size),
    }


def _accuracy_and_macro_f1(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro-F1 (every class counted, as :func:`classification_metrics`) of each row of
    ``predictions`` [runs, texts]; by counts, for the thousands of resamples a bootstrap scores."""
    cells = np.stack([np.bincount(labels * num_classes + row, minlength=num_classes**2) for row in predictions])
    confusion = cells.reshape(len(predictions), num_classes, num_classes)
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    denominator = confusion.sum(axis=1) + confusion.sum(axis=2)  # 2 tp + fp + fn, per class
    f1 = np.divide(2 * hits, denominator, out=np.zeros(hits.shape), where=denominator > 0)
    return hits.sum(axis=1) / labels.size, f1.mean(axis=1)


def paired_difference(labels: Sequence[int], runs_a: np.ndarray, runs_b: np.ndarray, num_classes: int,
                      draws: int = 2000, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """How much better model B scores than model A on the same texts: the difference of their mean accuracy and
    macro-F1 over seeds, with a 95% interval from a paired bootstrap over texts and seeds.

    Args:
        labels: the true class id of each text.
        runs_a, runs_b: predicted class ids, [seeds, texts]; row i of each is one seed, so that the seeds pair up
            (one row each pairs two single runs).
        draws: bootstrap resamples; each draws the texts, and the seed pairs, with replacement.

    Returns:
        ``{"accuracy": ..., "macro_f1": ...}``, each ``{"difference", "low", "high", "p_value"}`` (B minus A, as
        fractions; ``p_value``: the two-sided bootstrap p-value of no difference), plus ``texts`` and ``seeds``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    runs_a, runs_b = np.atleast_2d(np.asarray(runs_a, dtype=np.int64)), np.atleast_2d(np.asarray(runs_b, dtype=np.int64))
    if runs_a.shape != runs_b.shape or runs_a.shape[1] != labels.size:
        raise ValueError(f"expected two [seeds, {labels.size}] prediction arrays, got {runs_a.shape} and {runs_b.shape}")
    rng = np.random.default_rng(seed)
    seeds, texts = runs_a.shape
    observed = [b.mean() - a.mean() for a, b in zip(_accuracy_and_macro_f1(labels, runs_a, num_classes),
                                                     _accuracy_and_macro_f1(labels, runs_b, num_classes))]  # fmt: skip
    resampled = np.empty((draws, 2))
    for draw in range(draws):
        rows, columns = rng.integers(seeds, size=seeds), rng.integers(texts, size=texts)
        scores_a = _accuracy_and_macro_f1(labels[columns], runs_a[rows][:, columns], num_classes)
        scores_b = _accuracy_and_macro_f1(labels[columns], runs_b[rows][:, columns], num_classes)
        resampled[draw] = [scores_b[0].mean() - scores_a[0].mean(), scores_b[1].mean() - scores_a[1].mean()]
    result: dict[str, Any] = {"texts": texts, "seeds": seeds}
    for index, name in enumerate(("accuracy", "macro_f1")):
        column = resampled[:, index]
        low, high = np.percentile(column, [2.5, 97.5])
        p_value = min(1.0, 2 * min((column <= 0).mean(), (column >= 0).mean()))
        result[name] = {"difference": float(observed[index]), "low": float(low), "high": float(high), "p_value": float(p_value)}
    return result


def format_metrics_table(metrics: dict[str, Any]) -> str:
    """Render :func:`classification_metrics` output as a plain-text report for a terminal or log."""
    names = list(metrics["per_class_f1"])
    name_width = max(len("class"), *(len(n) for n in names))
    lines = [f"examples: {metrics['num_examples']}  accuracy: {metrics['accuracy']:.4f}  macro-F1: {metrics['macro_f1']:.4f}"]
    baseline = metrics.get("majority_baseline")
    if baseline:
        lines.append(
            f"baseline, always {baseline['label']!r} (the training split's most frequent class): "
            f"accuracy: {baseline['accuracy']:.4f}  macro-F1: {baseline['macro_f1']:.4f}"
        )
    lines += [
        "",
        f"{'class':<{name_width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>9}",
    ]
    for name in names:
        lines.append(
            f"{name:<{name_width}}  {metrics['per_class_precision'][name]:>9.4f}  "
            f"{metrics['per_class_recall'][name]:>9.4f}  {metrics['per_class_f1'][name]:>9.4f}  "
            f"{metrics['per_class_support'][name]:>9d}"
        )

    return "\n".join(lines + _confusion_lines(metrics, names, name_width))


def _confusion_lines(metrics: dict[str, Any], names: list, name_width: int) -> list:
    """The confusion matrix as a table, or the most frequent confusions where the metrics hold only those."""
    if "confusion_matrix" in metrics:
        matrix = metrics["confusion_matrix"]
        cell_width = max(len(n) for n in names + [str(c) for row in matrix for c in row])
        lines = ["", "confusion matrix (rows: true class, columns: predicted class)"]
        lines.append(" " * name_width + "".join(f"  {n:>{cell_width}}" for n in names))
        for name, row in zip(names, matrix):
            lines.append(f"{name:<{name_width}}" + "".join(f"  {c:>{cell_width}d}" for c in row))
        return lines
    if "top_confusions" not in metrics:
        return []
    top = metrics["top_confusions"]
    lines = ["", f"most frequent confusions ({len(top)} of {metrics['confused_pairs']} distinct ones; the whole matrix "
                 f"is kept up to {DENSE_CONFUSION_MAX_CLASSES} classes, these metrics have {len(names)})"]  # fmt: skip
    width = max([len("true class"), *(len(pair["true"]) for pair in top)])
    lines.append(f"{'true class':<{width}}  predicted class: count")
    lines += [f"{pair['true']:<{width}}  {pair['predicted']}: {pair['count']}" for pair in top]
    return lines


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """Mean ROUGE-1/2/L F-measure of ``predictions`` against ``references`` (rouge-score, Porter stemming)."""
    from rouge_score import rouge_scorer  # imports nltk: only the text writers' evaluations pay for it

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(reference, prediction) for prediction, reference in zip(predictions, references)]
    return {name: float(np.mean([score[name].fmeasure for score in scores])) for name in ROUGE_TYPES}
