"""Additive-attention pooling, the operation at the heart of Fastformer, for the three ways tokens are laid out.

* Texts padded into rows ('b n', with a real-token mask): every row pools its own real tokens
  (:class:`AdditivePooling`).
* Texts packed back to back in one row ('1 t', :class:`PackedTexts`): every text pools its own tokens, and
  its pool is spread back to them; no padding is computed at all, which is what a service's micro-batches
  of mixed lengths need.
* Causal (:func:`causal_additive_pool`): every position pools itself and the tokens before it, in O(N) for a
  whole sequence and in O(1) per token when decoding.

Shapes: B batch, N tokens, S texts, T packed tokens, H heads, d features per head.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import paddle
import paddle.nn as nn

from .configuration import FastformerConfig
from .kernels import fused_ops
from .kernels.fused_ops import Dropout

__all__ = ["AdditivePooling", "PackedTexts", "PoolState", "causal_additive_pool", "causal_pool_weights", "MASKED_SCORE"]

# A score that takes no part: a padding token's, or a token of another packed text. Any real token's outweighs it entirely (exp(MASKED_SCORE - s) is 0 in
# float32 for any score s above -1e29), yet a prefix of padding alone keeps a finite total: no NaN.
MASKED_SCORE = -1e30


class PackedTexts(NamedTuple):
    """Several texts back to back in one row of T tokens, as ``segment_ids`` [1, T] numbers them (0, 1, ...,
    each text's tokens together and in order): which tokens are each text's, 's t' (1.0 or 0.0), the same
    as a score offset, 's t 1' (0 on the text, MASKED_SCORE off it), each token's text, 't', and each
    token's position within its text, '1 t'.

    Pooling sums each text's weighted values as a matrix product with the membership ('s t, t (h d)'); only
    each text's largest score is taken over 's t h'. A softmax over all of 's t h' computed (and, in
    exported graphs, broadcast) mostly zeros, and cost more than the rest of a packed forward pass outside
    the matrix products."""

    membership: paddle.Tensor
    offsets: paddle.Tensor
    text_of_token: paddle.Tensor
    positions: paddle.Tensor

    @classmethod
    def from_segment_ids(cls, segment_ids: paddle.Tensor, tokens: Optional[paddle.Tensor] = None, max_positions: Optional[int] = None):
        """The layout ``segment_ids`` [1, T] describes. In eager mode, a ValueError unless it numbers texts 0, 1, ...
        in order, each text's tokens together, matches ``tokens`` (ids [1, T] or vectors [1, T, D]) and no text
        is longer than ``max_positions`` (an exported graph trusts its caller, as it does for padding)."""
        if paddle.in_dynamic_mode():
            _check_segment_ids(segment_ids)
            if tokens is not None and list(segment_ids.shape) != list(tokens.shape[:2]):
                raise ValueError(f"packed texts are one row: input_ids [1, T] and segment_ids [1, T], got {list(tokens.shape[:2])} and {list(segment_ids.shape)}")
        text_of_token = segment_ids.reshape([-1]).astype("int64")  # t
        texts = paddle.arange(text_of_token.max() + 1, dtype="int64")  # s (a run-time count: exports stay dynamic)
        membership = (texts.unsqueeze(1) == text_of_token.unsqueeze(0)).astype("float32")  # s t
        offsets = ((1.0 - membership) * MASKED_SCORE).unsqueeze(-1)  # s t 1
        first_token = membership.argmax(axis=1)  # s: where each text starts (argmax returns the first of equal maxima)
        positions = paddle.arange(paddle.shape(text_of_token)[0], dtype="int64") - paddle.gather(first_token, text_of_token)
        if max_positions is not None and paddle.in_dynamic_mode() and int(positions.max()) >= max_positions:
            raise ValueError(f"a packed text has more than max_position_embeddings={max_positions} tokens")
        return cls(membership, offsets, text_of_token, positions.unsqueeze(0))

    def spread(self, per_text: paddle.Tensor) -> paddle.Tensor:
        """'s ... -> 1 t ...': each token gets its own text's vector."""
        return paddle.gather(per_text, self.text_of_token).unsqueeze(0)

    def sum_per_text(self, per_token: paddle.Tensor) -> paddle.Tensor:
        """'t ... -> s ...': the sum over each text's tokens."""
        flat = per_token.reshape([paddle.shape(per_token)[0], -1])
        return paddle.matmul(self.membership.astype(per_token.dtype), flat).reshape(
            paddle.concat([paddle.shape(self.membership)[:1], paddle.shape(per_token)[1:]])
        )

    def softmax_pool(self, scores: paddle.Tensor, values: paddle.Tensor, dropout: nn.Layer) -> paddle.Tensor:
        """'1 t h, 1 t h d -> s h d': per text, the softmax over its tokens of ``scores`` weighs ``values``; each
        text's largest score is subtracted before the exponent, so no weight overflows."""
        max_score = (scores + self.offsets.astype(scores.dtype)).max(axis=1).detach()  # s h: a shift, as in online softmax
        weights = paddle.exp(scores[0] - paddle.gather(max_score, self.text_of_token))  # t h, in (0, 1]
        total = self.sum_per_text(weights)  # s h, at least 1
        pooled = self.sum_per_text(dropout(weights).unsqueeze(-1) * values[0])  # s h d
        return pooled / total.unsqueeze(-1)


