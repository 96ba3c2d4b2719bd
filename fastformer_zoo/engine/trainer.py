"""Training from a YAML config: text classifiers (``tools/train.py``) and masked-LM pretraining
(``tools/pretrain.py``), one loop for both; a :mod:`.tasks` object says what is trained.

A hand-written loop rather than PaddleNLP's Trainer, for what the Trainer does not give on this
stack: ``best/`` and ``last/`` as complete ``from_pretrained`` directories (model, config with label
names, tokenizer) written atomically; exact resume mid-epoch of a length-bucketed sampler; and CPU
data parallelism over gloo, on one machine or several, where rank 0 alone writes and a lost rank stops
the others with one line (see :mod:`.runtime`). Paddle and PaddleNLP supply the pieces: the DataLoader,
DataCollatorWithPadding, optimizers, PaddleNLP's warmup schedules, gradient clipping, the collectives;
metrics come from scikit-learn and progress bars from tqdm.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Union

import paddle
import paddle.distributed as dist
from paddlenlp.transformers import ConstScheduleWithWarmup, LinearDecayWithWarmup
from tqdm import tqdm

from paddlenlp_fastformer.file_utils import write_text_atomically
from paddlenlp_fastformer.kernels import fused_ops, library
from paddlenlp_fastformer.tokenizer import FastformerTokenizer

from ..errors import UserError, one_line
from ..settings import Config, config_to_dict
from . import checkpoint, runtime
from .monitor import TrainingMonitor
from .runtime import PeerLost, is_main_process, logging_to, seed_everything, set_cpu_threads
from .tasks import ClassificationTask, MaskedLMTask, Seq2SeqTask, task_for

__all__ = ["train", "Task"]

Task = Union[ClassificationTask, MaskedLMTask, Seq2SeqTask]

logger = logging.getLogger("fastformer_zoo")


@dataclass
class Progress:
    """Where a run is; saved with ``last/`` so that a resumed run continues exactly."""

    epoch: int = 0
    batches_done_in_epoch: int = 0
    global_step: int = 0
    best_score: Optional[float] = None  # the task's dev score (higher is better) of best/, None before one
    history: List[dict] = field(default_factory=list)
    loss_log: List[list] = field(default_factory=list)  # [step, loss] at each log interval, for the curve
    # Seconds spent training (batches, steps) over every session of the run; evaluation and saving left out.
    # Each dev record carries it, so that runs of different speeds compare by the time they took.
    train_seconds: float = 0.0


@dataclass
class _Run:
    """Everything one training run works with."""

    config: Config
    task: Task
    model: paddle.nn.Layer
    tokenizer: FastformerTokenizer
    loader: paddle.io.DataLoader
    dev_loader: Optional[paddle.io.DataLoader]
    optimizer: paddle.optimizer.Optimizer
    schedule: paddle.optimizer.lr.LRScheduler
    total_steps: int
    progress: Progress
    output_dir: Path
    data_fingerprints: dict  # of the data files as this run read them, saved with last/
    monitor: TrainingMonitor
    resumed_from: str = "none: a fresh start"  # the state of last/ it resumed from, which every rank must share

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader.batch_sampler)


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


def train(config: Config, on_step_end: Optional[Callable[[int, float], None]] = None, task: Optional[Task] = None) -> dict:
    """Train per ``config``; returns the final progress (history of dev metrics per evaluation, best dev score).

    ``task`` is what is trained (default: the one ``Global.task`` names, :func:`~.tasks.task_for`).
    ``on_step_end(global_step, loss)`` is called after every optimizer step (tests use it to interrupt).
    """
    task = task or task_for(config)
    # Optimizer state is keyed by parameter and accumulator names, which paddle numbers per process:
    # a fresh name scope gives a resumed run the names of the run that saved it, even in one process.
    with contextlib.ExitStack() as stack, paddle.utils.unique_name.guard():
        run = None
        try:
            # First, so that a rank that cannot start (a locked run directory, a missing file) can tell the others.
            runtime.join_ranks()
            _take_run_directory(stack, Path(config.global_.output_dir))
            run = runtime.start_together(lambda: _start_run(config, task), _run_facts, SAME_RUN)
            stack.callback(run.monitor.close)
            runtime.broadcast_parameters(run.model.parameters())
            while run.progress.epoch < config.global_.epochs and run.progress.global_step < run.total_steps:
                _train_epoch(run, on_step_end)
        except PeerLost as error:
            raise _lost_contact(config, run, error) from None
        return run.progress.__dict__


def _take_run_directory(stack: contextlib.ExitStack, output_dir: Path) -> None:
    """Rank 0 locks the run directory, logs into it and completes a save interrupted there; the other ranks,
    which read ``last/`` next, wait for that, and stop with rank 0 if it cannot."""
    failure = None
    if is_main_process():  # rank 0 alone writes and holds the run directory
        try:
            stack.enter_context(checkpoint.run_directory_lock(output_dir))
            stack.enter_context(logging_to(output_dir / checkpoint.TRAIN_LOG))
            for action in checkpoint.recover_run_directory(output_dir):
                logger.info("%s", action)
        except UserError as error:
            failure = error
    runtime.wait_for_main("take the run directory", failure)


# Settings a node may choose for itself: they change how fast it computes, not what.
PER_NODE_KEYS = {("Global", "num_threads"), ("Data", "num_workers")}
SAME_RUN = (
    "every node must run the same command and config (only Global.num_threads and Data.num_workers may differ), "
    "read the same data files and see the same Global.output_dir/last (put it on storage all nodes share)"
)


def _run_facts(run: _Run) -> dict:
    """What every rank of a data-parallel run must share: the settings, the data, the state it resumes from."""
    facts = {
        f"{section}.{key}": value
        for section, values in config_to_dict(run.config).items()
        for key, value in values.items()
        if (section, key) not in PER_NODE_KEYS
    }
    facts.update({f"sha256({path})": digest[:16] for path, digest in run.data_fingerprints.items()})
    facts["resume point"] = run.resumed_from
    return facts


def _lost_contact(config: Config, run: Optional[_Run], error: PeerLost) -> UserError:
    last_dir = Path(config.global_.output_dir) / checkpoint.LAST
    when = f"at step {run.progress.global_step}" if run is not None else "while starting"
    then = f"resumes from {last_dir}" if last_dir.is_dir() else "starts over"
    return UserError(
        f"rank {dist.get_rank()} of {dist.get_world_size()} lost contact with the other ranks {when} ({error}): "
        f"a process or node of the run ended or stopped answering, so this one stops too; run the same command on "
        f"every node again and training {then}"
    )


def _data_fingerprints(task: Task) -> dict:
    """SHA-256 of the data files the run learns from or selects its best model on, keyed by path."""
    # A missing file gets no fingerprint here: reading it, next, says what is wrong.
    return {str(path): checkpoint.file_fingerprint(path) for path in task.data_files() if path.is_file()}


def _start_run(config: Config, task: Task) -> _Run:
    """Read the data, then build (or restore from ``last/``) the tokenizer, model and optimizer."""
    world_size = dist.get_world_size()
    threads = set_cpu_threads(config.global_.num_threads)
    seed_everything(config.global_.seed)
    output_dir = Path(config.global_.output_dir)
    data_fingerprints = _data_fingerprints(task)  # before reading: what is saved must be what was read
    train_examples, dev_examples = task.read()
    last_dir = output_dir / checkpoint.LAST
    saved = _resumable_state(config, last_dir, data_fingerprints)
    init_from = None if saved else config.global_.init_from
    if saved:
        tokenizer = FastformerTokenizer.from_pretrained(str(last_dir))
    elif init_from:  # the pretrained embeddings index its vocabulary
        tokenizer = FastformerTokenizer.from_pretrained(str(checkpoint.check_model_dir(init_from, "Global.init_from")))
        # This run truncates where its own Data.max_seq_len says, and so must everything after it.
        tokenizer.model_max_length = config.data.max_seq_len
    else:
        tokenizer = _build_tokenizer(config, task.texts(train_examples))
    loader = task.train_loader(train_examples, tokenizer, world_size, dist.get_rank())
    total_steps = len(loader.batch_sampler) * config.global_.epochs
    if config.global_.max_steps > 0:
        total_steps = min(total_steps, config.global_.max_steps)
    if saved:
        model = checkpoint.load_checkpoint(str(last_dir), "last/", task.model_class)[0]
    else:
        model = task.build_model(dict(config.model, vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id), tokenizer)
    if init_from:
        copied = checkpoint.initialise_encoder(model, init_from)
        logger.info("started the embeddings and encoder (%d tensors) and the vocabulary from %s; the task head is new", copied, init_from)
    optimizer, schedule = _build_optimizer(config, model, total_steps)
    progress = _restore_state(last_dir, saved, optimizer, schedule, model) if saved else Progress()
    dev_loader = None
    if dev_examples:
        dev_loader = task.dev_loader(dev_examples, tokenizer)
    run = _Run(
        config, task, model, tokenizer, loader, dev_loader, optimizer, schedule, total_steps, progress,
        output_dir, data_fingerprints, TrainingMonitor(output_dir, config.global_.use_visualdl and is_main_process()),
    )  # fmt: skip
    if saved:
        state = checkpoint.file_fingerprint(last_dir / checkpoint.TRAINER_STATE)[:16]
        run.resumed_from = f"step {progress.global_step} of {last_dir} (trainer_state.json sha256 {state})"
    # Built (or loaded) now rather than inside the first step, whose time it would otherwise take.
    fused = fused_ops.wanted(model.config.use_fused_ops) and library.load() is not None
    logger.info(
        "training %s on %d texts (%s), %d steps/epoch x %d epochs, batch %d x %d process(es), %d CPU thread(s), %s",
        task.describe(), len(loader.dataset), config.data.data_dir, run.steps_per_epoch, config.global_.epochs,
        config.data.batch_size, world_size, threads, "fused CPU kernels" if fused else "pure-Paddle ops",
    )  # fmt: skip
    return run


def _build_tokenizer(config: Config, texts) -> FastformerTokenizer:
    """The vocabulary of the training texts; its ``model_max_length`` is where every later step truncates."""
    try:
        return FastformerTokenizer.build_from_corpus(
            texts,
            max_vocab_size=config.data.max_vocab_size,
            min_freq=config.data.min_freq,
            model_max_length=config.data.max_seq_len,
        )
    except ValueError as error:  # e.g. a max_vocab_size that leaves no room for a word
        raise UserError(f"Data.max_vocab_size={config.data.max_vocab_size}: {error}") from None


def _resumable_state(config: Config, last_dir: Path, data_fingerprints: dict) -> Optional[dict]:
    """The training state of ``last/`` if the run resumes from it (checked against the config and data)."""
    if not config.global_.resume or not last_dir.is_dir():
        return None
    saved = checkpoint.load_training_state(last_dir, dist.get_rank())
    vocabulary = last_dir / checkpoint.VOCABULARY
    if not vocabulary.is_file():
        raise UserError(f"{vocabulary}: missing; {last_dir} is incomplete (-o Global.resume=False starts over)")
    fingerprints = {**data_fingerprints, checkpoint.VOCABULARY: checkpoint.file_fingerprint(vocabulary)}
    checkpoint.check_resumable(last_dir, config, saved["fingerprints"], fingerprints)
    return saved


# The state Adam and AdamW keep per parameter (paddle names it "<parameter>_<name>_0").
ADAM_ACCUMULATORS = {"moment1": None, "moment2": None, "beta1_pow_acc": [1], "beta2_pow_acc": [1]}


def _check_optimizer_state(path: Path, model, state: dict) -> None:
    """Every accumulator of every parameter, of the right shape: paddle would only find out at the next step."""
    for parameter in model.parameters():
        for name, shape in ADAM_ACCUMULATORS.items():
            key = f"{parameter.name}_{name}_0"
            wanted = shape or list(parameter.shape)
            if key not in state or list(state[key].shape) != wanted:
                found = list(state[key].shape) if key in state else "missing"
                raise UserError(f"{path}: '{key}' is {found}, expected shape {wanted}; the optimizer state does not fit this model")


def _restore_state(last_dir: Path, saved: dict, optimizer, schedule, model) -> Progress:
    _check_optimizer_state(last_dir / checkpoint.OPTIMIZER_STATE, model, saved["optimizer"])
    try:
        optimizer.set_state_dict(saved["optimizer"])
        schedule.set_state_dict(saved["schedule"])
        paddle.set_rng_state(saved["rng"])
    except (AssertionError, KeyError, TypeError, ValueError, RuntimeError) as error:  # a state of another model
        files = f"{last_dir / checkpoint.OPTIMIZER_STATE} / {last_dir / checkpoint.TRAINER_STATE}"
        raise UserError(f"{files}: does not fit this model and optimizer ({type(error).__name__}: {one_line(error)})") from None
    progress = Progress(**saved["progress"])
    logger.info("resumed from %s at epoch %d, step %d", last_dir, progress.epoch + 1, progress.global_step)
    return progress


def _likely_causes(config: Config) -> str:
    """What most likely made a run diverge, from its settings."""
    causes = f"from too large a learning rate (Optimizer.lr={config.optimizer.lr:g})"
    if config.optimizer.grad_clip == 0:
        causes += " without gradient clipping (Optimizer.grad_clip=0)"
    if config.model["initializer_range"] > 1:
        causes += f" or too large initial weights (Model.initializer_range={config.model['initializer_range']:g})"
    return causes


def _check_weights_finite(run: _Run, directory: Path) -> None:
    """Refuse to save a model whose weights became NaN or inf, saying why that most likely happened."""
    bad = checkpoint.non_finite_weight(run.model)
    if bad is not None:
        raise UserError(
            f"weight '{bad}' became NaN or inf by step {run.progress.global_step}: training diverged, most likely "
            f"{_likely_causes(run.config)}; {directory} was not written"
        )


def _save_last(run: _Run) -> None:
    """Rank 0 writes ``last/``; every rank calls this together (a collective), for its random state goes in too."""
    rng_by_rank = runtime.gather(checkpoint.rng_state()) if dist.get_world_size() > 1 else None
    if not is_main_process():
        return
    last_dir = run.output_dir / checkpoint.LAST
    _check_weights_finite(run, last_dir)

    def save_state(staging: str) -> None:
        vocab = os.path.join(staging, checkpoint.VOCABULARY)
        fingerprints = {**run.data_fingerprints, checkpoint.VOCABULARY: checkpoint.file_fingerprint(vocab)}
        progress = run.progress.__dict__
        checkpoint.save_training_state(staging, run.optimizer, run.schedule, progress, fingerprints, rng_by_rank)

    checkpoint.save_checkpoint(last_dir, run.model, run.tokenizer, run.config, save_state)


def _train_epoch(run: _Run, on_step_end: Optional[Callable[[int, float], None]]) -> None:
    """Train from where the epoch stands to its end (or to the step limit), then evaluate and save."""
    config, progress = run.config, run.progress
    run.loader.batch_sampler.set_epoch(progress.epoch)
    if hasattr(run.loader, "masking"):
        run.loader.masking.set_epoch(progress.epoch)
    run.model.train()
    bar = tqdm(
        itertools.islice(iter(run.loader), progress.batches_done_in_epoch, None),
        total=run.steps_per_epoch,
        initial=progress.batches_done_in_epoch,
        desc=f"epoch {progress.epoch + 1}/{config.global_.epochs}",
        disable=not is_main_process(),
        mininterval=10,
    )
    throughput = _Throughput()
    started = time.perf_counter()
    for batch in bar:
        loss_value = _train_step(run, batch)
        throughput.add(int(batch["attention_mask"].sum()) * dist.get_world_size())
        if progress.global_step % config.global_.log_interval == 0 or progress.global_step == 1:
            _log_step(run, bar, loss_value, throughput.tokens_per_second())
        if on_step_end is not None:
            on_step_end(progress.global_step, loss_value)
        if progress.global_step >= run.total_steps and progress.batches_done_in_epoch < run.steps_per_epoch:
            break  # the step limit, mid-epoch (at an epoch's end the loop ends by itself, and the bar reads full)
        evaluate = _every(config.global_.eval_steps, progress.global_step)
        # The epoch's end evaluates and saves below.
        if (evaluate or _every(config.global_.save_steps, progress.global_step)) and progress.batches_done_in_epoch < run.steps_per_epoch:
            progress.train_seconds += time.perf_counter() - started
            _evaluate_and_save(run, evaluate, draw=evaluate)
            run.model.train()
            throughput, started = _Throughput(), time.perf_counter()
    progress.train_seconds += time.perf_counter() - started
    bar.close()
    epoch_done = progress.batches_done_in_epoch >= run.steps_per_epoch
    if epoch_done:
        progress.epoch += 1
        progress.batches_done_in_epoch = 0
    _evaluate_and_save(run, epoch_done or progress.global_step >= run.total_steps, draw=True)


def _every(interval: int, step: int) -> bool:
    return interval > 0 and step % interval == 0


def _evaluate_and_save(run: _Run, evaluate: bool, draw: bool) -> None:
    """Evaluate on dev if asked (keeping best/), save last/ and redraw the curves if asked; every rank calls this."""
    if evaluate and run.dev_loader is not None and is_main_process():
        _evaluate_and_keep_best(run)
    # Before _save_last's collective: the others would otherwise wait in it while rank 0 evaluates.
    runtime.wait_for_main("evaluate")
    _save_last(run)
    if draw and is_main_process():
        title = f"{run.output_dir.name}: {run.config.data.data_dir}"
        run.monitor.draw(run.progress.loss_log, run.progress.history, run.task.curve, title=title)
    runtime.wait_for_main(f"save {run.output_dir / checkpoint.LAST}")


def _train_step(run: _Run, batch: dict) -> float:
    """One optimizer step; returns the loss, refusing a non-finite one."""
    loss = run.task.loss(run.model, batch)
    loss_value = float(loss)
    progress = run.progress
    if not math.isfinite(loss_value):
        raise UserError(
            f"loss is {loss_value} at epoch {progress.epoch + 1}, step {progress.global_step + 1}: training diverged, "
            f"most likely {_likely_causes(run.config)}; checkpoints already written are kept as they were"
        )
    loss.backward()
    runtime.average_gradients(run.model.parameters())
    run.optimizer.step()
    run.schedule.step()
    run.optimizer.clear_grad()
    progress.global_step += 1
    progress.batches_done_in_epoch += 1
    return loss_value


class _Throughput:
    """Real (unpadded) tokens per second since the start of an epoch's part."""

    def __init__(self):
        self.tokens, self.started = 0, time.time()

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def tokens_per_second(self) -> float:
        return self.tokens / max(time.time() - self.started, 1e-9)


