"""Multi-seed experiments whose small text outputs are kept in the repository.

``tools/run_experiment.py`` trains one config for several seeds and evaluates each run's ``best/``
checkpoint on the config's test split and on any extra evaluation files. Per run it keeps, under
``RESULTS_DIR/<config name>_seed<seed>/``: the training log, the resolved config, ``metrics.json``
(command, threads, training seconds, dev history, every evaluation's full metrics) and, for a classifier,
``predictions.json`` (each evaluation file's predicted class ids, in the file's order, for paired comparisons
of two models on the same texts; no text or label of the data is kept). Checkpoints stay
in ``output/``; the kept directory is written in one rename once the run is complete, and a seed
whose kept directory exists is skipped, so an interrupted series is restarted with the same command
(an interrupted training run itself resumes from its ``last/`` checkpoint).

:mod:`fastformer_zoo.reporting` reads only those kept files and builds the Markdown results table, the
per-class F1 of the best run and its confusion-matrix picture.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

from paddlenlp_fastformer.file_utils import write_text_atomically

from ..data.labels import dataset_labels
from ..data.pairs import read_pairs
from ..data.readers import read_split
from ..directories import write_directory_atomically
from ..errors import UserError
from ..settings import Config, load_config, save_config
from .checkpoint import BEST, LAST, RESOLVED_CONFIG, TRAIN_LOG
from .runtime import logging_to

__all__ = ["run_seeds", "METRICS_FILE", "PREDICTIONS_FILE"]

logger = logging.getLogger("fastformer_zoo")

METRICS_FILE = "metrics.json"  # what fastformer_zoo.reporting reads of each kept run
PREDICTIONS_FILE = "predictions.json"  # a classifier's predicted class ids per evaluation file

SUMMARY_NUM_BEAMS = 4  # beam search for the kept ROUGE of a text writer, as summarization papers report


def _run_config(config_path: str, seed: int, overrides: Sequence[str], output_root: str) -> Config:
    run_name = f"{Path(config_path).stem}_seed{seed}"
    return load_config(
        config_path, [*overrides, f"Global.seed={seed}", f"Global.output_dir={Path(output_root) / run_name}"]
    )


def run_seeds(
    config_path: str,
    seeds: Iterable[int],
    overrides: Sequence[str] = (),
    eval_files: Sequence[str] = (),
    results_dir: str = "results",
    output_root: str = "output/experiments",
) -> list[Path]:
    """Train ``config_path`` once per seed, evaluate, and keep each run's logs and metrics; returns the kept dirs."""
    _check_eval_files(load_config(config_path, overrides), eval_files)
    if Path(results_dir).exists() and not Path(results_dir).is_dir():
        raise UserError(f"{results_dir}: exists and is not a directory; expected the folder of kept runs")
    kept_dirs = []
    for seed in seeds:
        config = _run_config(config_path, seed, overrides, output_root)
        run_dir = Path(config.global_.output_dir)
        kept = Path(results_dir) / run_dir.name
        kept_dirs.append(kept)
        if (kept / METRICS_FILE).is_file():
            logger.info("%s already holds a finished run: skipped", kept)
            continue
        # The run's log holds its training and, after it, its evaluations.
        with logging_to(run_dir / TRAIN_LOG):
            record = _train_and_evaluate(config, config_path, seed, overrides, output_root, eval_files)
        _keep_run(kept, run_dir, config, record)
        logger.info("kept %s (trained in %.0f s)", kept, record["train_seconds"])
    return kept_dirs


def _check_eval_files(config: Config, eval_files: Sequence[str]) -> None:
    """Before hours of training: each evaluation file must be one the model can be scored on (a pairs file for a
    text writer, a prepared split whose labels are known for a classifier)."""
    if config.global_.task == "seq2seq":
        for path in eval_files:
            read_pairs(path, "evaluation file")
        return
    labels = dataset_labels(config.data.data_dir)
    for path in eval_files:
        own = dataset_labels(Path(path).parent)
        if labels is None and own is None:
            raise UserError(f"{path}: no label.txt beside it or beside the training data; expected prepared datasets")
        read_split(path, labels or own, "evaluation file")