def _check_segment_ids(segment_ids: paddle.Tensor) -> None:
    ids = segment_ids.numpy()
    if ids.ndim != 2 or ids.shape[0] != 1 or ids.shape[1] == 0 or ids.dtype.kind not in "iu":  # one row, integers
        raise ValueError(f"segment_ids must be integers [1, T] with T >= 1, got {ids.dtype} {list(ids.shape)}")
    steps = np.diff(ids[0])
    if ids[0, 0] != 0 or ((steps != 0) & (steps != 1)).any():
        raise ValueError("segment_ids must number the texts 0, 1, 2, ... in order, each text's tokens together (e.g. [[0, 0, 1, 2, 2]])")


class AdditivePooling(nn.Layer):
    """Additive attention over real tokens: softmax over tokens of ``logits / sqrt(d)`` weighs ``values``.

    'b n h, b n h d -> b 1 h d' (for :class:`PackedTexts`, '1 t h, 1 t h d -> 1 t h d'); optional dropout on the weights (``attention_probs_dropout_prob``).
    With ``return_weights``, also the weights themselves, 'b h n' (before dropout, exactly 0 on padding).
    """

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.scale = config.head_size**-0.5
        self.weights_dropout = Dropout(config.attention_probs_dropout_prob)
        self.fused = config.use_fused_ops

    def forward(self, logits: paddle.Tensor, token_mask, values: paddle.Tensor, return_weights: bool = False):
        if isinstance(token_mask, PackedTexts):  # 1 t h, 1 t h d: each token gets its own text's pool, '1 t h d'
            if return_weights:
                raise ValueError("attention weights are not returned for packed texts")
            return token_mask.spread(token_mask.softmax_pool(logits * self.scale, values, self.weights_dropout)), None
        pooled = fused_ops.additive_pool(logits, self.scale, token_mask, values, self.weights_dropout, self.fused)
        if not return_weights:
            return pooled, None
        weights = fused_ops.masked_softmax_over_tokens(logits * self.scale, token_mask) * token_mask.astype(logits.dtype)
        return pooled, weights.transpose([0, 2, 1])


# ----------------------------------------------------------------------------------------------
# causal additive pooling: for each position, the pool of itself and the tokens before it
# ----------------------------------------------------------------------------------------------


class PoolState(NamedTuple):
    """The additive pool of some tokens, per head: their largest score, 'b .. h'; their total weight relative to
    it, sum(exp(score - max_score)), 'b .. h'; and the weighted mean of their values, 'b .. h d'. Keeping the
    maximum apart (as online softmax does) keeps every weight exact to float precision even for scores of
    1e4, where a single log-sum-exp total would lose three digits. Decoding folds each new token into one."""

    max_score: paddle.Tensor
    total: paddle.Tensor
    pooled: paddle.Tensor


def _merge_pools(first: PoolState, second: PoolState) -> PoolState:
    """The pool of two disjoint sets of tokens, from the pool of each."""
    max_score = paddle.maximum(first.max_score, second.max_score).detach()  # a shift: see _prefix_pools_within_chunks
    weight_first = first.total * paddle.exp(first.max_score - max_score)
    weight_second = second.total * paddle.exp(second.max_score - max_score)
    total = weight_first + weight_second
    pooled = (weight_first / total).unsqueeze(-1) * first.pooled + (weight_second / total).unsqueeze(-1) * second.pooled
    return PoolState(max_score, total, pooled)


