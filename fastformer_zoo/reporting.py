"""Reporting: the Markdown results tables, per-class F1 and confusion-matrix pictures built from kept runs.

It reads only the small files that :mod:`.engine.experiments` keeps per run (``RESULTS_DIR/<config
name>_seed<seed>/metrics.json``) and a run's ``trainer_state.json`` (its dev records), never a checkpoint's
weights; ``tools/results_table.py`` and ``tools/dev_history.py`` write what it builds into the results pages
(``docs/results.md``, ``docs/pretraining.md``) between named block markers.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Optional, Sequence

from paddlenlp_fastformer.file_utils import write_text_atomically

from .data.readers import read_split
from .engine.experiments import METRICS_FILE, PREDICTIONS_FILE
from .engine.plots import pyplot, save_png
from .errors import UserError
from .scoring import paired_difference

__all__ = [
    "PAPER_TABLE4_AMAZON", "PAPER_TABLE6_FASTFORMER", "load_runs", "best_run", "results_markdown", "summary_results_markdown", "plot_confusion_matrices", "replace_block", "time_markdown", "plot_time_curves", "comparison_markdown", "dev_history_markdown",
]  # fmt: skip

# Fastformer paper, Table 4, Amazon column (mean ± std over 5 runs, %): natural-skew Electronics reviews.
PAPER_TABLE4_AMAZON = {
    "Transformer": {"accuracy": (65.32, 0.35), "macro_f1": (42.31, 0.33)},
    "Fastformer": {"accuracy": (66.13, 0.29), "macro_f1": (43.23, 0.30)},
}
MODEL_NAMES = {"fastformer": "Fastformer", "transformer": "Transformer"}


def load_runs(results_dir: str) -> list[dict]:
    """Every kept run's ``metrics.json`` under ``results_dir``, with ``run`` set to its directory name."""
    runs = []
    for path in sorted(Path(results_dir).glob(f"*/{METRICS_FILE}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: unreadable run record ({exc})") from None
        _check_record(path, record)
        record["run"] = path.parent.name
        runs.append(record)
    if not runs:
        raise UserError(f"{results_dir}: no */{METRICS_FILE} found (run tools/run_experiment.py first)")
    return runs


# What the table reads from a run record, with the type each must have; then per task (a record without
# "task" predates text writers: a classifier's).
RECORD_FIELDS = {"model": str, "seed": int, "train_seconds": (int, float), "resumed": bool, "cpu_threads": int,
                 "dev_history": list, "test_file": str, "evaluations": dict, "config_file": str}  # fmt: skip
TASK_FIELDS = {"classification": ("best_dev_macro_f1", {"accuracy", "macro_f1", "per_class_f1"}),
               "seq2seq": ("best_dev_neg_loss", {"rouge1", "rouge2", "rougeL"})}  # fmt: skip


def _check_record(path: Path, record) -> None:
    """Refuse a run record the table cannot read, naming the field (it may have been edited by hand)."""
    if not isinstance(record, dict):
        raise UserError(f"{path}: holds a JSON {type(record).__name__}; expected a run record (an object)")
    task = record.setdefault("task", "classification")
    if task not in TASK_FIELDS:
        raise UserError(f"{path}: field 'task' is {task!r}; expected one of {', '.join(TASK_FIELDS)}")
    score_field, metric_names = TASK_FIELDS[task]
    for field, kind in {**RECORD_FIELDS, score_field: (int, float)}.items():
        if not isinstance(record.get(field), kind):
            raise UserError(f"{path}: field '{field}' is {record.get(field)!r}; expected {kind}")
    if record["model"] not in MODEL_NAMES:
        raise UserError(f"{path}: field 'model' is {record['model']!r}; expected one of {', '.join(MODEL_NAMES)}")
    for name, metrics in record["evaluations"].items():
        if not isinstance(metrics, dict) or not metric_names <= set(metrics):
            raise UserError(f"{path}: evaluation of {name!r} lacks one of {', '.join(sorted(metric_names))}")


def _mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    values = [v * scale for v in values]
    if not all(math.isfinite(value) for value in values):
        return "—"  # a run that recorded NaN: no figure to show
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _training_seconds(run: dict) -> tuple[float, bool]:
    """The run's training time and whether it is only a part: its last dev record's training seconds (every session
    summed, evaluation not counted) where the run recorded them, else the kept wall time of the command that kept
    it, which covers only the last session of a resumed run."""
    history = run["dev_history"]
    if history and "train_seconds" in history[-1]:
        return history[-1]["train_seconds"], False
    return run["train_seconds"], run["resumed"]


def _seconds_cell(run: dict) -> str:
    seconds, partial = _training_seconds(run)
    return f"{seconds:.0f}" + (" (resumed)" if partial else "")


def _evaluation_sets(runs: list[dict]) -> list[str]:
    """Evaluation files in first-seen order, the test split first."""
    files: list[str] = []
    for run in runs:
        for name in [run["test_file"], *run["evaluations"]]:
            if name not in files:
                files.append(name)
    return files


def best_run(runs: list[dict]) -> dict:
    """The run chosen by dev macro-F1 (never by a test figure)."""
    return max(runs, key=lambda run: run["best_dev_macro_f1"])


def _row_groups(runs: list[dict], row_names: dict[str, str]) -> list[tuple[str, list[dict]]]:
    """(row label, runs) per config: in ``row_names``' order with its labels (config file -> label), then the
    configs it does not name, by model, labelled by their model."""
    configs = list(row_names) + sorted(
        {run["config_file"] for run in runs} - set(row_names),
        key=lambda name: next(list(MODEL_NAMES).index(run["model"]) for run in runs if run["config_file"] == name),
    )
    groups = [(name, [run for run in runs if run["config_file"] == name]) for name in configs if any(run["config_file"] == name for run in runs)]
    models = [group[0]["model"] for _, group in groups]
    # A model with several unnamed configs (e.g. two cross-attentions) is told apart by the config's file name.
    return [
        (row_names.get(name) or MODEL_NAMES[group[0]["model"]] + (f" ({Path(name).stem})" if models.count(group[0]["model"]) > 1 else ""), group)
        for name, group in groups
    ]  # fmt: skip


def _row_labels(runs: list[dict], row_names: Optional[dict[str, str]]) -> dict[str, str]:
    """Each run's row label (by run name), as :func:`_row_groups` gives it."""
    return {run["run"]: label for label, group in _row_groups(runs, row_names or {}) for run in group}


def _majority_row(runs: list[dict], files: list[str]) -> Optional[list[str]]:
    """What always answering the training split's most frequent label scores on each set, where recorded."""
    cells, label = [], None
    for name in files:
        baseline = next((run["evaluations"][name].get("majority_baseline") for run in runs if name in run["evaluations"]), None)
        label = label or (baseline or {}).get("label")
        cells += [f"{100 * baseline['accuracy']:.2f}", f"{100 * baseline['macro_f1']:.2f}"] if baseline else ["—", "—"]
    return [f"Always \"{label}\" (the training split's most frequent)", "—", *cells, "—"] if label else None


def results_markdown(runs: list[dict], set_names: Optional[dict[str, str]] = None, row_names: Optional[dict[str, str]] = None) -> str:
    """The README results: mean ± std per config over seeds (``row_names``: config file -> row label), the
    majority-label baseline and the paper's Table 4 beside, then every run."""
    set_names = set_names or {}
    files = _evaluation_sets(runs)
    models = sorted({run["model"] for run in runs}, key=list(MODEL_NAMES).index)
    header = ["Model", "Seeds"]
    for name in files:
        label = set_names.get(name, name)
        header += [f"{label} Acc", f"{label} Macro-F1"]
    header += ["Train time per run (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, group in _row_groups(runs, row_names or {}):
        row = [label, ", ".join(str(run["seed"]) for run in group)]
        for name in files:
            scored = [run["evaluations"][name] for run in group if name in run["evaluations"]]
            row += [_mean_std([m["accuracy"] for m in scored], 100), _mean_std([m["macro_f1"] for m in scored], 100)]
        row.append(_mean_std([_training_seconds(run)[0] for run in group], digits=0))
        lines.append("| " + " | ".join(row) + " |")
    majority = _majority_row(runs, files)
    if majority:
        lines.append("| " + " | ".join(majority) + " |")
    # The paper's own test set is a natural-skew Electronics sample: its figures go in that column pair.
    electronics = next((i for i, name in enumerate(files) if "electronics" in name.lower()), None)
    for model in models if electronics is not None else ():
        paper = PAPER_TABLE4_AMAZON[MODEL_NAMES[model]]
        row = [f"{MODEL_NAMES[model]}, paper Table 4 (Amazon Electronics 50k)", "5 runs"]
        row += ["—"] * (2 * len(files))
        row[2 + 2 * electronics] = "{:.2f} ± {:.2f}".format(*paper["accuracy"])
        row[3 + 2 * electronics] = "{:.2f} ± {:.2f}".format(*paper["macro_f1"])
        row.append("—")
        lines.append("| " + " | ".join(row) + " |")

    lines += ["", "Every run (the kept log and metrics are in the run's directory):", ""]
    run_header = ["Run", "Dev macro-F1 by epoch"] + [f"{set_names.get(n, n)} Acc / Macro-F1" for n in files] + ["Train s", "Threads"]
    lines += ["| " + " | ".join(run_header) + " |", "|" + "---|" * len(run_header)]
    for run in runs:
        row = [run["run"], ", ".join(f"{100 * h['macro_f1']:.2f}" for h in run["dev_history"])]
        for name in files:
            m = run["evaluations"].get(name)
            row.append(f"{100 * m['accuracy']:.2f} / {100 * m['macro_f1']:.2f}" if m else "—")
        row += [_seconds_cell(run), str(run["cpu_threads"])]
        lines.append("| " + " | ".join(row) + " |")

    best = best_run(runs)
    lines += ["", f"Per-class F1 (%) of the best run by dev macro-F1, `{best['run']}`, with each class's test count:", ""]
    lines += ["| Class | " + " | ".join(set_names.get(n, n) for n in files) + " |", "|---|" + "---|" * len(files)]
    for label in best["evaluations"][files[0]]["per_class_f1"]:
        cells = []
        for name in files:
            m = best["evaluations"][name]
            cells.append(f"{100 * m['per_class_f1'][label]:.1f} (n={m['per_class_support'][label]})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _timed_history(run: dict) -> list[dict]:
    """The run's dev records, each with its minutes of training; refused for runs kept before records had them."""
    if any("train_seconds" not in record for record in run["dev_history"]):
        raise UserError(f"run {run['run']}: its dev records lack train_seconds (kept before they were recorded); "
                        "expected runs trained by this version")  # fmt: skip
    return [{**record, "minutes": record["train_seconds"] / 60} for record in run["dev_history"]]


def _best_within(history: list[dict], minutes: float, key: str) -> Optional[float]:
    reached = [record[key] for record in history if record["minutes"] <= minutes]
    return max(reached) if reached else None


def time_markdown(runs: list[dict], row_names: Optional[dict[str, str]] = None, key: str = "accuracy") -> str:
    """Equal-compute comparison: each run's best dev score reached within each training time at which some run
    was evaluated (evaluation and saving not counted), then each run's dev scores by epoch with their times."""
    labels = _row_labels(runs, row_names)
    histories = {run["run"]: _timed_history(run) for run in runs}
    budgets = sorted({record["minutes"] for history in histories.values() for record in history})
    header = ["Run", "Model"] + [f"≤ {minutes:.1f} min" for minutes in budgets]
    lines = [f"Best dev {key.replace('_', '-')} (%) reached within a training time (minutes of training, "
             "evaluation not counted):", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]  # fmt: skip
    for run in runs:
        cells = [_best_within(histories[run["run"]], minutes, key) for minutes in budgets]
        lines.append("| " + " | ".join([run["run"], labels[run["run"]]] + ["—" if c is None else f"{100 * c:.2f}" for c in cells]) + " |")
    lines += ["", "Dev scores by epoch (minutes of training so far):", ""]
    for run in runs:
        points = ", ".join(f"{100 * r[key]:.2f} ({r['minutes']:.0f} min)" for r in histories[run["run"]])
        lines.append(f"- `{run['run']}`: {points}")
    return "\n".join(lines) + "\n"


def plot_time_curves(runs: list[dict], output_path: str, row_names: Optional[dict[str, str]] = None, key: str = "accuracy") -> None:
    """Dev score against minutes of training, one line per run, as a PNG."""
    labels = _row_labels(runs, row_names)
    figure, axis = pyplot().subplots(figsize=(6.4, 3.8))
    for run in runs:
        history = _timed_history(run)
        axis.plot([r["minutes"] for r in history], [100 * r[key] for r in history], "o-", label=f"{labels[run['run']]} ({run['run']})")
    axis.set_xlabel("minutes of training (evaluation not counted)")
    axis.set_ylabel(f"dev {key.replace('_', '-')} (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_png(figure, output_path)


def _kept_predictions(results_dir: str, run: dict, name: str) -> list[int]:
    path = Path(results_dir) / run["run"] / PREDICTIONS_FILE
    try:
        return [int(value) for value in json.loads(path.read_text(encoding="utf-8"))[name].split()]
    except FileNotFoundError:
        raise UserError(f"{path}: not found; the run was kept before predictions were (run it again with "
                        "tools/run_experiment.py after moving its kept directory away: it resumes and evaluates)") from None
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise UserError(f"{path}: no readable predictions for {name} ({type(error).__name__}: {error})") from None


def comparison_markdown(results_dir: str, runs: list[dict], config_a: str, config_b: str,
                        set_names: Optional[dict[str, str]] = None, row_names: Optional[dict[str, str]] = None) -> str:  # fmt: skip
    """Model B against model A on each evaluation file both were scored on: their mean test scores over the seeds
    they share, and B minus A with a 95% paired-bootstrap interval over texts and seeds
    (:func:`..scoring.paired_difference`). The true labels are read from the evaluation files themselves."""
    groups = [{run["seed"]: run for run in runs if run["config_file"] == config} for config in (config_a, config_b)]
    seeds = sorted(set(groups[0]) & set(groups[1]))
    if not seeds:
        raise UserError(f"{results_dir}: no seed has a kept run of both {config_a} and {config_b}; expected runs "
                        "of both configs with the same seeds")  # fmt: skip
    labels = _row_labels(runs, row_names)
    name_a, name_b = (labels[group[seeds[0]]["run"]] for group in groups)
    header = ["Test set", "Seeds", "Texts", f"{name_a} Acc / Macro-F1", f"{name_b} Acc / Macro-F1",
              f"{name_b} − {name_a}: Acc [95% CI]", "p", "Macro-F1 [95% CI]", "p"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    shared_files = [name for name in _evaluation_sets(runs) if all(name in g[s]["evaluations"] for g in groups for s in seeds)]
    for name in shared_files:
        classes = list(groups[0][seeds[0]]["evaluations"][name]["per_class_f1"])
        labels = [example["label"] for example in read_split(name, classes, "evaluation file")]
        runs_a, runs_b = ([_kept_predictions(results_dir, group[seed], name) for seed in seeds] for group in groups)
        if any(len(row) != len(labels) for row in runs_a + runs_b):
            raise UserError(f"{name}: holds {len(labels)} texts, not as many as the kept predictions; expected the file "
                            "the runs were scored on")  # fmt: skip
        result = paired_difference(labels, runs_a, runs_b, len(classes))
        means = [" / ".join(_mean_std([g[s]["evaluations"][name][k] for s in seeds], 100) for k in ("accuracy", "macro_f1")) for g in groups]
        cells = [set_names.get(name, name) if set_names else name, ", ".join(map(str, seeds)), str(len(labels)), *means]
        for key in ("accuracy", "macro_f1"):
            d = result[key]
            cells += [f"{100 * d['difference']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]", f"{d['p_value']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


ROUGE_NAMES = ("rouge1", "rouge2", "rougeL")
# Fastformer paper, Table 6 (%): Fastformer's summaries of news (CNN/DailyMail) and of papers (PubMed).
PAPER_TABLE6_FASTFORMER = {"CNN/DailyMail": (38.54, 16.22, 36.21), "PubMed": (38.09, 15.44, 34.81)}


def summary_results_markdown(runs: list[dict], row_names: Optional[dict[str, str]] = None) -> str:
    """The README results of text writers: ROUGE-1/2/L (F-measure, %) on the test split, mean ± std per config
    over seeds (``row_names``: config file -> row label), the paper's Table 6 beside, then every run."""
    if {run["task"] for run in runs} != {"seq2seq"}:
        raise UserError("the kept runs mix classifiers and text writers; give a results folder of one kind")
    header = ["Model", "Seeds", "ROUGE-1", "ROUGE-2", "ROUGE-L", "Train time per run (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, group in _row_groups(runs, row_names or {}):
        scores = [run["evaluations"][run["test_file"]] for run in group]
        row = [label, ", ".join(str(run["seed"]) for run in group)]
        row += [_mean_std([score[name] for score in scores], 100) for name in ROUGE_NAMES]
        lines.append("| " + " | ".join(row + [_mean_std([_training_seconds(run)[0] for run in group], digits=0)]) + " |")
    for dataset, figures in PAPER_TABLE6_FASTFORMER.items():
        lines.append(f"| Fastformer, paper Table 6 ({dataset}, other data) | — | " + " | ".join(f"{value:.2f}" for value in figures) + " | — |")
    lines += ["", "Every run (the kept log and metrics are in the run's directory):", ""]
    lines += ["| Run | Dev loss by epoch | ROUGE-1 / 2 / L | Train s | Threads |", "|---|---|---|---|---|"]
    for run in runs:
        score = run["evaluations"][run["test_file"]]
        rouge = " / ".join(f"{100 * score[name]:.2f}" for name in ROUGE_NAMES)
        seconds = _seconds_cell(run)
        dev = ", ".join(f"{h['loss']:.3f}" for h in run["dev_history"])
        lines.append(f"| {run['run']} | {dev} | {rouge} | {seconds} | {run['cpu_threads']} |")
    return "\n".join(lines) + "\n"


# Above this many classes the cells are too small for their counts: the colours alone tell the story.
MAX_ANNOTATED_CLASSES = 10


def _confusion_matrix(run: dict, name: str, num_classes: int) -> list:
    """The confusion matrix of one evaluation set: evaluation keeps it only up to DENSE_CONFUSION_MAX_CLASSES classes."""
    from .scoring import DENSE_CONFUSION_MAX_CLASSES

    metrics = run["evaluations"][name]
    if "confusion_matrix" not in metrics:
        raise UserError(
            f"{run['run']}: the metrics of {name} hold no confusion matrix ({num_classes} classes: evaluation keeps the "
            f"whole matrix up to {DENSE_CONFUSION_MAX_CLASSES} classes, and only the most frequent confusions above); "
            "expected runs of fewer classes for --figure, or leave it out"
        )
    return metrics["confusion_matrix"]


def plot_confusion_matrices(run: dict, output_path: str, set_names: Optional[dict[str, str]] = None) -> None:
    """One row-normalised confusion matrix per evaluation set of ``run`` (counts in the cells of small ones), as a PNG."""
    import numpy as np

    set_names = set_names or {}
    files = _evaluation_sets([run])
    labels = list(run["evaluations"][files[0]]["per_class_f1"])
    matrices = [np.asarray(_confusion_matrix(run, name, len(labels))) for name in files]
    annotated = len(labels) <= MAX_ANNOTATED_CLASSES
    side = 4.6 if annotated else 2.0 + 0.24 * len(labels)
    figure, axes = pyplot().subplots(1, len(files), figsize=((side + 0.6) * len(files), side), squeeze=False)
    for axis, name, counts in zip(axes[0], files, matrices):
        # Row-normalised: on skewed data raw counts would show only the largest class's row.
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for i, j in np.ndindex(*counts.shape) if annotated else ():
            axis.text(j, i, f"{counts[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=8,
                      color="white" if shares[i, j] > 0.5 else "black")
        ticks = range(len(labels))
        axis.set_xticks(ticks, labels, rotation=0 if annotated else 90, fontsize=8)
        axis.set_yticks(ticks, labels, fontsize=8)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        metrics = run["evaluations"][name]
        axis.set_title(
            f"{set_names.get(name, name)}\nacc {100 * metrics['accuracy']:.1f}, macro-F1 {100 * metrics['macro_f1']:.1f}",
            fontsize=10,
        )
    figure.suptitle(f"{run['run']} (best by dev macro-F1): rows are true labels", fontsize=11)
    figure.tight_layout()
    save_png(figure, output_path)


# Dev scores shown as they are; every other one is a fraction (an accuracy, an F1), shown in %.
_PLAIN_SCORES = {"loss": "{:.4f}", "perplexity": "{:.1f}"}


def _score_cell(key: str, value: float) -> str:
    return _PLAIN_SCORES[key].format(value) if key in _PLAIN_SCORES else f"{100 * value:.2f}"


def _dev_history(state_path: str) -> list[dict]:
    """The dev records of a run's ``trainer_state.json`` (its ``last/``, or a kept copy), checked."""
    try:
        progress = json.loads(Path(state_path).read_text(encoding="utf-8"))["progress"]
        history = progress["history"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{state_path}: not a run's trainer_state.json with progress.history ({type(error).__name__}: "
                        f"{error}); expected OUTPUT_DIR/last/trainer_state.json or a kept copy") from None  # fmt: skip
    fields = ("epoch", "step", "train_seconds")
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) and set(fields) <= set(r) for r in history):
        raise UserError(f"{state_path}: progress.history holds no dev records with {', '.join(fields)}; expected a run "
                        "that evaluated on dev (trained by this version)")  # fmt: skip
    return history


def dev_history_markdown(state_path: str) -> str:
    """A run's dev evaluations, one row each: step, epoch, minutes of training so far, the task's dev scores."""
    history = _dev_history(state_path)
    scores = [key for key in history[0] if key not in ("epoch", "step", "train_seconds")]
    header = ["Step", "Epoch", "Minutes of training"] + [key if key in _PLAIN_SCORES else f"{key} (%)" for key in scores]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for record in history:
        cells = [str(record["step"]), f"{record['epoch']:g}", f"{record['train_seconds'] / 60:.1f}"]
        cells += [_score_cell(key, record[key]) for key in scores]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_block(markdown_path: str, text: str, block: str = "results") -> None:
    """Put ``text`` between the file's ``<!-- block:begin -->`` and ``<!-- block:end -->`` lines, leaving the rest
    of the file as it is."""
    begin, end = f"<!-- {block}:begin -->", f"<!-- {block}:end -->"
    content = Path(markdown_path).read_text(encoding="utf-8")
    if content.count(begin) != 1 or content.count(end) != 1 or content.index(begin) > content.index(end):
        raise UserError(f"expected one '{begin}' line followed by one '{end}' line", markdown_path)
    head, rest = content.split(begin, 1)
    tail = rest.split(end, 1)[1]
    write_text_atomically(markdown_path, f"{head}{begin}\n{text}{end}{tail}")
