"""Training batches: examples tokenized once, length-bucketed batches (optionally split across
data-parallel ranks), and dynamic padding with PaddleNLP's collator."""
from typing import Iterator, List, Optional, Sequence

import numpy as np
import paddle
from paddlenlp.data import DataCollatorWithPadding

from .readers import Example

__all__ = ["ReviewDataset", "TextDataset", "PairDataset", "LengthBucketBatchSampler", "make_collator", "make_dataloader"]


def _encode(tokenizer, texts: List[str], max_seq_len: int) -> List[List[int]]:
    """Token ids of ``texts``, truncated, unpadded, without masks (the collator makes those)."""
    encoded = tokenizer(
        texts,
        max_length=max_seq_len,
        truncation=True,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return list(encoded["input_ids"])


class ReviewDataset(paddle.io.Dataset):
    """Examples tokenized once, up front, truncated to ``max_seq_len`` and not padded.

    Items are ``{"input_ids": list[int], "label": int}``; :func:`make_collator`
    pads them per batch. ``lengths`` (token counts) feed the bucketing sampler.
    """

    def __init__(self, examples: Sequence[Example], tokenizer, max_seq_len: int = 256):
        super().__init__()
        self.tokenizer = tokenizer
        texts = [example["text"] for example in examples]
        # PaddleNLP tokenizers reject an empty batch, but an empty split is legitimate.
        self.input_ids: List[List[int]] = _encode(tokenizer, texts, max_seq_len) if texts else []
        self.labels = [int(example["label"]) for example in examples]
        self.lengths = np.array([len(ids) for ids in self.input_ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.input_ids[index], "label": self.labels[index]}


class TextDataset(paddle.io.Dataset):
    """Unlabelled texts tokenized once, truncated and not padded, for masked-LM pretraining.

    Items are ``{"input_ids": list[int], "index": int}``: the index lets a masking collator draw the
    same mask for the same batch of the same epoch, however batches are loaded.
    """

    def __init__(self, texts: Sequence[str], tokenizer, max_seq_len: int = 256):
        super().__init__()
        self.tokenizer = tokenizer
        self.input_ids: List[List[int]] = _encode(tokenizer, list(texts), max_seq_len) if texts else []
        self.lengths = np.array([len(ids) for ids in self.input_ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.input_ids[index], "index": index}


class PairDataset(paddle.io.Dataset):
    """Text -> summary pairs tokenized once: items ``{"input_ids": text ids, "labels": summary ids + [SEP]}``,
    the text truncated to ``max_seq_len`` tokens and the summary to ``max_target_len`` with its end token;
    PaddleNLP's ``DataCollatorForSeq2Seq`` pads both (labels with -100). Batches bucket by text length."""

    def __init__(self, pairs: Sequence[dict], tokenizer, max_seq_len: int, max_target_len: int):
        super().__init__()
        self.tokenizer = tokenizer
        self.input_ids = _encode(tokenizer, [pair["text"] for pair in pairs], max_seq_len) if pairs else []
        summaries = _encode(tokenizer, [pair["summary"] for pair in pairs], max_target_len - 1) if pairs else []
        self.labels = [ids + [tokenizer.sep_token_id] for ids in summaries]
        self.lengths = np.array([len(ids) for ids in self.input_ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


class LengthBucketBatchSampler(paddle.io.DistributedBatchSampler):
    """Batches of similar length, for little padding, optionally split across data-parallel ranks.

    The sampler cuts *global* batches of ``batch_size * num_replicas`` examples and rank ``r`` takes
    the ``r``-th slice of ``batch_size`` of each, so N processes with batch B step through exactly
    the batches of one process with batch N*B (and average the same gradients).

    Training (``shuffle=True``): each epoch the indices are shuffled with
    ``numpy.random.default_rng([seed, epoch])``, cut into pools of
    ``pool_factor`` global batches, each pool sorted by length and cut into
    global batches, and the batch order shuffled. So that all ranks run the same
    number of steps with full slices, the shuffled indices are cut (``drop_last``)
    or, with several ranks, wrapped around (a few examples seen twice, as in
    paddle's DistributedBatchSampler) to a multiple of the global batch.
    Call :meth:`set_epoch` before each epoch.

    Evaluation (``shuffle=False``): all indices sorted by length and cut into
    global batches, each example exactly once (unless ``drop_last``); with several
    ranks, the last global batch may leave a rank with a short or no slice.

    ``max_tokens`` caps a rank's padded batch (examples x longest length): a global batch over it is cut into
    equal pieces, each shared evenly by the ranks, so that whole long documents fit in memory while short ones
    keep the full batch size (fairseq's ``--max-tokens``, on top of a batch size).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        pool_factor: int = 100,
        weights: Optional[Sequence[float]] = None,
        max_tokens: Optional[int] = None,
    ):
        super().__init__(
            lengths, batch_size, num_replicas=num_replicas, rank=rank, shuffle=shuffle, drop_last=drop_last
        )
        if self.local_rank >= self.nranks:
            raise ValueError(f"rank {rank} is out of range for {num_replicas} replicas")
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be at least 1, got {pool_factor}")
        self.lengths = np.asarray(lengths)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.seed = seed
        self.global_batch_size = batch_size * self.nranks
        self.pool_size = pool_factor * self.global_batch_size
        self.max_tokens = max_tokens

    def _fit_to_replicas(self, order: np.ndarray) -> np.ndarray:
        """Cut or wrap ``order`` so that every rank gets the same number of full batches."""
        step = self.global_batch_size
        if self.drop_last:
            return order[: len(order) // step * step]
        if self.shuffle and self.nranks > 1:
            return np.concatenate([order, np.resize(order, -len(order) % step)])
        return order

    def _cut(self, order: np.ndarray) -> List[List[int]]:
        size = self.global_batch_size
        return [order[start : start + size].tolist() for start in range(0, len(order), size)]

    def _by_length(self, indices: np.ndarray) -> np.ndarray:
        # Stable, so that equal lengths keep their (shuffled) order and the result is deterministic.
        return indices[np.argsort(self.lengths[indices], kind="stable")]

    def _global_batches(self) -> List[List[int]]:
        if not self.shuffle:
            return self._cut(self._fit_to_replicas(self._by_length(np.arange(len(self.lengths)))))
        rng = np.random.default_rng([self.seed, self.epoch])
        count = len(self.lengths)
        drawn = rng.permutation(count) if self.weights is None else rng.choice(count, size=count, p=self.weights)
        order = self._fit_to_replicas(drawn)
        pools = (order[start : start + self.pool_size] for start in range(0, len(order), self.pool_size))
        batches = [batch for pool in pools for batch in self._cut(self._by_length(pool))]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _pieces(self, batch: List[int]) -> int:
        """How many pieces ``batch`` is cut into to keep each rank under ``max_tokens`` (1 = left whole)."""
        if not self.max_tokens:
            return 1
        per_rank = -(-len(batch) // self.nranks) * int(self.lengths[batch].max())
        return max(1, min(-(-per_rank // self.max_tokens), len(batch) // self.nranks))

    def _rank_batches(self) -> List[List[int]]:
        start = self.local_rank * self.batch_size
        slices = []
        for batch in self._global_batches():
            pieces = self._pieces(batch)
            if pieces == 1:  # rank r takes the r-th slice of batch_size, as paddle's DistributedBatchSampler
                slices.append(batch[start : start + self.batch_size])
                continue
            for piece in np.array_split(np.asarray(batch), pieces):
                slices.append(np.array_split(piece, self.nranks)[self.local_rank].tolist())
        return [indices for indices in slices if indices]

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self._rank_batches())

    def __len__(self) -> int:
        # Building the batches is cheap next to an epoch, and this cannot disagree with __iter__.
        return len(self._rank_batches())


def make_collator(tokenizer) -> DataCollatorWithPadding:
    """Pads a list of dataset items to the longest in the batch.

    Returns int64 numpy arrays ``input_ids`` (padded with the tokenizer's pad
    id), ``attention_mask`` (1 for real tokens) and ``labels``.
    """
    return DataCollatorWithPadding(tokenizer, return_tensors="np", return_attention_mask=True)


def make_dataloader(
    dataset: ReviewDataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    class_balanced: bool = False,
    collate_fn=None,
    max_tokens: Optional[int] = None,
) -> paddle.io.DataLoader:
    """A DataLoader over ``dataset`` with length-bucketed batches and dynamic padding.

    ``shuffle=True`` for training (call ``loader.batch_sampler.set_epoch(epoch)``
    each epoch), ``False`` for evaluation; see :class:`LengthBucketBatchSampler`.
    ``collate_fn`` defaults to :func:`make_collator`'s padding. ``class_balanced`` (training only)
    draws each epoch's examples with replacement, each with
    probability 1 / (classes x its class's count), so every class is visited equally often.
    ``max_tokens`` caps the padded tokens of a batch (see :class:`LengthBucketBatchSampler`).
    """
    weights = None
    if class_balanced:
        counts = np.bincount(dataset.labels)
        weights = 1.0 / counts[dataset.labels]
    sampler = LengthBucketBatchSampler(
        dataset.lengths,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
        drop_last=drop_last,
        weights=weights,
        max_tokens=max_tokens,
    )
    return paddle.io.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_fn or make_collator(dataset.tokenizer),
        num_workers=num_workers,
    )
