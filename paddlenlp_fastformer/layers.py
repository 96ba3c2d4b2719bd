"""The layers of Fastformer ("Fastformer: Additive Attention Can Be All You Need", arXiv 2108.09084).

The paper's equations, top to bottom: the two public formulations of additive attention (and the softmax
baseline), the block, the embeddings, the attention pooler, the vocabulary head and the cross-attention of
an encoder-decoder (softmax, or Fastformer's global key across the two sequences); the additive-attention pooling they are
built on (over each text's tokens, or causal: over each token and those before it) is in :mod:`.pooling`.
:mod:`.modeling` assembles them into PaddleNLP models. The non-matmul work of each layer goes
through :mod:`.kernels.fused_ops`, which computes it with a fused CPU kernel or in plain Paddle
(``FastformerConfig.use_fused_ops``). Shapes: B batch, N tokens, D hidden, H heads, d features per head.
"""
from __future__ import annotations

from functools import partial
from typing import Optional

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .configuration import FastformerConfig
from .kernels import fused_ops
from .kernels.fused_ops import Dropout, FlatLinear
from .pooling import MASKED_SCORE, AdditivePooling, PackedTexts, causal_additive_pool, causal_pool_weights

__all__ = [
    "OfficialAdditiveAttention",
    "LucidrainsAdditiveAttention",
    "SoftmaxSelfAttention",
    "FastformerLayer",
    "FastformerEmbeddings",
    "FastformerPooler",
    "FastformerLMHead",
    "VocabularyProjection",
    "RotaryEmbedding",
    "build_layers",
    "SoftmaxCrossAttention",
    "AdditiveCrossAttention",
    "CROSS_ATTENTIONS",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def split_heads(x: paddle.Tensor, num_heads: int) -> paddle.Tensor:
    """'b n (h d) -> b n h d' (0 keeps a dimension, so exported graphs keep dynamic B and N)."""
    return x.reshape([0, 0, num_heads, -1])


def merge_heads(x: paddle.Tensor) -> paddle.Tensor:
    """'b n h d -> b n (h d)'."""
    return x.reshape([0, 0, -1])


def sum_adjacent_pairs(x: paddle.Tensor) -> paddle.Tensor:
    """'b n h (d r) -> b n h d', summing r = 2: an inner product of rotated feature pairs."""
    return x.reshape([0, 0, 0, -1, 2]).sum(axis=-1)


class RotaryEmbedding(nn.Layer):
    """Rotary positions on the first ``rotary_size`` features of each head, pairs interleaved.

    Frequencies follow fast-transformer-pytorch 0.0.4 (rotary-embedding-torch 0.1.5, theta 10000):
    ``rotary_size / 2`` frequencies, each repeated for the two features of a pair. The rotation is
    ``x * cos + quarter_turn(x) * sin`` over the whole head, with cos 1 and sin 0 on the features left
    unrotated, and the quarter turn ``(x0, x1) -> (-x1, x0)`` done as one small matrix product: slicing,
    stacking and concatenating the features instead cost more than the rest of the attention backward.
    """

    def __init__(self, head_size: int, rotary_size: int, use_fused_ops: bool = False):
        super().__init__()
        self.head_size, self.rotary_size = head_size, rotary_size
        self.use_fused_ops = use_fused_ops
        exponents = paddle.arange(0, rotary_size, 2, dtype="float32") / rotary_size
        self.register_buffer("inv_freq", 1.0 / (10000.0**exponents), persistable=False)
        quarter_turn = np.zeros([head_size, head_size], dtype="float32")
        for first in range(0, rotary_size, 2):
            quarter_turn[first + 1, first], quarter_turn[first, first + 1] = -1.0, 1.0
        self.register_buffer("quarter_turn", paddle.to_tensor(quarter_turn), persistable=False)

    def forward(self, x: paddle.Tensor, positions: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """Rotate x [B, N, heads, head_size] by position: 0..N-1 along axis 1, or each row's ``positions`` [B, N]
        (a decoder's, which continue from the tokens it has seen)."""
        # Angles in the frequencies' dtype (float32 unless the model was cast), as the reference computes them.
        if positions is None:
            positions = paddle.arange(paddle.shape(x)[1], dtype=self.inv_freq.dtype)  # run-time N: exports stay dynamic
            angles = positions.unsqueeze(1) * self.inv_freq.unsqueeze(0)  # n f
            angles = paddle.stack([angles, angles], axis=-1).reshape([0, -1])  # n (f 2)
        else:
            angles = positions.astype(self.inv_freq.dtype).unsqueeze(-1) * self.inv_freq  # b n f
            angles = paddle.stack([angles, angles], axis=-1).reshape([0, 0, -1])  # b n (f 2)
        unrotated = paddle.zeros(angles.shape[:-1] + [self.head_size - self.rotary_size], dtype=angles.dtype)
        cos = paddle.concat([angles.cos(), unrotated + 1.0], axis=-1).astype(x.dtype)  # [b] n d
        sin = paddle.concat([angles.sin(), unrotated], axis=-1).astype(x.dtype)
        return fused_ops.rotate(x, cos, sin, self.quarter_turn, self.use_fused_ops)


def _causal_weights(query_scores, key_scores, token_mask, output_attentions: bool):
    """Causal additive attention's weights, 'b 2 h n n' (global query, global key; row t: position t's pools), or None."""
    if not output_attentions:
        return None
    return paddle.stack([causal_pool_weights(query_scores, token_mask), causal_pool_weights(key_scores, token_mask)], axis=1)


# ----------------------------------------------------------------------------------------------
# additive attention: the two public formulations
# ----------------------------------------------------------------------------------------------
class OfficialAdditiveAttention(nn.Layer):
    """The authors' formulation: query = value, scores read the whole query, global key from p = q_g * k.

    Parameter names follow the authors' ``FastSelfAttention`` (query, key, query_att, key_att,
    transform); ``output`` is their ``BertSelfOutput.dense``.
    """

    def __init__(self, config: FastformerConfig):
        super().__init__()
        hidden, heads = config.hidden_size, config.num_attention_heads
        self.num_heads = heads
        self.fused = config.use_fused_ops
        linear = partial(FlatLinear, use_fused_ops=self.fused)
        self.query = linear(hidden, hidden)
        self.key = linear(hidden, hidden)
        self.query_att = linear(hidden, heads)
        self.key_att = linear(hidden, heads)
        self.transform = linear(hidden, hidden)
        self.output = linear(hidden, hidden)
        self.pool = AdditivePooling(config)
        self.causal = config.is_decoder

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor, output_attentions: bool = False, cache=None, positions=None):
        """The attended states 'b n D'; with ``output_attentions`` the weights of the global query and
        global key, 'b 2 h n' (causal: each position's, 'b 2 h n n'; else None); and in causal mode the two pools to
        continue from (else None)."""
        if self.causal:
            return self._causal_forward(hidden_states, token_mask, cache, output_attentions)
        query = self.query(hidden_states)  # b n D
        key = self.key(hidden_states)
        query_heads = split_heads(query, self.num_heads)  # b n h d
        global_query, alpha = self.pool(self.query_att(query), token_mask, query_heads, output_attentions)  # b 1 h d
        mixed = fused_ops.scale_tokens(key, merge_heads(global_query), self.fused)  # p = q_g * k: b n D
        global_key, beta = self.pool(self.key_att(mixed), token_mask, split_heads(mixed, self.num_heads), output_attentions)
        weighted_values = fused_ops.scale_tokens(query, merge_heads(global_key), self.fused)  # u = k_g * q (query = value)
        attended = self.output(self.transform(weighted_values, residual=query))
        return attended, paddle.stack([alpha, beta], axis=1) if output_attentions else None, None

    def _causal_forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor, cache, output_attentions: bool = False):
        """Position t pools queries up to t into q_g(t); p_i = q_g(i) * k_i; keys p up to t into k_g(t); u_t = k_g(t) * q_t."""
        query, key = self.query(hidden_states), self.key(hidden_states)  # b n D
        query_pool, key_pool = cache if cache is not None else (None, None)
        scale = self.pool.scale
        query_logits = self.query_att(query) * scale
        global_query, query_pool = causal_additive_pool(query_logits, token_mask, split_heads(query, self.num_heads), query_pool)
        mixed = key * merge_heads(global_query)  # b n D
        key_logits = self.key_att(mixed) * scale
        global_key, key_pool = causal_additive_pool(key_logits, token_mask, split_heads(mixed, self.num_heads), key_pool)
        attended = self.output(self.transform(query * merge_heads(global_key), residual=query))
        return attended, _causal_weights(query_logits, key_logits, token_mask, output_attentions), (query_pool, key_pool)


