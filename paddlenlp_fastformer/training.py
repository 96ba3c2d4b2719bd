"""Training and evaluation of review-rating classifiers from a YAML config.

A hand-written loop rather than PaddleNLP's Trainer, for what the Trainer does not give on this
stack: ``best/`` and ``last/`` as complete ``from_pretrained`` directories (model, config with label
names, tokenizer) written atomically; exact resume mid-epoch of a length-bucketed sampler; and CPU
data parallelism over gloo where rank 0 alone writes. Paddle and PaddleNLP supply the pieces: the
DataLoader, DataCollatorWithPadding, optimizers, PaddleNLP's warmup schedules, gradient clipping,
DataParallel; metrics come from scikit-learn and progress bars from tqdm.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist
import yaml
from paddlenlp.transformers import ConstScheduleWithWarmup, LinearDecayWithWarmup
from tqdm import tqdm

from .config import Config, ConfigError, config_to_dict, model_config_kwargs, save_config
from .configuration import FastformerConfig
from .data import LABEL_NAMES, DataError, ReviewDataset, make_dataloader, read_prepared
from .file_utils import write_directory_atomically, write_text_atomically
from .metrics import classification_metrics
from .modeling import FastformerForSequenceClassification
from .tokenizer import FastformerTokenizer

__all__ = ["TrainingError", "train", "evaluate", "evaluate_checkpoint", "load_checkpoint", "set_cpu_threads"]

logger = logging.getLogger("paddlenlp_fastformer")

TRAINER_STATE = "trainer_state.pdparams"
RESOLVED_CONFIG = "train_config.yaml"
# Sections whose values must not change when a run resumes: they define the model and its data.
RESUME_INVARIANT_SECTIONS = ("Data", "Model", "Optimizer")
RESUME_FREE_KEYS = {("Data", "eval_batch_size"), ("Data", "num_workers"), ("Data", "eval_file")}


class TrainingError(RuntimeError):
    """A run that cannot go on (non-finite loss, incompatible checkpoint), said in one line."""


@dataclass
class Progress:
    """Where a run is; saved with ``last/`` so that a resumed run continues exactly."""

    epoch: int = 0
    batches_done_in_epoch: int = 0
    global_step: int = 0
    best_macro_f1: float = -1.0
    history: List[dict] = field(default_factory=list)


def set_cpu_threads(num_threads: int) -> int:
    """Paddle's CPU math runs on one thread unless told; 0 means all cores shared among ranks."""
    if num_threads == 0:
        num_threads = max(1, (os.cpu_count() or 1) // max(1, dist.get_world_size()))
    paddle.base.core.set_num_threads(num_threads)
    return num_threads


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def _is_main_process() -> bool:
    return dist.get_rank() == 0


def _data_path(config: Config, name: str) -> Path:
    return Path(config.data.data_dir) / name


def _read_split(config: Config, name: str):
    path = _data_path(config, name)
    if not path.is_file():
        raise DataError(f"{path}: not found (Data.data_dir={config.data.data_dir!r}; run tools/prepare_data.py first)")
    examples = read_prepared(path)
    if not examples:
        raise DataError(f"{path}: holds no examples")
    return examples


def build_model(config: Config, tokenizer: FastformerTokenizer) -> FastformerForSequenceClassification:
    """The classifier described by the ``Model`` section, sized to the tokenizer's vocabulary."""
    try:
        model_config = FastformerConfig(
            vocab_size=tokenizer.vocab_size,
            pad_token_id=tokenizer.pad_token_id,
            num_labels=len(LABEL_NAMES),
            id2label=dict(enumerate(LABEL_NAMES)),
            label2id={name: index for index, name in enumerate(LABEL_NAMES)},
            attention_type="softmax" if config.model.architecture == "transformer" else "additive",
            **model_config_kwargs(config.model),
        )
    except ValueError as error:
        raise ConfigError(f"Model section: {error}") from None
    return FastformerForSequenceClassification(model_config)


def _build_optimizer(config: Config, model: paddle.nn.Layer, total_steps: int):
    settings = config.optimizer
    if settings.scheduler == "linear":
        schedule = LinearDecayWithWarmup(settings.lr, total_steps, settings.warmup_steps)
    else:
        schedule = ConstScheduleWithWarmup(settings.lr, settings.warmup_steps)
    optimizer_class = paddle.optimizer.AdamW if settings.name == "adamw" else paddle.optimizer.Adam
    optimizer = optimizer_class(
        learning_rate=schedule,
        parameters=model.parameters(),
        beta1=settings.beta1,
        beta2=settings.beta2,
        epsilon=settings.epsilon,
        weight_decay=settings.weight_decay or None,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(settings.grad_clip) if settings.grad_clip > 0 else None,
    )
    return optimizer, schedule


@paddle.no_grad()
def evaluate(model: paddle.nn.Layer, loader, desc: str = "eval") -> dict:
    """Accuracy, macro-F1 (scikit-learn's), per-class F1 and the confusion matrix, plus predictions."""
    model.eval()
    labels, predictions, probabilities = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not _is_main_process(), mininterval=5):
        logits = model(paddle.to_tensor(batch["input_ids"]), attention_mask=paddle.to_tensor(batch["attention_mask"]))
        probabilities.append(paddle.nn.functional.softmax(logits, axis=-1).numpy())
        labels.append(batch["labels"])
    # Evaluation batches come sorted by length; put the results back in the examples' order.
    order = np.argsort(np.concatenate([np.asarray(indices) for indices in loader.batch_sampler]), kind="stable")
    probabilities = np.concatenate(probabilities)[order]
    labels = np.concatenate(labels)[order]
    predictions = probabilities.argmax(axis=-1)
    metrics = classification_metrics(labels, predictions, len(LABEL_NAMES), list(LABEL_NAMES))
    return {"metrics": metrics, "predictions": predictions, "probabilities": probabilities, "labels": labels}


