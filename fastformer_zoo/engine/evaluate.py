"""Evaluation of a classifier on a prepared split: metrics, predictions in the examples' order."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import paddle
from tqdm import tqdm

from paddlenlp_fastformer.file_utils import write_text_atomically

from ..data.loader import ReviewDataset, make_dataloader
from ..data.prepare import dataset_files_beside
from ..data.readers import read_split
from ..directories import check_output_files
from ..errors import UserError
from ..scoring import classification_metrics
from ..settings import Config
from .checkpoint import label_names, load_checkpoint, truncation_length
from .runtime import is_main_process, set_cpu_threads

__all__ = ["evaluate", "eval_loader", "evaluate_checkpoint", "majority_baseline", "evaluation_file", "check_outputs"]


def eval_loader(dataset: ReviewDataset, config: Config):
    """Batches of ``Data.eval_batch_size`` (at most ``Data.max_batch_tokens``) in length order, every example once."""
    return make_dataloader(dataset, config.data.eval_batch_size, shuffle=False, num_workers=config.data.num_workers,
                           max_tokens=config.data.max_batch_tokens)


@paddle.no_grad()
def evaluate(model: paddle.nn.Layer, loader, desc: str = "eval") -> dict:
    """Accuracy, macro-F1 (scikit-learn's), per-class F1 and the confusion matrix (its most frequent confusions
    above :data:`~fastformer_zoo.scoring.DENSE_CONFUSION_MAX_CLASSES` classes), plus predictions."""
    model.eval()
    labels, probabilities = [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not is_main_process(), mininterval=5):
        logits = model(paddle.to_tensor(batch["input_ids"]), attention_mask=paddle.to_tensor(batch["attention_mask"]))
        probabilities.append(paddle.nn.functional.softmax(logits, axis=-1).numpy())
        labels.append(batch["labels"])
    # Evaluation batches come sorted by length; put the results back in the examples' order.
    order = np.argsort(np.concatenate([np.asarray(indices) for indices in loader.batch_sampler]), kind="stable")
    probabilities = np.concatenate(probabilities)[order]
    labels = np.concatenate(labels)[order]
    bad = int((~np.isfinite(probabilities).all(axis=-1)).sum())
    if bad:  # finite weights can still overflow to inf logits: such a model is never scored or served
        raise UserError(f"the model returned NaN or inf probabilities for {bad} of {len(labels)} texts; its weights are degenerate")
    predictions = probabilities.argmax(axis=-1)
    names = label_names(model.config)
    metrics = classification_metrics(labels, predictions, len(names), names)
    return {"metrics": metrics, "predictions": predictions, "probabilities": probabilities, "labels": labels}


def evaluate_checkpoint(config: Config, with_predictions: bool = False) -> dict:
    """Evaluate ``Global.checkpoint`` on ``Data.eval_file`` (or the test split); optionally save predictions.
    ``with_predictions`` adds ``"predictions"``: the predicted class id of each example, in the file's order.

    Texts are truncated where the checkpoint was trained to truncate (:func:`checkpoint.truncation_length`).
    """
    check_outputs(config)
    model, tokenizer = load_checkpoint(config.global_.checkpoint, "Global.checkpoint")
    set_cpu_threads(config.global_.num_threads)
    eval_path = evaluation_file(config)
    # Class ids as the model numbers them: a split whose label.txt orders the names otherwise is translated.
    names = label_names(model.config)
    examples = read_split(eval_path, names, "evaluation file")
    dataset = ReviewDataset(examples, tokenizer, truncation_length(model, tokenizer))
    result = evaluate(model, eval_loader(dataset, config), desc=Path(eval_path).name)
    if config.global_.predictions_file:
        _write_predictions(config.global_.predictions_file, examples, result, names)
    baseline = majority_baseline(config, names, result["labels"])
    predictions = {"predictions": result["predictions"].tolist()} if with_predictions else {}
    return {"file": eval_path, **result["metrics"], **({"majority_baseline": baseline} if baseline else {}), **predictions}


def majority_baseline(config: Config, names: list, labels) -> dict:
    """What always answering the training split's most frequent class scores on ``labels``: the figure a
    model of skewed data must beat. Empty where ``Data.data_dir`` holds no training split."""
    train_path = Path(config.data.data_dir) / config.data.train_file
    if not train_path.is_file():
        return {}
    counts = np.bincount([example["label"] for example in read_split(str(train_path), names, "training split")], minlength=len(names))
    majority = int(counts.argmax())
    metrics = classification_metrics(labels, np.full(len(labels), majority), len(names), names, confusion=False)
    return {"label": names[majority], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def evaluation_file(config: Config) -> str:
    """The split evaluation reads: ``Data.eval_file``, else the test split of ``Data.data_dir``."""
    return config.data.eval_file or str(Path(config.data.data_dir) / config.data.test_file)


def check_outputs(config: Config, outputs: Optional[dict] = None, inputs: Sequence[Tuple[str, str]] = ()) -> None:
    """Refuse, before any work, ``Global.predictions_file`` (and ``outputs``, e.g. a tool's metrics file, keyed by
    how the user named them) where it is a directory or would write over what an evaluation reads: the checkpoint,
    the evaluated and training splits, their label names, and ``inputs`` (e.g. the config file)."""
    eval_path = evaluation_file(config)
    train_path = Path(config.data.data_dir) / config.data.train_file
    read = [
        ("Global.checkpoint", config.global_.checkpoint),
        ("Data.eval_file" if config.data.eval_file else "the test split", eval_path),
        ("the training split", train_path),
        *(("the dataset file", path) for split in (eval_path, train_path) for path in dataset_files_beside(split)),
        *inputs,
    ]
    check_output_files({"Global.predictions_file": config.global_.predictions_file, **(outputs or {})}, read)


def _write_predictions(path: str, examples: list, result: dict, names: list) -> None:
    """One JSON line per example: its text, true and predicted label names, probabilities by name."""
    rows = (
        {
            "text": example["text"],
            "label": names[label],
            "prediction": names[prediction],
            "probabilities": {name: round(float(p), 6) for name, p in zip(names, probabilities)},
        }
        for example, label, prediction, probabilities in zip(
            examples, result["labels"], result["predictions"], result["probabilities"]
        )
    )
    write_text_atomically(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
