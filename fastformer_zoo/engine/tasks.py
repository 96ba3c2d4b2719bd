"""What the training loop trains: a task gives the data, model, loss and dev score of one kind of run.

:class:`ClassificationTask` (``tools/train.py``) learns a label set of a prepared dataset and keeps the
model of the best dev macro-F1; :class:`MaskedLMTask` (``tools/pretrain.py``) pretrains on a text corpus
and :class:`Seq2SeqTask` (``tools/train.py`` with ``Global.task=seq2seq``) learns to write a summary of
each text; both keep the model of the lowest dev loss. The loop in :mod:`.trainer` is the same for all.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import paddle
from paddlenlp.data import DataCollatorForSeq2Seq

from paddlenlp_fastformer.configuration import FastformerConfig
from paddlenlp_fastformer.modeling import (
    FastformerForConditionalGeneration,
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    token_cross_entropy,
)

from ..data.corpus import check_no_leak, read_corpus_split
from ..data.labels import LABEL_FILE, dataset_labels
from ..data.loader import PairDataset, ReviewDataset, TextDataset, make_dataloader
from ..data.masking import MaskingCollator
from ..data.pairs import read_pairs
from ..data.readers import read_split
from ..errors import UserError
from ..settings import Config
from .evaluate import eval_loader, evaluate

__all__ = ["ClassificationTask", "MaskedLMTask", "Seq2SeqTask", "task_for"]


class _FolderTask:
    """What every task shares: its config, and the training and dev files of ``Data.data_dir``."""

    def __init__(self, config: Config):
        self.config = config

    def path(self, name: str) -> Path:
        return Path(self.config.data.data_dir) / name

    def split_files(self) -> List[Path]:
        """The training split, and the dev split where the run evaluates each epoch."""
        names = [self.config.data.train_file] + ([self.config.data.dev_file] if self.config.global_.eval_every_epoch else [])
        return [self.path(name) for name in names]


class ClassificationTask(_FolderTask):
    """Text classification on a folder of ``tools/prepare_data.py``: cross-entropy, optionally class-weighted."""

    model_class = FastformerForSequenceClassification
    score_key = "macro_f1"  # the dev metric best/ is chosen by; higher is better
    curve = (("accuracy", "dev accuracy (%)"), ("macro_f1", "dev macro-F1 (%)"))

    def __init__(self, config: Config):
        super().__init__(config)
        self.labels: List[str] = []
        self.class_weights: Optional[paddle.Tensor] = None

    def describe(self) -> str:
        return f"a {len(self.labels)}-class classifier"

    def data_files(self) -> List[Path]:
        """The files the run learns from or selects its best model on (fingerprinted in ``last/``)."""
        return [self.path(LABEL_FILE)] + self.split_files()

    def read(self):
        """The training and dev examples (dev None without per-epoch evaluation)."""
        self.labels = self._label_set()
        train = read_split(self.path(self.config.data.train_file), self.labels, "training split")
        dev = read_split(self.path(self.config.data.dev_file), self.labels, "dev split") if self.config.global_.eval_every_epoch else None
        return train, dev

    @staticmethod
    def texts(examples) -> Sequence[str]:
        return [example["text"] for example in examples]

    def _label_set(self) -> List[str]:
        labels = dataset_labels(self.config.data.data_dir)
        if labels is None:
            raise UserError(f"{self.path(LABEL_FILE)}: missing; expected the label set of a folder written by tools/prepare_data.py")
        if len(labels) < 2:
            raise UserError(f"{self.path(LABEL_FILE)}: names a single label; a classifier needs at least two classes")
        return labels

    def build_model(self, model_config: dict, tokenizer=None) -> FastformerForSequenceClassification:
        names = self.labels
        return FastformerForSequenceClassification(FastformerConfig(
            num_labels=len(names), id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)}, **model_config,
        ))  # fmt: skip

    def train_loader(self, examples, tokenizer, num_replicas: int, rank: int):
        data = self.config.data
        loader = make_dataloader(
            ReviewDataset(examples, tokenizer, data.max_seq_len), data.batch_size, shuffle=True, seed=self.config.global_.seed,
            num_replicas=num_replicas, rank=rank, num_workers=data.num_workers, class_balanced=data.sampler == "class_balanced",
            max_tokens=data.max_batch_tokens,
        )  # fmt: skip
        self.class_weights = self._class_weights(loader.dataset.labels)
        return loader

    def dev_loader(self, examples, tokenizer):
        return eval_loader(ReviewDataset(examples, tokenizer, self.config.data.max_seq_len), self.config)

    def _class_weights(self, labels: List[int]) -> Optional[paddle.Tensor]:
        """``balanced`` loss weights, or None: n / (classes x count), scikit-learn's ``class_weight="balanced"``.

        ``classes`` counts those the training split holds; a class it lacks gets weight 0 (nothing to weigh).
        """
        if self.config.data.class_weights == "none":
            return None
        counts = np.bincount(labels, minlength=len(self.labels))
        present = int((counts > 0).sum())
        weights = [len(labels) / (present * count) if count else 0.0 for count in counts]
        return paddle.to_tensor(weights, dtype="float32")

    def loss(self, model, batch: dict) -> paddle.Tensor:
        logits = model(paddle.to_tensor(batch["input_ids"]), attention_mask=paddle.to_tensor(batch["attention_mask"]))
        # paddle's cross-entropy, which the model's own loss also is; here with the optional class weights.
        return paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(batch["labels"]), weight=self.class_weights)

    def evaluate(self, model, loader) -> dict:
        """Every dev metric (saved with best/) and the ones kept in the run's history."""
        metrics = evaluate(model, loader, desc="dev")["metrics"]
        return {"metrics": metrics, "record": {key: metrics[key] for key in ("accuracy", "macro_f1")}}