def _eval_loader(dataset: ReviewDataset, config: Config):
    return make_dataloader(dataset, config.data.eval_batch_size, shuffle=False, num_workers=config.data.num_workers)


def _save_checkpoint(directory: Path, model, tokenizer, config: Config, extra_files: dict) -> None:
    """Write a complete from_pretrained directory (plus ``extra_files``) in one atomic rename."""

    def save(staging: str) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        save_config(config, os.path.join(staging, RESOLVED_CONFIG))
        for name, content in extra_files.items():
            if isinstance(content, str):
                write_text_atomically(os.path.join(staging, name), content)
            else:
                paddle.save(content, os.path.join(staging, name))

    write_directory_atomically(save, str(directory), overwrite=True)


def _check_resumable(last_dir: Path, config: Config) -> None:
    """Refuse to continue a run whose model, data or optimizer settings have changed."""
    saved = yaml.safe_load((last_dir / RESOLVED_CONFIG).read_text(encoding="utf-8"))
    current = config_to_dict(config)
    for section in RESUME_INVARIANT_SECTIONS:
        for key, value in current[section].items():
            if (section, key) not in RESUME_FREE_KEYS and saved.get(section, {}).get(key) != value:
                raise TrainingError(
                    f"{last_dir} was trained with {section}.{key}={saved.get(section, {}).get(key)!r}, now {value!r}: "
                    "use another Global.output_dir, or -o Global.resume=False to start over there"
                )


def load_checkpoint(directory: str):
    """Model (eval mode) and tokenizer of a from_pretrained directory, with a one-line error if incomplete."""
    path = Path(directory)
    missing = [name for name in ("config.json", "vocab.txt") if not (path / name).is_file()]
    if not any((path / name).is_file() for name in ("model_state.pdparams", "model.safetensors")):
        missing.append("model_state.pdparams (or model.safetensors)")
    if not path.is_dir() or missing:
        what = "not a directory" if not path.is_dir() else f"missing {', '.join(missing)}"
        raise ConfigError(f"Global.checkpoint={directory!r}: {what}; expected a directory written by tools/train.py")
    model = FastformerForSequenceClassification.from_pretrained(str(path))
    model.eval()
    return model, FastformerTokenizer.from_pretrained(str(path))