def _train_and_evaluate(config: Config, config_path: str, seed: int, overrides, output_root: str, eval_files) -> dict:
    """Train one seed's run (resuming it if it was interrupted), evaluate it, and return its record."""
    from .trainer import train  # imports paddle: only when runs are made

    resumed = (Path(config.global_.output_dir) / LAST).is_dir() and config.global_.resume
    started = time.perf_counter()
    progress = train(config)
    train_seconds = time.perf_counter() - started
    return {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "config_file": config_path,
        "model": "transformer" if config.is_transformer_baseline else "fastformer",
        "task": config.global_.task,
        "seed": seed,
        "cpu_threads": config.global_.num_threads or os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        # The run's training (every session, evaluation left out) where it recorded it; else this command's time.
        "train_seconds": round(progress.get("train_seconds") or train_seconds, 3),
        "resumed": resumed,
        "dev_history": progress["history"],
        # The dev score best/ was chosen by: macro-F1 for a classifier, minus the dev loss for a text writer.
        ("best_dev_macro_f1" if config.global_.task == "classification" else "best_dev_neg_loss"): progress["best_score"],
        "test_file": str(Path(config.data.data_dir) / config.data.test_file),
        "evaluations": _evaluate_run(config_path, seed, overrides, output_root, eval_files),
    }


def _split_predictions(record: dict) -> dict:
    """Take the predicted class ids out of ``record``'s evaluations: file -> ids as one space-separated string
    (one short line per file in the kept JSON, where a list would take a line per text)."""
    return {name: " ".join(map(str, metrics.pop("predictions"))) for name, metrics in record["evaluations"].items()
            if "predictions" in metrics}  # fmt: skip


def _evaluate_run(config_path: str, seed: int, overrides, output_root: str, eval_files) -> dict:
    """Metrics of the run's ``best/`` on its test split and on each of ``eval_files``, keyed by file: accuracy and
    macro-F1 of a classifier, ROUGE of a text writer's summaries (beam search, ``SUMMARY_NUM_BEAMS`` beams)."""
    from .evaluate import evaluate_checkpoint
    from .summaries import evaluate_summaries

    evaluations = {}
    run_dir = Path(_run_config(config_path, seed, overrides, output_root).global_.output_dir)
    for path in [None, *eval_files]:
        eval_overrides = [f"Global.checkpoint={run_dir / BEST}"] + ([f"Data.eval_file={path}"] if path else [])
        config = _run_config(config_path, seed, [*overrides, *eval_overrides], output_root)
        if config.global_.task == "seq2seq":
            metrics = evaluate_summaries(config, SUMMARY_NUM_BEAMS)
            logger.info("%s on %s: ROUGE-1 %.4f ROUGE-2 %.4f ROUGE-L %.4f", run_dir.name, metrics["file"], metrics["rouge1"], metrics["rouge2"], metrics["rougeL"])
        else:
            metrics = evaluate_checkpoint(config, with_predictions=True)
            logger.info("%s on %s: accuracy %.4f macro-F1 %.4f", run_dir.name, metrics["file"], metrics["accuracy"], metrics["macro_f1"])
        evaluations[metrics["file"]] = metrics
    return evaluations


def _keep_run(kept: Path, run_dir: Path, config: Config, record: dict) -> None:
    """Write the kept directory (log, resolved config, metrics) in one rename."""

    predictions = _split_predictions(record)

    def keep(staging: str) -> None:
        shutil.copyfile(run_dir / TRAIN_LOG, Path(staging) / TRAIN_LOG)
        save_config(config, Path(staging) / RESOLVED_CONFIG)
        write_text_atomically(Path(staging) / METRICS_FILE, json.dumps(record, indent=1) + "\n")
        if predictions:
            write_text_atomically(Path(staging) / PREDICTIONS_FILE, json.dumps(predictions, indent=1) + "\n")

    write_directory_atomically(keep, str(kept), overwrite=True)