class MaskedLMTask(_FolderTask):
    """Masked-LM pretraining on a folder of ``tools/prepare_corpus.py``, refusing text of held-out splits."""

    model_class = FastformerForMaskedLM
    score_key = "neg_loss"  # minus the dev masked-LM loss: higher is better, as for every task's score
    curve = (("masked_accuracy", "dev masked-token accuracy (%)"),)

    def describe(self) -> str:
        return f"a masked language model ({self.config.data.mask_prob:.0%} of tokens masked)"

    def data_files(self) -> List[Path]:
        return self.split_files() + [Path(path) for path in self.config.data.held_out_files or ()]

    def read(self):
        if self.config.data.held_out_files is None:
            raise UserError(
                "Data.held_out_files is not set: list the dev and test splits of every later fine-tune, which the "
                "pretraining text must not hold (or [] to pretrain without that check)"
            )
        train_path, dev_path = self.path(self.config.data.train_file), self.path(self.config.data.dev_file)
        train = read_corpus_split(train_path, "pretraining text")
        dev = read_corpus_split(dev_path, "pretraining dev text") if self.config.global_.eval_every_epoch else None
        corpus = {str(train_path): train, **({str(dev_path): dev} if dev else {})}
        check_no_leak(corpus, self.config.data.held_out_files or ())
        return train, dev

    @staticmethod
    def texts(examples) -> Sequence[str]:
        return examples

    def build_model(self, model_config: dict, tokenizer=None) -> FastformerForMaskedLM:
        return FastformerForMaskedLM(FastformerConfig(**model_config))

    def _collator(self, tokenizer, stream: int) -> MaskingCollator:
        try:
            return MaskingCollator(tokenizer, self.config.data.mask_prob, self.config.global_.seed, stream)
        except ValueError as error:  # a vocabulary of an earlier version, from last/ or Global.init_from
            raise UserError(f"the vocabulary of this run: {error}") from None

    def train_loader(self, texts, tokenizer, num_replicas: int, rank: int):
        data = self.config.data
        collator = self._collator(tokenizer, stream=0)
        loader = make_dataloader(
            TextDataset(texts, tokenizer, data.max_seq_len), data.batch_size, shuffle=True, seed=self.config.global_.seed,
            num_replicas=num_replicas, rank=rank, num_workers=data.num_workers, collate_fn=collator,
            max_tokens=data.max_batch_tokens,
        )  # fmt: skip
        loader.masking = collator  # the trainer sets its epoch with the sampler's
        return loader

    def dev_loader(self, texts, tokenizer):
        data = self.config.data
        # Stream 1, epoch 0 always: every evaluation scores the same masked dev tokens.
        return make_dataloader(
            TextDataset(texts, tokenizer, data.max_seq_len), data.eval_batch_size, shuffle=False,
            num_workers=data.num_workers, collate_fn=self._collator(tokenizer, stream=1), max_tokens=data.max_batch_tokens,
        )  # fmt: skip

    @staticmethod
    def _masked_logits(model, batch: dict):
        """Vocabulary logits at the masked positions only, and their targets (through the model's forward, so that a
        data-parallel wrapper syncs its gradients)."""
        labels = paddle.to_tensor(batch["labels"]).reshape([-1])
        positions = paddle.nonzero(labels != -100).reshape([-1])
        logits = model(
            paddle.to_tensor(batch["input_ids"]), attention_mask=paddle.to_tensor(batch["attention_mask"]),
            masked_positions=positions,
        )  # fmt: skip
        return logits, paddle.gather(labels, positions)

    def loss(self, model, batch: dict) -> paddle.Tensor:
        logits, targets = self._masked_logits(model, batch)
        return token_cross_entropy(logits, targets)

    @paddle.no_grad()
    def evaluate(self, model, loader) -> dict:
        """Dev masked-LM loss (mean over masked tokens), its perplexity and the masked-token accuracy."""
        model.eval()
        total_loss, correct, count = 0.0, 0, 0
        for batch in loader:
            logits, targets = self._masked_logits(model, batch)
            if targets.shape[0] == 0:
                continue
            total_loss += float(paddle.nn.functional.cross_entropy(logits, targets, reduction="sum"))
            correct += int((logits.argmax(axis=-1) == targets).sum())
            count += targets.shape[0]
        loss = total_loss / max(count, 1)
        metrics = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "masked_accuracy": correct / max(count, 1),
                   "masked_tokens": count, "neg_loss": -loss}  # fmt: skip
        return {"metrics": metrics, "record": {key: metrics[key] for key in ("loss", "perplexity", "masked_accuracy")}}