def train(config: Config, on_step_end: Optional[Callable[[int, float], None]] = None) -> dict:
    """Train per ``config``; returns the final progress (history of per-epoch dev metrics, best macro-F1).

    ``on_step_end(global_step, loss)`` is called after every optimizer step (tests use it to interrupt).
    """
    # Optimizer state is keyed by parameter and accumulator names, which paddle numbers per process:
    # a fresh name scope gives a resumed run the names of the run that saved it, even in one process.
    with paddle.utils.unique_name.guard():
        return _train(config, on_step_end)


def _train(config: Config, on_step_end: Optional[Callable[[int, float], None]]) -> dict:
    world_size = dist.get_world_size()
    if world_size > 1:
        dist.init_parallel_env()
    threads = set_cpu_threads(config.global_.num_threads)
    seed_everything(config.global_.seed)
    output_dir = Path(config.global_.output_dir)
    last_dir, best_dir = output_dir / "last", output_dir / "best"
    if _is_main_process():
        output_dir.mkdir(parents=True, exist_ok=True)
        _log_to_file(output_dir / "train.log")

    train_examples = _read_split(config, config.data.train_file)
    dev_examples = _read_split(config, config.data.dev_file) if config.global_.eval_every_epoch else None
    resuming = config.global_.resume and (last_dir / TRAINER_STATE).is_file()
    if resuming:
        _check_resumable(last_dir, config)
        tokenizer = FastformerTokenizer.from_pretrained(str(last_dir))
    else:
        tokenizer = FastformerTokenizer.build_from_corpus(
            (example["text"] for example in train_examples),
            max_vocab_size=config.data.max_vocab_size,
            min_freq=config.data.min_freq,
            model_max_length=config.data.max_seq_len,
        )

    train_set = ReviewDataset(train_examples, tokenizer, config.data.max_seq_len)
    loader = make_dataloader(
        train_set,
        config.data.batch_size,
        shuffle=True,
        seed=config.global_.seed,
        num_replicas=world_size,
        rank=dist.get_rank(),
        num_workers=config.data.num_workers,
    )
    steps_per_epoch = len(loader.batch_sampler)
    total_steps = steps_per_epoch * config.global_.epochs
    if config.global_.max_steps > 0:
        total_steps = min(total_steps, config.global_.max_steps)
    model = FastformerForSequenceClassification.from_pretrained(str(last_dir)) if resuming else build_model(config, tokenizer)
    optimizer, schedule = _build_optimizer(config, model, total_steps)
    progress = Progress()
    if resuming:
        state = paddle.load(str(last_dir / TRAINER_STATE))
        optimizer.set_state_dict(state["optimizer"])
        schedule.set_state_dict(state["schedule"])
        paddle.set_rng_state(state["rng"])
        progress = Progress(**json.loads(state["progress"]))
        logger.info("resumed from %s at epoch %d, step %d", last_dir, progress.epoch + 1, progress.global_step)
    dev_loader = _eval_loader(ReviewDataset(dev_examples, tokenizer, config.data.max_seq_len), config) if dev_examples else None
    trained_model = paddle.DataParallel(model) if world_size > 1 else model

    logger.info(
        "training on %d examples (%s), %d steps/epoch x %d epochs, batch %d x %d process(es), %d CPU thread(s)",
        len(train_set),
        config.data.data_dir,
        steps_per_epoch,
        config.global_.epochs,
        config.data.batch_size,
        world_size,
        threads,
    )

    def save_last() -> None:
        if _is_main_process():
            state = {
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": paddle.get_rng_state(),
                "progress": json.dumps(progress.__dict__),
            }
            _save_checkpoint(last_dir, model, tokenizer, config, {TRAINER_STATE: state})

    while progress.epoch < config.global_.epochs and progress.global_step < total_steps:
        loader.batch_sampler.set_epoch(progress.epoch)
        trained_model.train()
        batches = itertools.islice(iter(loader), progress.batches_done_in_epoch, None)
        bar = tqdm(
            batches,
            total=steps_per_epoch,
            initial=progress.batches_done_in_epoch,
            desc=f"epoch {progress.epoch + 1}/{config.global_.epochs}",
            disable=not _is_main_process(),
            mininterval=10,
        )
        tokens_seen, started = 0, time.time()
        for batch in bar:
            loss = trained_model(
                paddle.to_tensor(batch["input_ids"]),
                attention_mask=paddle.to_tensor(batch["attention_mask"]),
                labels=paddle.to_tensor(batch["labels"]),
            )[0]
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise TrainingError(
                    f"loss is {loss_value} at epoch {progress.epoch + 1}, step {progress.global_step + 1}: "
                    "lower Optimizer.lr or set Optimizer.grad_clip"
                )
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.clear_grad()
            progress.global_step += 1
            progress.batches_done_in_epoch += 1
            tokens_seen += int(batch["attention_mask"].sum()) * world_size
            if progress.global_step % config.global_.log_interval == 0 or progress.global_step == 1:
                throughput = tokens_seen / max(time.time() - started, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{optimizer.get_lr():.2e}", tok_s=f"{throughput:.0f}")
                logger.info(
                    "epoch %d step %d/%d loss %.4f lr %.3e %.0f tokens/s",
                    progress.epoch + 1,
                    progress.global_step,
                    total_steps,
                    loss_value,
                    optimizer.get_lr(),
                    throughput,
                )
            if on_step_end is not None:
                on_step_end(progress.global_step, loss_value)
            if progress.global_step >= total_steps:
                break
            if config.global_.save_steps and progress.global_step % config.global_.save_steps == 0:
                save_last()
        bar.close()
        epoch_done = progress.batches_done_in_epoch >= steps_per_epoch
        if epoch_done:
            progress.epoch += 1
            progress.batches_done_in_epoch = 0
        if dev_loader is not None and _is_main_process() and (epoch_done or progress.global_step >= total_steps):
            _evaluate_and_keep_best(model, tokenizer, config, dev_loader, progress, best_dir)
        save_last()
        if world_size > 1:
            dist.barrier()
    return progress.__dict__


def _evaluate_and_keep_best(model, tokenizer, config, dev_loader, progress: Progress, best_dir: Path) -> None:
    metrics = evaluate(model, dev_loader, desc="dev")["metrics"]
    record = {"epoch": progress.epoch, "step": progress.global_step, **{k: metrics[k] for k in ("accuracy", "macro_f1")}}
    progress.history.append(record)
    logger.info("dev after step %d: accuracy %.4f macro-F1 %.4f", progress.global_step, metrics["accuracy"], metrics["macro_f1"])
    if metrics["macro_f1"] > progress.best_macro_f1:
        progress.best_macro_f1 = metrics["macro_f1"]
        _save_checkpoint(best_dir, model, tokenizer, config, {"dev_metrics.json": json.dumps(metrics, indent=2)})
        logger.info("new best dev macro-F1 %.4f: saved %s", metrics["macro_f1"], best_dir)


def evaluate_checkpoint(config: Config) -> dict:
    """Evaluate ``Global.checkpoint`` on ``Data.eval_file`` (or the test split); optionally save predictions."""
    if not config.global_.checkpoint:
        raise ConfigError("Global.checkpoint is not set: pass -o Global.checkpoint=DIR (e.g. output/amazon/best)")
    set_cpu_threads(config.global_.num_threads)
    model, tokenizer = load_checkpoint(config.global_.checkpoint)
    eval_path = config.data.eval_file or str(_data_path(config, config.data.test_file))
    if not Path(eval_path).is_file():
        raise DataError(f"{eval_path}: evaluation file not found")
    examples = read_prepared(eval_path)
    if not examples:
        raise DataError(f"{eval_path}: holds no examples")
    dataset = ReviewDataset(examples, tokenizer, model.config.max_position_embeddings)
    result = evaluate(model, _eval_loader(dataset, config), desc=Path(eval_path).name)
    if config.global_.predictions_file:
        rows = (
            {
                "text": example["text"],
                "label": int(label),
                "prediction": int(prediction),
                "probabilities": [round(float(p), 6) for p in probabilities],
            }
            for example, label, prediction, probabilities in zip(
                examples, result["labels"], result["predictions"], result["probabilities"]
            )
        )
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        write_text_atomically(config.global_.predictions_file, text)
    return {"file": eval_path, **result["metrics"]}


def _log_to_file(path: Path) -> None:
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()) for h in logger.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
