"""The run directory and the checkpoints in it: the one place that knows their layout.

A run directory (``Global.output_dir``) holds ``train.log``, ``last/`` (the latest state, from which an
interrupted run resumes) and ``best/`` (the best model by dev macro-F1). Each checkpoint is a
complete ``from_pretrained`` directory: ``config.json`` with the label names, the weights, the
tokenizer (whose ``model_max_length`` is the truncation length training used) and the resolved
experiment config; ``last/`` also holds the optimizer, schedule, random-generator and progress state.
Both are written in one atomic rename.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import paddle
import yaml

from ...file_utils import write_directory_atomically, write_text_atomically
from ...modeling import FastformerForSequenceClassification
from ...tokenizer import FastformerTokenizer
from ..errors import UserError
from ..settings import Config, config_to_dict, save_config

__all__ = [
    "LAST",
    "BEST",
    "TRAINER_STATE",
    "RESOLVED_CONFIG",
    "TRAIN_LOG",
    "check_model_dir",
    "load_checkpoint",
    "save_checkpoint",
    "truncation_length",
    "check_resumable",
]

LAST, BEST = "last", "best"
TRAINER_STATE = "trainer_state.pdparams"
RESOLVED_CONFIG = "train_config.yaml"
TRAIN_LOG = "train.log"
MODEL_FILES = ("config.json", "vocab.txt")
WEIGHT_FILES = ("model_state.pdparams", "model.safetensors")
# Sections whose values must not change when a run resumes: they define the model and its data.
RESUME_INVARIANT_SECTIONS = ("Data", "Model", "Optimizer")
# ... except these, which change how a run is computed or evaluated, not what it learns.
RESUME_FREE_KEYS = {("Data", "eval_batch_size"), ("Data", "num_workers"), ("Data", "eval_file"), ("Model", "use_fused_ops")}


def check_model_dir(directory: Optional[str], key: str) -> Path:
    """``directory`` as a Path if it is a complete trained model directory, else a one-line error naming ``key``."""
    if not directory:
        raise UserError(f"{key} is not set: pass -o {key}=DIR (e.g. output/amazon/best)")
    path = Path(directory)
    if not path.is_dir():
        raise UserError(f"{key}={directory!r}: not a directory; expected a directory written by tools/train.py")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise UserError(
            f"{key}={directory!r}: missing {', '.join(missing)}; expected a directory written by tools/train.py "
            "(e.g. output/amazon/best)"
        )
    return path


def load_checkpoint(directory: Optional[str], key: str = "Global.checkpoint"):
    """Classifier (eval mode) and tokenizer of a trained model directory; ``key`` names the setting in errors."""
    path = check_model_dir(directory, key)
    model = FastformerForSequenceClassification.from_pretrained(str(path))
    model.eval()
    return model, FastformerTokenizer.from_pretrained(str(path))


def truncation_length(model, tokenizer) -> int:
    """Where evaluation, export and prediction truncate: where training did.

    Training stores ``Data.max_seq_len`` as the tokenizer's ``model_max_length``; absolute positions
    end at ``max_position_embeddings`` in any case.
    """
    return min(tokenizer.model_max_length, model.config.max_position_embeddings)


def save_checkpoint(directory: Path, model, tokenizer, config: Config, extra_files: dict) -> None:
    """Write a complete from_pretrained directory (plus ``extra_files``: text, or objects paddle saves) atomically."""

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


def check_resumable(last_dir: Path, config: Config) -> None:
    """Refuse to continue a run whose model, data or optimizer settings have changed."""
    saved = yaml.safe_load((last_dir / RESOLVED_CONFIG).read_text(encoding="utf-8"))
    current = config_to_dict(config)
    for section in RESUME_INVARIANT_SECTIONS:
        for key, value in current[section].items():
            before = saved.get(section, {}).get(key)
            if (section, key) not in RESUME_FREE_KEYS and before != value:
                raise UserError(
                    f"{last_dir} was trained with {section}.{key}={before!r}, now {value!r}: "
                    "use another Global.output_dir, or -o Global.resume=False to start over there"
                )