class Seq2SeqTask(_FolderTask):
    """Writing a summary of each text (a review's title) with FastformerForConditionalGeneration, from a folder
    of ``tools/prepare_pairs.py``: cross-entropy of each summary token given the text and the tokens before it."""

    model_class = FastformerForConditionalGeneration
    score_key = "neg_loss"  # minus the dev loss: higher is better
    curve = (("token_accuracy", "dev next-token accuracy (%)"),)

    def describe(self) -> str:
        return f"an encoder-decoder ({self.config.model['cross_attention_type']} cross-attention)"

    def data_files(self) -> List[Path]:
        return self.split_files()

    def read(self):
        train = read_pairs(self.path(self.config.data.train_file), "training split")
        dev = read_pairs(self.path(self.config.data.dev_file), "dev split") if self.config.global_.eval_every_epoch else None
        return train, dev

    @staticmethod
    def texts(pairs) -> Sequence[str]:
        return [pair[field] for pair in pairs for field in ("text", "summary")]

    def build_model(self, model_config: dict, tokenizer=None) -> FastformerForConditionalGeneration:
        # Summaries start after [CLS] and end with [SEP]: the vocabulary's own special tokens.
        start, end = tokenizer.cls_token_id, tokenizer.sep_token_id
        return FastformerForConditionalGeneration(
            FastformerConfig(**model_config, bos_token_id=start, decoder_start_token_id=start, eos_token_id=end)
        )

    def _loader(self, pairs, tokenizer, batch_size: int, **sampling):
        data = self.config.data
        return make_dataloader(
            PairDataset(pairs, tokenizer, data.max_seq_len, data.max_target_len), batch_size, num_workers=data.num_workers,
            collate_fn=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, return_tensors="np"),
            max_tokens=data.max_batch_tokens, **sampling,
        )  # fmt: skip

    def train_loader(self, pairs, tokenizer, num_replicas: int, rank: int):
        seed = self.config.global_.seed
        return self._loader(pairs, tokenizer, self.config.data.batch_size, shuffle=True, seed=seed, num_replicas=num_replicas, rank=rank)

    def dev_loader(self, pairs, tokenizer):
        return self._loader(pairs, tokenizer, self.config.data.eval_batch_size, shuffle=False)

    def loss(self, model, batch: dict) -> paddle.Tensor:
        return model(
            paddle.to_tensor(batch["input_ids"]), attention_mask=paddle.to_tensor(batch["attention_mask"]),
            labels=paddle.to_tensor(batch["labels"]),
        )[0]  # fmt: skip

    @paddle.no_grad()
    def evaluate(self, model, loader) -> dict:
        """Dev loss (mean over summary tokens, teacher forcing) and the share of summary tokens predicted exactly."""
        model.eval()
        total_loss, correct, count = 0.0, 0, 0
        for batch in loader:
            labels = paddle.to_tensor(batch["labels"])
            logits = model(paddle.to_tensor(batch["input_ids"]), attention_mask=paddle.to_tensor(batch["attention_mask"]), labels=labels)[1]
            labelled = labels != -100
            targets = paddle.masked_select(labels, labelled)
            chosen = paddle.masked_select(logits, labelled.unsqueeze(-1)).reshape([-1, logits.shape[-1]])
            total_loss += float(paddle.nn.functional.cross_entropy(chosen, targets, reduction="sum"))
            correct += int((chosen.argmax(axis=-1) == targets).sum())
            count += targets.shape[0]
        loss = total_loss / max(count, 1)
        metrics = {"loss": loss, "token_accuracy": correct / max(count, 1), "summary_tokens": count, "neg_loss": -loss}
        return {"metrics": metrics, "record": {key: metrics[key] for key in ("loss", "token_accuracy")}}


def task_for(config: Config):
    """The task ``tools/train.py`` trains: ``Global.task``."""
    return Seq2SeqTask(config) if config.global_.task == "seq2seq" else ClassificationTask(config)