def _prefix_pools_within_chunks(scores: paddle.Tensor, values: paddle.Tensor) -> PoolState:
    """'r c h, r c h d -> r c h, r c h, r c h d' for r chunks of c tokens: at each position t of a chunk, the pool
    of the chunk's tokens up to t, as one softmax over the chunk with the later tokens masked out."""
    size = scores.shape[1]
    later = paddle.triu(paddle.full([size, size], float("-inf"), dtype=scores.dtype), diagonal=1)  # t i
    grid = scores.unsqueeze(1) + later.unsqueeze(-1)  # r t i h
    # r t h: finite, as every row holds position t itself. Only a shift that every pooled value is invariant to,
    # so it is left out of the gradient, which stays exact; its own (Paddle's max backward) cost more than the rest.
    max_score = grid.max(axis=2).detach()
    weights = paddle.exp(grid - max_score.unsqueeze(2))
    total = weights.sum(axis=2)  # r t h, at least 1
    pooled = paddle.matmul(weights.transpose([0, 3, 1, 2]), values.transpose([0, 2, 1, 3])).transpose([0, 2, 1, 3])
    return PoolState(max_score, total, pooled / total.unsqueeze(-1))  # r t h d


def causal_additive_pool(
    scores: paddle.Tensor, token_mask: paddle.Tensor, values: paddle.Tensor, state: Optional[PoolState] = None,
    chunk_size: int = 64,
):  # fmt: skip
    """Causal additive pooling: at each position t, the softmax over the real tokens up to t (and those
    ``state`` pooled before) of ``scores`` weighs ``values``. 'b n h, b n 1, b n h d -> b n h d', and the
    pool of every token, from which decoding continues one token at a time.

    O(N) for the whole sequence: within chunks of ``chunk_size`` tokens a masked softmax (N x chunk_size
    work), across chunks one running pool carried from chunk to chunk. Every total is kept relative to its
    own largest score, so no weight overflows or loses precision, however large or however many the scores.
    """
    batch, _, heads = scores.shape
    length = token_mask.shape[1]  # the mask keeps a static length where projections lost it (exported graphs)
    if not isinstance(length, int):
        raise ValueError("a causal Fastformer graph must be traced with a fixed number of new tokens (as its generation graphs are)")
    scores = paddle.where(token_mask, scores, paddle.full_like(scores, MASKED_SCORE))
    if length == 1:  # a decoding step: fold the new token into the pool so far, or into an empty pool (no weight)
        if state is None:
            empty = paddle.zeros_like(scores[:, 0])
            state = PoolState(empty + MASKED_SCORE, empty, paddle.zeros_like(values[:, 0]))
        state = _merge_pools(state, PoolState(scores[:, 0], paddle.ones_like(scores[:, 0]), values[:, 0]))
        return state.pooled.unsqueeze(1), state
    size = min(chunk_size, length)
    padding = -length % size  # the tail chunk is filled with padding, which no position attends to
    if padding:
        scores = paddle.concat([scores, paddle.full([batch, padding, heads], MASKED_SCORE, scores.dtype)], axis=1)
        values = paddle.concat([values, paddle.zeros([batch, padding] + values.shape[2:], values.dtype)], axis=1)
    chunks, features = scores.shape[1] // size, values.shape[-1]
    within = _prefix_pools_within_chunks(scores.reshape([-1, size, heads]), values.reshape([-1, size, heads, features]))
    within = PoolState(*(part.reshape([batch, chunks, size, heads] + part.shape[3:]) for part in within))
    if state is None:  # no token yet: no weight
        empty = paddle.zeros([batch, heads], scores.dtype)
        state = PoolState(empty + MASKED_SCORE, empty, paddle.zeros([batch, heads, features], values.dtype))
    outputs = []
    for chunk in range(chunks):
        before = PoolState(*(part.unsqueeze(1) for part in state))  # b 1 h [d]
        prefix = _merge_pools(before, PoolState(*(part[:, chunk] for part in within)))  # b c h [d]
        outputs.append(prefix.pooled)
        state = PoolState(*(part[:, -1] for part in prefix))
    return paddle.concat(outputs, axis=1)[:, :length], state


def causal_pool_weights(scores: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
    """The weights :func:`causal_additive_pool` pools with, over one whole sequence: 'b n h, b n 1 -> b h n n', row t
    being position t's softmax of ``scores`` over the real tokens up to t, exactly 0 on padding and later tokens (a
    row with no real token is all 0). An N x N grid, built only for ``output_attentions``: the pooling itself never
    forms it, and a cache (the pools of earlier calls) keeps no per-token weights to extend it with."""
    length = scores.shape[1]
    earlier = paddle.tril(paddle.ones([length, length], dtype="bool"))  # t i
    allowed = (earlier.unsqueeze(0) & token_mask.squeeze(-1).unsqueeze(1)).unsqueeze(1)  # b 1 t i
    grid = paddle.where(allowed, scores.transpose([0, 2, 1]).unsqueeze(2), paddle.full([1], MASKED_SCORE, scores.dtype))  # b h t i
    return paddle.nn.functional.softmax(grid, axis=-1) * allowed.astype(scores.dtype)