class LucidrainsAdditiveAttention(nn.Layer):
    """fast-transformer-pytorch 0.0.4: separate v, head-shared score vectors, global key from raw k.

    ``to_q_attn_logits`` and ``to_k_attn_logits`` are passed in so that one pair serves every layer
    (tied, as in the reference). With rotary positions, q, k and v are rotated for the aggregations
    and the key/value products are reduced by summing adjacent feature pairs.
    """

    def __init__(
        self,
        config: FastformerConfig,
        to_q_attn_logits: FlatLinear,
        to_k_attn_logits: FlatLinear,
        rotary: Optional[RotaryEmbedding],
    ):
        super().__init__()
        heads, head_size = config.num_attention_heads, config.head_size
        reduced = head_size // 2 if rotary is not None else head_size
        self.num_heads = heads
        self.fused = config.use_fused_ops
        linear = partial(FlatLinear, use_fused_ops=self.fused)
        self.to_qkv = linear(config.hidden_size, 3 * heads * head_size, bias_attr=False)
        self.to_q_attn_logits = to_q_attn_logits
        self.to_k_attn_logits = to_k_attn_logits
        self.to_r = linear(reduced, head_size)
        self.to_out = linear(heads * head_size, config.hidden_size)
        self.rotary = rotary
        self.pool = AdditivePooling(config)
        self.causal = config.is_decoder

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor, output_attentions: bool = False, cache=None, positions=None):
        """The attended states 'b n D'; with ``output_attentions`` the weights of the global query and
        global key, 'b 2 h n' (causal: each position's, 'b 2 h n n'; else None); and in causal mode the two pools to
        continue from (else None)."""
        qkv = split_heads(self.to_qkv(hidden_states), 3 * self.num_heads)  # b n (3 h) d
        query, key, value = qkv.chunk(3, axis=2)
        if self.rotary is not None:
            query_aggr, key_aggr, value_aggr = self.rotary(qkv, positions).chunk(3, axis=2)  # one rotation for all three
        else:
            query_aggr, key_aggr, value_aggr = query, key, value
        if self.causal:
            return self._causal_forward(query, key, query_aggr, key_aggr, value_aggr, token_mask, cache, output_attentions)

        query_logits = self.to_q_attn_logits(query).squeeze(-1)  # b n h
        global_query, alpha = self.pool(query_logits, token_mask, query_aggr, output_attentions)  # b 1 h d

        biased_key = fused_ops.scale_tokens(key, global_query, self.fused)
        if self.rotary is not None:
            biased_key = sum_adjacent_pairs(biased_key)
        key_logits = self.to_k_attn_logits(biased_key).squeeze(-1)
        global_key, beta = self.pool(key_logits, token_mask, key_aggr, output_attentions)  # raw keys, not k'

        weighted_values = fused_ops.scale_tokens(value_aggr, global_key, self.fused)
        return self._output(weighted_values, query), paddle.stack([alpha, beta], axis=1) if output_attentions else None, None

    def _output(self, weighted_values: paddle.Tensor, query: paddle.Tensor) -> paddle.Tensor:
        if self.rotary is not None:
            weighted_values = sum_adjacent_pairs(weighted_values)
        return self.to_out(merge_heads(self.to_r(weighted_values, residual=query)))

    def _causal_forward(self, query, key, query_aggr, key_aggr, value_aggr, token_mask: paddle.Tensor, cache, output_attentions=False):
        """Position t pools (rotated) queries up to t into q_g(t); k'_i = k_i * q_g(i) scores the (rotated) raw keys
        up to t into k_g(t); u_t = v_t * k_g(t)."""
        query_pool, key_pool = cache if cache is not None else (None, None)
        scale = self.pool.scale
        query_logits = self.to_q_attn_logits(query).squeeze(-1) * scale  # b n h
        global_query, query_pool = causal_additive_pool(query_logits, token_mask, query_aggr, query_pool)  # b n h d
        biased_key = key * global_query
        if self.rotary is not None:
            biased_key = sum_adjacent_pairs(biased_key)
        key_logits = self.to_k_attn_logits(biased_key).squeeze(-1) * scale
        global_key, key_pool = causal_additive_pool(key_logits, token_mask, key_aggr, key_pool)
        weights = _causal_weights(query_logits, key_logits, token_mask, output_attentions)
        return self._output(value_aggr * global_key, query), weights, (query_pool, key_pool)