def _log_step(run: _Run, bar, loss_value: float, tokens_per_second: float) -> None:
    learning_rate = run.optimizer.get_lr()
    run.progress.loss_log.append([run.progress.global_step, round(loss_value, 5)])
    run.monitor.log_step(run.progress.global_step, loss_value, learning_rate, tokens_per_second)
    bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{learning_rate:.2e}", tok_s=f"{tokens_per_second:.0f}")
    logger.info(
        "epoch %d step %d/%d loss %.4f lr %.3e %.0f tokens/s",
        run.progress.epoch + 1, run.progress.global_step, run.total_steps, loss_value, learning_rate, tokens_per_second,
    )  # fmt: skip


def _evaluate_and_keep_best(run: _Run) -> None:
    progress = run.progress
    result = run.task.evaluate(run.model, run.dev_loader)
    metrics, score = result["metrics"], result["metrics"][run.task.score_key]
    # Between epochs' ends (Global.eval_steps) the epoch is a fraction: 1.5 is half way through the second.
    # Rounded down, so that no record within an epoch reads as its end.
    fraction = math.floor(1000 * progress.batches_done_in_epoch / run.steps_per_epoch) / 1000
    epoch = progress.epoch + fraction if progress.batches_done_in_epoch else progress.epoch
    progress.history.append(
        {"epoch": epoch, "step": progress.global_step, "train_seconds": round(progress.train_seconds, 3), **result["record"]}
    )
    shown = " ".join(f"{name} {value:.4f}" for name, value in result["record"].items())
    logger.info("dev after step %d: %s", progress.global_step, shown)
    run.monitor.log_dev(progress.global_step, result["record"])
    if progress.best_score is None or score > progress.best_score:
        progress.best_score = score
        best_dir = run.output_dir / checkpoint.BEST
        _check_weights_finite(run, best_dir)
        metrics_text = json.dumps(metrics, indent=2)
        checkpoint.save_checkpoint(
            best_dir, run.model, run.tokenizer, run.config,
            lambda staging: write_text_atomically(os.path.join(staging, "dev_metrics.json"), metrics_text),
        )  # fmt: skip
        logger.info("new best dev score (%s): saved %s", shown, best_dir)
