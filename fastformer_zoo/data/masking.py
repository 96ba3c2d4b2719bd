"""BERT-style masking of padded batches for masked-LM pretraining."""
from typing import List

import numpy as np

from .loader import make_collator

__all__ = ["MaskingCollator"]

# Of the chosen tokens, BERT (Devlin et al., 2019) shows the model [MASK] for 80%, a random word for 10%
# and the token itself for the remaining 10%.
MASK_SHARE, RANDOM_SHARE = 0.8, 0.1


class MaskingCollator:
    """Chooses each non-special token of a batch of :class:`~.loader.TextDataset` items with probability
    ``mask_prob`` as a target (its id in ``labels``; -100 elsewhere and on padding), replaces it as BERT does
    (80% [MASK], 10% a random word, 10% kept), and pads the batch with PaddleNLP's padding collator.

    Written here rather than taken from PaddleNLP's ``DataCollatorForLanguageModeling`` because that one
    draws from paddle's global generator, which the DataLoader's prefetch thread shares with dropout in
    the training thread: its masks would depend on thread timing, and a resumed run could not draw the
    ones it would have drawn. Here each text's mask comes from numpy's generator seeded by
    ``(seed, stream, epoch, the text's index)``: the same text in the same epoch always gets the same
    mask, whatever batch it is in. Its random words are never special tokens.
    """

    def __init__(self, tokenizer, mask_prob: float, seed: int, stream: int = 0):
        self.pad = make_collator(tokenizer)
        self.mask_prob = mask_prob
        self.seed, self.stream, self.epoch = seed, stream, 0
        self.mask_id = tokenizer.mask_token_id
        special = set(tokenizer.all_special_ids)
        self.special_ids = np.array(sorted(special), dtype=np.int64)
        self.word_ids = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
        if self.mask_id is None or not len(self.word_ids):
            raise ValueError("masked-LM pretraining needs a vocabulary with a [MASK] token and at least one word")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _mask(self, ids: np.ndarray, index: int):
        """One text's masked ids and targets, drawn from its own generator."""
        rng = np.random.default_rng([self.seed, self.stream, self.epoch, index])
        chosen = ~np.isin(ids, self.special_ids) & (rng.random(len(ids)) < self.mask_prob)
        roll = rng.random(len(ids))
        to_mask = chosen & (roll < MASK_SHARE)
        to_random = chosen & (roll >= MASK_SHARE) & (roll < MASK_SHARE + RANDOM_SHARE)
        labels = np.where(chosen, ids, -100)
        ids = ids.copy()
        ids[to_mask] = self.mask_id
        ids[to_random] = rng.choice(self.word_ids, size=int(to_random.sum()))
        return ids, labels

    def __call__(self, items: List[dict]) -> dict:
        masked = [self._mask(np.asarray(item["input_ids"], dtype=np.int64), item["index"]) for item in items]
        batch = self.pad([{"input_ids": ids.tolist()} for ids, _ in masked])
        labels = np.full(batch["input_ids"].shape, -100, dtype=np.int64)
        for row, (_, targets) in enumerate(masked):
            labels[row, : len(targets)] = targets
        indices = np.array([item["index"] for item in items])
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels, "index": indices}