class SoftmaxSelfAttention(nn.Layer):
    """Standard multi-head scaled dot-product self-attention: the quadratic baseline (attention_type="softmax")."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.attention = nn.MultiHeadAttention(
            config.hidden_size, config.num_attention_heads, dropout=config.attention_probs_dropout_prob
        )
        self.causal = config.is_decoder

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor, output_attentions: bool = False, cache=None, positions=None):
        """The attended states 'b n D'; with ``output_attentions`` the weights 'b h n n' (else None); and in
        causal mode the keys, values and key mask so far, the KV cache (else None)."""
        if self.causal:
            return self._causal_forward(hidden_states, token_mask, cache, output_attentions)
        keep = token_mask.squeeze(-1).unsqueeze([1, 2])  # b 1 1 n: every query may attend to real keys
        if not output_attentions:
            return self.attention(hidden_states, attn_mask=keep), None, None
        self.attention.need_weights = True  # paddle's switch for returning the weights too
        try:
            attended, weights = self.attention(hidden_states, attn_mask=keep)
        finally:
            self.attention.need_weights = False
        return attended, weights * keep.astype(weights.dtype), None  # padding keys: exactly 0

    def _causal_forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor, cache, output_attentions: bool = False):
        """Each query attends to the real keys at or before it: those of the cache, then its own sequence's."""
        attention = self.attention
        query, key, value = (
            split_heads(projection(hidden_states), attention.num_heads).transpose([0, 2, 1, 3])  # b h n d
            for projection in (attention.q_proj, attention.k_proj, attention.v_proj)
        )
        key_mask = token_mask.squeeze(-1)  # b n
        if cache is not None:
            key, value = paddle.concat([cache[0], key], axis=2), paddle.concat([cache[1], value], axis=2)
            key_mask = paddle.concat([cache[2], key_mask], axis=1)
        length, total = query.shape[2], key.shape[2]
        earlier = paddle.arange(total).unsqueeze(0) <= paddle.arange(total - length, total).unsqueeze(1)  # n t
        scores = paddle.matmul(query, key, transpose_y=True) * attention.head_dim**-0.5  # b h n t
        # Padding keys get MASKED_SCORE and later keys -inf: a query with only padding before it (itself padding)
        # still attends to no later key, and every row keeps a finite entry, its own position.
        scores = paddle.where(key_mask.unsqueeze([1, 2]), scores, paddle.full_like(scores, MASKED_SCORE))
        scores = paddle.where(earlier.unsqueeze([0, 1]), scores, paddle.full_like(scores, float("-inf")))
        weights = F.softmax(scores, axis=-1)
        weights = F.dropout(weights, attention.dropout, training=self.training)
        attended = merge_heads(paddle.matmul(weights, value).transpose([0, 2, 1, 3]))  # b n D
        if output_attentions:  # padding and later keys: exactly 0 (Paddle's CPU softmax gives -inf scores e^-64, not 0)
            weights = weights * (key_mask.unsqueeze([1, 2]) & earlier.unsqueeze([0, 1])).astype(weights.dtype)
        return attention.out_proj(attended), weights if output_attentions else None, (key, value, key_mask)


