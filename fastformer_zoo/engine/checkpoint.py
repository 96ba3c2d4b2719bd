"""The run directory and the checkpoints in it: the one place that knows their layout.

A run directory (``Global.output_dir``) holds ``train.log``, ``last/`` (the latest state, from which an
interrupted run resumes), ``best/`` (the best model by dev macro-F1) and ``.lock`` (held by the run
that writes there). Each checkpoint is a complete ``from_pretrained`` directory: ``config.json`` with
the label names, ``model.safetensors``, the tokenizer (whose ``model_max_length`` is the truncation
length training used) and the resolved experiment config. ``last/`` also holds the training state:
``optimizer.safetensors`` (the optimizer's tensors) and ``trainer_state.json`` (progress, learning-rate
schedule, random-generator state (of every rank, in a data-parallel run), and fingerprints of the data and
vocabulary it was trained on).
Nothing here is a pickle, so no checkpoint can run code when it is loaded. Every checkpoint is
replaced so that a crash at any instant leaves a complete one (:mod:`paddlenlp_fastformer.file_utils`).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import paddle
import yaml

from paddlenlp_fastformer.configuration import FastformerConfig, FastformerConfigError
from paddlenlp_fastformer.file_utils import write_text_atomically
from paddlenlp_fastformer.modeling import FastformerForSequenceClassification
from paddlenlp_fastformer.serialization import (
    WEIGHT_FILES,
    CheckpointError,
    check_pretrained_dir,
    load_arrays,
    load_weights,
    save_arrays,
)
from paddlenlp_fastformer.tokenizer import FastformerTokenizer

from ..directories import recover_directory, write_directory_atomically
from ..errors import UserError, one_line
from ..settings import Config, config_to_dict, declared_default, save_config

__all__ = [
    "LAST",
    "BEST",
    "TRAINER_STATE",
    "OPTIMIZER_STATE",
    "RESOLVED_CONFIG",
    "TRAIN_LOG",
    "check_model_dir",
    "load_checkpoint",
    "save_checkpoint",
    "non_finite_weight",
    "truncation_length",
    "check_resumable",
    "save_training_state",
    "load_training_state",
    "rng_state",
    "file_fingerprint",
    "run_directory_lock",
    "recover_run_directory",
]

LAST, BEST = "last", "best"
TRAINER_STATE = "trainer_state.json"
OPTIMIZER_STATE = "optimizer.safetensors"
LEGACY_TRAINER_STATE = "trainer_state.pdparams"  # the pickled format of earlier versions, never loaded
RESOLVED_CONFIG = "train_config.yaml"
TRAIN_LOG = "train.log"
LOCK_FILE = ".lock"
VOCABULARY = "vocab.txt"
MODEL_FILES = ("config.json", VOCABULARY)
# Sections whose values must not change when a run resumes: they define the model and its data.
RESUME_INVARIANT_SECTIONS = ("Data", "Model", "Optimizer")
# ... except these, which change how a run is computed or evaluated, not what it learns.
RESUME_FREE_KEYS = {("Data", "eval_batch_size"), ("Data", "num_workers"), ("Data", "eval_file"), ("Model", "use_fused_ops")}
# Global settings that decide what is learnt (the seed orders the batches, init_from the starting weights, task
# the model) and so must not change either.
RESUME_INVARIANT_GLOBAL_KEYS = ("seed", "init_from", "task")


def check_model_dir(directory: Optional[str], key: str) -> Path:
    """``directory`` as a Path if it is a complete trained model directory, else a one-line error naming ``key``."""
    if not directory:
        raise UserError(f"{key} is not set: pass -o {key}=DIR (e.g. output/amazon/best)")
    path = Path(directory)
    if not path.is_dir():
        pending = [p.name for p in (path.with_name(f".{path.name}.new"), path.with_name(f".{path.name}.old")) if p.exists()]
        hint = f" ({', '.join(pending)} beside it: an interrupted save, which the next run there completes)" if pending else ""
        raise UserError(f"{key}={directory!r}: not a directory{hint}; expected a directory written by tools/train.py")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise UserError(
            f"{key}={directory!r}: missing {', '.join(missing)}; expected a directory written by tools/train.py "
            "(e.g. output/amazon/best)"
        )
    return path


def load_checkpoint(directory: Optional[str], key: str = "Global.checkpoint", model_class=FastformerForSequenceClassification):
    """Model (eval mode; a classifier unless ``model_class`` says otherwise) and tokenizer of a trained model
    directory; ``key`` names the setting in errors.

    Every weight must be there, fit the config and be finite; the vocabulary must fit the model.
    """
    path = check_model_dir(directory, key)
    _check_architecture(path, model_class, key, directory)
    try:
        model = model_class.from_pretrained(str(path))
        tokenizer = FastformerTokenizer.from_pretrained(str(path))
    except (CheckpointError, FastformerConfigError) as error:
        raise UserError(f"{key}={directory!r}: {error}") from None
    # PaddleNLP's own errors for a damaged directory (files of the wrong JSON type, wrong dtypes, ...).
    except (OSError, ValueError, KeyError, TypeError, AttributeError, AssertionError, RuntimeError) as error:
        raise UserError(f"{key}={directory!r}: cannot be loaded ({type(error).__name__}: {one_line(error)[:300]})") from None
    if model_class is FastformerForSequenceClassification:
        _check_labels(path / "config.json", model.config)
    length = tokenizer.model_max_length
    if type(length) is not int or length < 1:
        raise UserError(f"{path / 'tokenizer_config.json'}: 'model_max_length' is {length!r}; expected a positive integer")
    model.eval()
    return model, tokenizer


# What each trained model is, in the words of the settings that make it.
MODEL_KINDS = {
    "FastformerForSequenceClassification": "a classifier (Global.task=classification)",
    "FastformerForConditionalGeneration": "a text writer (Global.task=seq2seq)",
    "FastformerForMaskedLM": "a masked-LM pretraining output (tools/pretrain.py; start a task from it with Global.init_from)",
}


def _check_architecture(path: Path, model_class, key: str, directory) -> None:
    """A trained model is used as the model it was trained as. ``from_pretrained`` would start another head on its
    encoder (what fine-tuning wants), which here would evaluate or export a head of random weights. Checked before
    loading; a config.json that cannot be read is left to the loader, which says why."""
    try:
        saved = json.loads((path / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return
    if saved and model_class.__name__ not in saved:
        found = MODEL_KINDS.get(saved[0], saved[0])
        raise UserError(
            f"{key}={directory!r}: holds {found} ({path / 'config.json'}: architectures {saved}); this needs "
            f"{MODEL_KINDS.get(model_class.__name__, model_class.__name__)}"
        )


# The base model's pooler, which a masked-LM pretraining output does not have (its head reads every token).
OPTIONAL_PRETRAINED_PREFIX = "pooler."
# What a pretrained encoder and the model it starts must agree on (the weights' shapes follow from these).
ARCHITECTURE_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "attention_head_size", "intermediate_size",
    "hidden_act", "max_position_embeddings", "layer_norm_eps", "formulation", "position_embedding_type", "attention_type",
)  # fmt: skip


def initialise_encoder(model, directory: str, key: str = "Global.init_from") -> int:
    """Copy the embeddings and encoder of the from_pretrained ``directory`` (any Fastformer head: a masked-LM
    pretraining output or another task's classifier) into ``model``'s. The pooler comes along where the
    directory has one (a classifier's); the masked-LM head has none, and then it starts fresh with the
    classification head. Returns how many tensors were copied.

    Raises:
        UserError: the directory is incomplete or damaged, describes another architecture (naming the first
            key that differs), or lacks an encoder weight.
    """
    path = check_model_dir(directory, key)
    try:
        check_pretrained_dir(str(path))
        theirs = FastformerConfig.from_pretrained(str(path))
        arrays = load_weights(path)
    except (CheckpointError, FastformerConfigError) as error:
        raise UserError(f"{key}={directory!r}: {error}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{key}={directory!r}: cannot be loaded ({type(error).__name__}: {one_line(error)[:300]})") from None
    for name in ARCHITECTURE_KEYS:
        if getattr(theirs, name) != getattr(model.config, name):
            where = "the vocabulary" if name == "vocab_size" else f"Model.{name}"
            raise UserError(
                f"{key}={directory!r}: {name} is {getattr(theirs, name)!r} there but {getattr(model.config, name)!r} in "
                f"{where} here; expected the pretrained model's architecture"
            )
    prefix = model.base_model_prefix + "."
    found = {name[len(prefix):] if name.startswith(prefix) else name: array for name, array in arrays.items()}
    encoder = getattr(model, model.base_model_prefix)
    state = {}
    for name, parameter in encoder.state_dict().items():
        if name not in found:
            if name.startswith(OPTIONAL_PRETRAINED_PREFIX):
                continue
            raise UserError(f"{key}={directory!r}: holds no weight {prefix + name!r}; expected a Fastformer of the same architecture")
        if tuple(found[name].shape) != tuple(parameter.shape):
            raise UserError(f"{key}={directory!r}: {prefix + name} is {list(found[name].shape)} there, {list(parameter.shape)} here")
        state[name] = found[name]
    encoder.set_state_dict(state)
    return len(state)


def label_names(config) -> list:
    """The class names of a model configuration, in class-id order (None for a class without a name)."""
    return [config.id2label.get(index, config.id2label.get(str(index))) for index in range(config.num_labels)]


def _check_labels(path: Path, config) -> None:
    """One distinct name per class: predictions are reported, and scored, by name."""
    names = label_names(config)
    if None in names or len(set(names)) != len(names):
        raise UserError(f"{path}: 'id2label' must name each of the {config.num_labels} classes once; got {names}")


def truncation_length(model, tokenizer) -> int:
    """Where evaluation, export and prediction truncate: where training did.

    Training stores ``Data.max_seq_len`` as the tokenizer's ``model_max_length``; absolute positions
    end at ``max_position_embeddings`` in any case.
    """
    return min(tokenizer.model_max_length, model.config.max_position_embeddings)


def non_finite_weight(model) -> Optional[str]:
    """The name of the first weight of ``model`` holding NaN or inf, or None."""
    for name, parameter in model.named_parameters():
        if not bool(paddle.isfinite(parameter).all()):
            return name
    return None


def save_checkpoint(directory: Path, model, tokenizer, config: Config, extra=None) -> None:
    """Write a complete from_pretrained directory, replacing ``directory`` crash-safely.

    ``extra(staging_dir)`` writes whatever else belongs in it (the training state of ``last/``).
    Refuses a model with a non-finite weight: nothing non-finite is ever saved.
    """
    bad = non_finite_weight(model)
    if bad is not None:
        raise UserError(f"not saving {directory}: weight '{bad}' holds NaN or inf")

    def save(staging: str) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        save_config(config, os.path.join(staging, RESOLVED_CONFIG))
        if extra is not None:
            extra(staging)

    # Never through a link: the checkpoint belongs to the run directory, whatever a link there points to.
    write_directory_atomically(save, str(directory), overwrite=True, through_link=False)


# ----------------------------------------------------------------------------------------------
# the training state of last/
# ----------------------------------------------------------------------------------------------
def rng_state() -> list:
    """This process's paddle random-generator state, as JSON can hold it."""
    return [list(generator.__getstate__()) for generator in paddle.get_rng_state()]


def save_training_state(
    directory: str, optimizer, schedule, progress: dict, fingerprints: dict, rng_by_rank: Optional[list] = None
) -> None:
    """Write ``optimizer.safetensors`` and ``trainer_state.json`` into ``directory``.

    ``rng_by_rank``: every rank's :func:`rng_state`, in a data-parallel run. Each rank's generators have drawn
    their own amount (dropout over batches of other shapes), so each resumes from its own.
    """
    arrays, other = {}, {}
    for key, value in optimizer.state_dict().items():
        if isinstance(value, paddle.Tensor):
            arrays[key] = value.numpy()
        elif isinstance(value, dict) and value and all(isinstance(v, paddle.Tensor) for v in value.values()):
            arrays.update({f"{key}/{name}": tensor.numpy() for name, tensor in value.items()})
        else:
            other[key] = value
    save_arrays(arrays, os.path.join(directory, OPTIMIZER_STATE))
    state = {
        "format": 1,
        "progress": progress,
        "schedule": schedule.state_dict(),
        "optimizer": other,  # the optimizer state that is not a tensor (its schedule's counters)
        "rng": rng_state(),
        "fingerprints": fingerprints,
    }
    if rng_by_rank:
        state["rng_by_rank"] = rng_by_rank
    write_text_atomically(os.path.join(directory, TRAINER_STATE), json.dumps(state, indent=1) + "\n")


def load_training_state(last_dir: Path, rank: int = 0) -> dict:
    """The state :func:`save_training_state` wrote, checked and with the optimizer's tensors rebuilt; ``rng`` is
    the random-generator state of data-parallel rank ``rank`` where it was saved, else rank 0's.

    Every damage (a missing, truncated or hand-edited file, a non-finite optimizer value) is a one-line
    error naming the file; a pickled state of an earlier version is never loaded.
    """
    path = last_dir / TRAINER_STATE
    if not path.is_file() and (last_dir / LEGACY_TRAINER_STATE).is_file():
        raise UserError(
            f"{last_dir / LEGACY_TRAINER_STATE}: a pickled training state of an earlier version, which is never "
            "loaded (a pickle can run code); start a new run with -o Global.resume=False or another output_dir"
        )
    if not path.is_file():
        raise UserError(f"{path}: missing; {last_dir} holds no training state to resume from (-o Global.resume=False "
                        "starts over)")  # fmt: skip
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        _upgrade_state(state)
        _check_state_layout(state)
        generator_type = type(paddle.get_rng_state()[0])
        generators = []
        by_rank = state.get("rng_by_rank") or []
        for saved in by_rank[rank] if rank < len(by_rank) else state["rng"]:
            generator = generator_type.__new__(generator_type)
            generator.__setstate__(tuple(saved))
            generators.append(generator)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise UserError(f"{path}: not a readable training state ({type(error).__name__}: {one_line(error)})") from None
    return {**state, "optimizer": _load_optimizer_state(last_dir, state["optimizer"]), "rng": generators}


def _upgrade_state(state) -> None:
    """States of classification runs saved before pretraining existed call the best dev score best_macro_f1
    (-1 before any evaluation)."""
    progress = state.get("progress") if isinstance(state, dict) else None
    if isinstance(progress, dict) and "best_macro_f1" in progress and "best_score" not in progress:
        best = progress.pop("best_macro_f1")
        progress["best_score"] = None if best == -1.0 else best


def _check_state_layout(state) -> None:
    """Raise ValueError unless ``state`` has the fields and types :func:`save_training_state` writes."""
    expected = {"progress": dict, "schedule": dict, "optimizer": dict, "rng": list, "fingerprints": dict}
    if not isinstance(state, dict) or any(not isinstance(state.get(key), kind) for key, kind in expected.items()):
        raise ValueError(f"expected an object with {', '.join(f'{k} ({t.__name__})' for k, t in expected.items())}")
    progress = state["progress"]
    counters = ("epoch", "batches_done_in_epoch", "global_step")
    # loss_log (the curve's points) and train_seconds are absent from states saved before they existed.
    if set(progress) - {"loss_log", "train_seconds"} != {*counters, "best_score", "history"}:
        raise ValueError(f"progress has the fields {sorted(progress)}")
    if not isinstance(progress.get("loss_log", []), list):
        raise ValueError("progress.loss_log must be a list")
    seconds = progress.get("train_seconds", 0.0)
    if type(seconds) not in (int, float) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError("progress.train_seconds must be a finite number >= 0")
    if any(type(progress[key]) is not int or progress[key] < 0 for key in counters):
        raise ValueError("progress counters must be integers >= 0")
    best = progress["best_score"]
    if best is not None and (type(best) not in (int, float) or not math.isfinite(best)):
        raise ValueError("progress.best_score must be null or a finite number")
    if not isinstance(progress["history"], list):
        raise ValueError("progress.history must be a list")


def _load_optimizer_state(last_dir: Path, other: dict) -> dict:
    path = last_dir / OPTIMIZER_STATE
    try:
        arrays = load_arrays(path)
    except CheckpointError as error:
        raise UserError(str(error)) from None
    optimizer = dict(other)
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise UserError(f"{path}: '{key}' holds NaN or inf; the optimizer state is damaged")
        outer, _, inner = key.partition("/")
        tensor = paddle.to_tensor(value)
        if inner:
            optimizer.setdefault(outer, {})[inner] = tensor
        else:
            optimizer[outer] = tensor
    return optimizer


def file_fingerprint(path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_resumable(last_dir: Path, config: Config, saved_fingerprints: dict, fingerprints: dict) -> None:
    """Refuse to continue a run whose model, data, optimizer settings, data files or vocabulary have changed."""
    try:
        saved = yaml.safe_load((last_dir / RESOLVED_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise UserError(f"{last_dir / RESOLVED_CONFIG}: unreadable ({one_line(error)})") from None
    if not isinstance(saved, dict):
        raise UserError(f"{last_dir / RESOLVED_CONFIG}: expected a mapping of sections")
    current = config_to_dict(config)
    if not all(isinstance(saved.get(section, {}), dict) for section in saved):
        raise UserError(f"{last_dir / RESOLVED_CONFIG}: every section must be a mapping of keys to values")
    invariant = [(section, key) for section in RESUME_INVARIANT_SECTIONS for key in current[section]]
    invariant += [("Global", key) for key in RESUME_INVARIANT_GLOBAL_KEYS]
    for section, key in invariant:
        value = current[section][key]
        # A key the saved config lacks came after that run was made, which ran as its default does.
        before = (saved.get(section) or {}).get(key, declared_default(section, key))
        if (section, key) not in RESUME_FREE_KEYS and before != value:
            raise UserError(
                f"{last_dir} was trained with {section}.{key}={before!r}, now {value!r}: "
                "use another Global.output_dir, or -o Global.resume=False to start over there"
            )
    for name, digest in fingerprints.items():
        # A file the saved run did not fingerprint (one that version did not track) is not compared.
        if name in saved_fingerprints and saved_fingerprints[name] != digest:
            path = last_dir / name if name == VOCABULARY else name
            raise UserError(
                f"{path} is not the file {last_dir} was trained on (its content changed, e.g. re-prepared): "
                "resuming would mix two datasets; use another Global.output_dir, or -o Global.resume=False"
            )


# ----------------------------------------------------------------------------------------------
# the run directory
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def run_directory_lock(output_dir: Path) -> Iterator[None]:
    """Hold ``output_dir/.lock`` for the duration: a second run on the same directory gets a one-line error.

    The lock is the kernel's (flock): it ends with the process that held it, so a run that was killed
    leaves no stale lock behind. The lock file is never followed if it is a symbolic link.
    """
    path = output_dir / LOCK_FILE
    key = f"Global.output_dir={str(output_dir)!r}"
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"{key}: exists and is not a directory; expected a folder for the run")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{key}: cannot be created ({error.strerror}); expected a folder path this user can write") from None
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if not os.path.lexists(path):  # nothing in the way: the folder itself cannot be written
            raise UserError(f"{key}: cannot be written ({error.strerror}); expected a folder this user can write") from None
        raise UserError(f"{path}: cannot be used as the run's lock ({error.strerror}); expected a regular file") from None
    with os.fdopen(descriptor, "r+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock.read().strip() or "another process"
            raise UserError(
                f"{key} is in use by another training run ({holder}); wait for "
                "it to end, or choose another output_dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()}\n")
        lock.flush()
        yield


def recover_run_directory(output_dir: Path) -> list:
    """Finish or roll back an interrupted replacement of ``last/`` or ``best/``; what was done, for the log.

    First, before any training, refuses a ``last/`` or ``best/`` that is not a directory of the run's own: a file, or a symbolic link,
    whose target (outside the run directory, maybe another run's checkpoint) training would otherwise replace.
    """
    for name in (LAST, BEST):
        path = output_dir / name
        if path.is_symlink():
            raise UserError(
                f"{path}: is a symbolic link (to {os.readlink(path)}); expected the run's own checkpoint directory, "
                "which training replaces (never through a link): remove the link, or choose another Global.output_dir"
            )
        if os.path.lexists(path) and not path.is_dir():
            raise UserError(f"{path}: exists and is not a directory; expected a checkpoint of the run")
    done = []
    for name in (LAST, BEST):
        action = recover_directory(str(output_dir / name))
        if action:
            done.append(f"{output_dir / name}: {action}")
    return done