# ----------------------------------------------------------------------------------------------
# block, embeddings, pooler
# ----------------------------------------------------------------------------------------------
class FastformerLayer(nn.Layer):
    """Attention, (in an encoder-decoder's decoder) cross-attention to the encoder, and feed-forward, each a
    residual branch: post-LN (official) or pre-LN (lucidrains)."""

    def __init__(self, config: FastformerConfig, attention: nn.Layer, cross_attention: Optional[nn.Layer] = None):
        super().__init__()
        self.pre_norm = config.formulation == "lucidrains"
        self.fused = config.use_fused_ops
        self.attention = attention
        self.attention_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.cross_attention = cross_attention
        if cross_attention is not None:
            self.cross_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.ffn_in = FlatLinear(config.hidden_size, config.intermediate_size, self.fused)
        self.activation = config.hidden_act
        self.ffn_out = FlatLinear(config.intermediate_size, config.hidden_size, self.fused)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def feed_forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.ffn_out(self.ffn_in(x, activation=self.activation))

    def forward(self, hidden_states, token_mask, output_attentions: bool = False, cache=None, positions=None, memory=None):
        """The block's output 'b n D', the attention's weights (None unless ``output_attentions``), and in causal
        mode its cache (see each attention's ``forward``; with cross-attention, the pair (self, cross)).
        ``memory`` is what cross-attention reads: (encoder states 'b m D', their real-token mask 'b m'); None
        when decoding from a cache, which holds what cross-attention computed of it."""
        self_cache, cross_cache = cache if self.cross_attention is not None and cache is not None else (cache, None)
        memory = memory or (None, None)  # decoding from a cache: cross-attention's holds what it needs
        if self.pre_norm:
            attended, weights, self_cache = self.attention(
                self.norm(self.attention_norm, hidden_states), token_mask, output_attentions, self_cache, positions
            )
            hidden_states = hidden_states + self.dropout(attended)
            if self.cross_attention is not None:
                attended, cross_cache = self.cross_attention(self.norm(self.cross_norm, hidden_states), *memory, cross_cache)
                hidden_states = hidden_states + self.dropout(attended)
            hidden_states = hidden_states + self.dropout(self.feed_forward(self.norm(self.ffn_norm, hidden_states)))
        else:
            attended, weights, self_cache = self.attention(hidden_states, token_mask, output_attentions, self_cache, positions)
            hidden_states = self.norm(self.attention_norm, hidden_states, self.dropout(attended))
            if self.cross_attention is not None:
                attended, cross_cache = self.cross_attention(hidden_states, *memory, cross_cache)
                hidden_states = self.norm(self.cross_norm, hidden_states, self.dropout(attended))
            hidden_states = self.norm(self.ffn_norm, hidden_states, self.dropout(self.feed_forward(hidden_states)))
        return hidden_states, weights, (self_cache, cross_cache) if self.cross_attention is not None else self_cache

    def norm(self, norm: nn.LayerNorm, x: paddle.Tensor, residual: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """``norm(x + residual)``, or ``norm(x)``."""
        return fused_ops.layer_norm(norm, x, self.fused, residual)


class FastformerEmbeddings(nn.Layer):
    """Token embeddings, plus learned absolute positions; LayerNorm only in the official formulation."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        official = config.formulation == "official"
        self.fused = config.use_fused_ops
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id if official else None
        )
        self.position_embeddings = None
        if config.position_embedding_type == "absolute":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps) if official else None
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, inputs_embeds=None, positions: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """Token vectors of ``input_ids`` [B, N], or the given ``inputs_embeds`` [B, N, D], plus positions:
        0..N-1, or each row's ``positions`` [B, N] (a decoder's, which continue from the tokens it has seen)."""
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if self.position_embeddings is not None and positions is not None:
            embeddings = embeddings + self.position_embeddings(positions)
        elif self.position_embeddings is not None:
            positions = paddle.arange(paddle.shape(embeddings)[1], dtype="int64")
            embeddings = embeddings + fused_ops.broadcast_as(self.position_embeddings(positions).unsqueeze(0), embeddings)
        if self.layer_norm is not None:
            embeddings = fused_ops.layer_norm(self.layer_norm, embeddings, self.fused)
        return self.dropout(embeddings)


class FastformerPooler(nn.Layer):
    """Additive-attention pooling of the last layer (the authors' ``AttentionPooling``).

    weights = exp(att_fc2(tanh(att_fc1(h)))) on real tokens, normalised with +1e-8, so a row with no
    real token pools to the zero vector. att_fc2's bias shifts every score equally and cancels in the
    normalisation: its true gradient is ~0 (see tests/test_alignment.py). ``forward`` returns the pooled
    vector 'b D' and the token weights 'b n' (exactly 0 on padding); for :class:`PackedTexts`, 's D' and None.
    """

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.att_fc1 = FlatLinear(config.hidden_size, config.hidden_size, config.use_fused_ops)
        self.att_fc2 = FlatLinear(config.hidden_size, 1, config.use_fused_ops)

    def forward(self, hidden_states: paddle.Tensor, token_mask):
        weights = paddle.exp(self.att_fc2(paddle.tanh(self.att_fc1(hidden_states))))  # b n 1
        if isinstance(token_mask, PackedTexts):  # each text's pooled vector, 's D'; no token weights
            weights = weights[0]  # t 1
            total = token_mask.sum_per_text(weights)  # s 1
            return token_mask.sum_per_text(weights * hidden_states[0]) / (total + 1e-8), None
        weights = weights * token_mask.astype(weights.dtype)
        weights = weights / (weights.sum(axis=1, keepdim=True) + 1e-8)
        pooled = (fused_ops.broadcast_as(weights, hidden_states) * hidden_states).sum(axis=1)  # b D
        return pooled, weights.squeeze(-1)


class VocabularyProjection(nn.Layer):
    """Hidden states -> vocabulary logits, ``h E^T + b`` with ``weight`` E laid out like the word embeddings
    [vocab_size, hidden_size], so that it can be the embedding matrix itself (``tie_word_embeddings``)."""

    def __init__(self, hidden_size: int, vocab_size: int):
        super().__init__()
        self._dtype = self._helper.get_default_dtype()
        self._bias_attr = None
        self.weight = self.create_parameter([vocab_size, hidden_size], dtype=self._dtype)
        self.bias = self.create_parameter([vocab_size], dtype=self._dtype, is_bias=True)

    def forward(self, hidden_states: paddle.Tensor) -> paddle.Tensor:
        return paddle.matmul(hidden_states, self.weight, transpose_y=True) + self.bias


class FastformerLMHead(nn.Layer):
    """fast-transformer-pytorch's ``to_logits``: LayerNorm then a projection onto the vocabulary."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.fused = config.use_fused_ops
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.decoder = VocabularyProjection(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: paddle.Tensor) -> paddle.Tensor:
        return self.decoder(fused_ops.layer_norm(self.layer_norm, hidden_states, self.fused))


def build_layers(config: FastformerConfig, cross_attention=None) -> nn.LayerList:
    """The blocks of ``config``; ``cross_attention(config)``, when given, makes each block's cross-attention."""
    def cross():
        return cross_attention(config) if cross_attention is not None else None

    if config.formulation == "official":
        attention_class = SoftmaxSelfAttention if config.attention_type == "softmax" else OfficialAdditiveAttention
        return nn.LayerList([FastformerLayer(config, attention_class(config), cross()) for _ in range(config.num_hidden_layers)])
    # fast-transformer-pytorch ties its score projections and its rotary table across layers.
    head_size = config.head_size
    rotary = None
    if config.position_embedding_type == "rotary":
        rotary = RotaryEmbedding(head_size, head_size // 2, config.use_fused_ops)
    key_score_size = head_size // 2 if rotary is not None else head_size
    to_q_attn_logits = FlatLinear(head_size, 1, config.use_fused_ops, bias_attr=False)
    to_k_attn_logits = FlatLinear(key_score_size, 1, config.use_fused_ops, bias_attr=False)
    return nn.LayerList(
        [
            FastformerLayer(config, LucidrainsAdditiveAttention(config, to_q_attn_logits, to_k_attn_logits, rotary), cross())
            for _ in range(config.num_hidden_layers)
        ]
    )


# ----------------------------------------------------------------------------------------------
# cross-attention: a decoder reading its encoder
# ----------------------------------------------------------------------------------------------
class SoftmaxCrossAttention(nn.Layer):
    """Standard multi-head attention from each decoder position to the real encoder tokens. The encoder's keys
    and values are computed once per source and kept in the cache; each decoder token then costs O(M)."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.attention = nn.MultiHeadAttention(config.hidden_size, config.num_attention_heads, dropout=config.attention_probs_dropout_prob)

    def forward(self, hidden_states, memory, memory_mask, cache=None):
        """'b n D' reading 'b m D' (real tokens: memory_mask 'b m') -> 'b n D', and the cache (keys, values, mask)."""
        attention = self.attention
        if cache is None:
            keys, values = (
                split_heads(projection(memory), attention.num_heads).transpose([0, 2, 1, 3]) for projection in (attention.k_proj, attention.v_proj)
            )  # b h m d
            cache = (keys, values, memory_mask)
        keys, values, memory_mask = cache
        query = split_heads(attention.q_proj(hidden_states), attention.num_heads).transpose([0, 2, 1, 3])  # b h n d
        scores = paddle.matmul(query, keys, transpose_y=True) * attention.head_dim**-0.5  # b h n m
        scores = paddle.where(memory_mask.unsqueeze([1, 2]), scores, paddle.full_like(scores, MASKED_SCORE))
        weights = F.dropout(F.softmax(scores, axis=-1), attention.dropout, training=self.training)
        return attention.out_proj(merge_heads(paddle.matmul(weights, values).transpose([0, 2, 1, 3]))), cache


class AdditiveCrossAttention(nn.Layer):
    """Fastformer's global key across the two sequences: the encoder's keys, pooled once by additive attention
    into one global key per head, multiply each decoder query element-wise (as the global key multiplies each
    query in Fastformer's self-attention), then a transform with the query as residual. The pool is computed
    once per source: each decoder token costs O(1) whatever the source length."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        hidden, heads = config.hidden_size, config.num_attention_heads
        self.num_heads = heads
        self.query = FlatLinear(hidden, hidden, config.use_fused_ops)
        self.key = FlatLinear(hidden, hidden, config.use_fused_ops)
        self.key_att = FlatLinear(hidden, heads, config.use_fused_ops)
        self.transform = FlatLinear(hidden, hidden, config.use_fused_ops)
        self.output = FlatLinear(hidden, hidden, config.use_fused_ops)
        self.pool = AdditivePooling(config)

    def forward(self, hidden_states, memory, memory_mask, cache=None):
        """'b n D' reading 'b m D' (real tokens: memory_mask 'b m') -> 'b n D', and the cache (the global key 'b 1 D')."""
        if cache is None:
            key = self.key(memory)
            global_key, _ = self.pool(self.key_att(key), memory_mask.unsqueeze(-1), split_heads(key, self.num_heads))
            cache = (merge_heads(global_key),)  # b 1 D
        query = self.query(hidden_states)
        return self.output(self.transform(query * cache[0], residual=query)), cache


CROSS_ATTENTIONS = {"softmax": SoftmaxCrossAttention, "additive": AdditiveCrossAttention}
