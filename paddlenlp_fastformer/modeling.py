"""Fastformer ("Fastformer: Additive Attention Can Be All You Need", arXiv 2108.09084) for PaddleNLP.

The whole model, top to bottom: helpers, the two additive-attention formulations, the block, the
embeddings, the additive-attention pooler, the ``PretrainedModel`` base, the base model and the task
heads. Shapes: B batch, N tokens, D hidden, H heads, d features per head.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.transformers.activations import ACT2FN
from paddlenlp.transformers.model_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from paddlenlp.transformers.model_utils import PretrainedModel, register_base_model

from . import fused_ops
from .configuration import FastformerConfig

__all__ = [
    "FastformerPretrainedModel",
    "FastformerModel",
    "FastformerForSequenceClassification",
    "FastformerForTokenClassification",
    "FastformerForMaskedLM",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def masked_softmax_over_tokens(logits: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
    """Softmax over the token axis of ``logits`` [B, N, H], padding excluded.

    Padding logits are replaced (not offset) by the dtype's lowest value, so a padding token gets
    exactly zero weight whatever the real logits are. A row without any real token gets uniform
    weights: finite, never NaN.
    """
    lowest = paddle.full([1], paddle.finfo(logits.dtype).min, dtype=logits.dtype)
    return F.softmax(paddle.where(token_mask, logits, lowest), axis=1)


def broadcast_as(small: paddle.Tensor, like: paddle.Tensor) -> paddle.Tensor:
    """``small`` expanded to ``like``'s shape, for an element-wise product.

    Paddle 3.3.1's CPU kernels multiply same-shaped tensors several times faster than they broadcast:
    [64, 256, 256] * [64, 1, 256] took 14.9 ms, and the same product with the smaller operand
    expanded first 2.3 ms (in eager mode the expansion is a strided view; static graphs copy it).
    """
    return small.expand(paddle.shape(like))  # a run-time shape: exported graphs stay dynamic


def pool_tokens(weights: paddle.Tensor, values: paddle.Tensor) -> paddle.Tensor:
    """Weighted sum over tokens per head: 'b n h, b n h d -> b 1 h d'."""
    return (broadcast_as(weights.unsqueeze(-1), values) * values).sum(axis=1, keepdim=True)


def additive_pool(
    logits: paddle.Tensor, scale: float, token_mask: paddle.Tensor, values: paddle.Tensor, weights_dropout: nn.Dropout
) -> paddle.Tensor:
    """Additive attention: softmax over real tokens of ``logits * scale`` [B, N, H] pools ``values`` [B, N, H, d] -> [B, 1, H, d].

    One fused kernel when it serves (and no attention dropout is active); the two helpers above are
    its reference.
    """
    if fused_ops.available(values) and not (weights_dropout.training and weights_dropout.p > 0):
        return fused_ops.token_pool(logits, token_mask, values, scale)
    return pool_tokens(weights_dropout(masked_softmax_over_tokens(logits * scale, token_mask)), values)


def scale_tokens(x: paddle.Tensor, row_vector: paddle.Tensor) -> paddle.Tensor:
    """'b n ..., b 1 ... -> b n ...': every token of a sequence times that sequence's vector."""
    if fused_ops.available(x):
        return fused_ops.broadcast_mul(x, row_vector)
    return x * broadcast_as(row_vector, x)


def layer_norm(norm: nn.LayerNorm, x: paddle.Tensor, residual: Optional[paddle.Tensor] = None) -> paddle.Tensor:
    """``norm(x + residual)``, or ``norm(x)``; one fused kernel when it serves."""
    if fused_ops.available(x):
        return fused_ops.layer_norm(x, norm.weight, norm.bias, norm._epsilon, residual)
    return norm(x if residual is None else x + residual)


def split_heads(x: paddle.Tensor, num_heads: int) -> paddle.Tensor:
    """'b n (h d) -> b n h d' (0 keeps a dimension, so exported graphs keep dynamic B and N)."""
    return x.reshape([0, 0, num_heads, -1])


def merge_heads(x: paddle.Tensor) -> paddle.Tensor:
    """'b n h d -> b n (h d)'."""
    return x.reshape([0, 0, -1])


def sum_adjacent_pairs(x: paddle.Tensor) -> paddle.Tensor:
    """'b n h (d r) -> b n h d', summing r = 2: an inner product of rotated feature pairs."""
    return x.reshape([0, 0, 0, -1, 2]).sum(axis=-1)


class Linear(nn.Linear):
    """``nn.Linear`` over the last axis, computed as one 2-D matrix product, optionally with GELU after it.

    On Paddle 3.3.1's CPU kernels the backward of a matmul with a 3-D or 4-D input runs about twice
    as slow as the same product on the input flattened to 2-D (measured: 458 ms against 244 ms for
    [16, 512, 256] x [256, 768] forward and backward), so every projection flattens its input. The
    bias (and GELU) are one fused kernel when it serves; ``F.linear`` and ``ACT2FN`` are the reference.
    """

    def forward(
        self, x: paddle.Tensor, activation: Optional[str] = None, residual: Optional[paddle.Tensor] = None
    ) -> paddle.Tensor:
        """``activation(x W + b)``, or ``x W + b + residual`` (``residual`` shaped like the output)."""
        flat = x.reshape([-1, x.shape[-1]])
        if self.bias is not None and activation in fused_ops.ACTIVATIONS and fused_ops.available(x):
            product = paddle.matmul(flat, self.weight)
            if residual is not None and activation is None:
                out = fused_ops.bias_residual(product, self.bias, residual.reshape(product.shape))
                return out.reshape(residual.shape)
            out = fused_ops.bias_act(product, self.bias, activation)
        else:
            out = super().forward(flat)
            out = ACT2FN[activation](out) if activation else out
        if paddle.in_dynamic_mode():
            out = out.reshape(x.shape[:-1] + [out.shape[-1]])
        else:  # exported graphs have unknown leading sizes: read them at run time
            leading = paddle.shape(x)[:-1]
            out = out.reshape(paddle.concat([leading, paddle.full([1], out.shape[-1], dtype=leading.dtype)]))
        return out if residual is None else out + residual


class RotaryEmbedding(nn.Layer):
    """Rotary positions on the first ``rotary_size`` features of each head, pairs interleaved.

    Frequencies follow fast-transformer-pytorch 0.0.4 (rotary-embedding-torch 0.1.5, theta 10000):
    ``rotary_size / 2`` frequencies, each repeated for the two features of a pair. The rotation is
    ``x * cos + quarter_turn(x) * sin`` over the whole head, with cos 1 and sin 0 on the features left
    unrotated, and the quarter turn ``(x0, x1) -> (-x1, x0)`` done as one small matrix product: slicing,
    stacking and concatenating the features instead cost more than the rest of the attention backward.
    In eager float32 CPU runs one fused kernel does the whole rotation (the code after it is its reference).
    """

    def __init__(self, head_size: int, rotary_size: int):
        super().__init__()
        self.head_size, self.rotary_size = head_size, rotary_size
        exponents = paddle.arange(0, rotary_size, 2, dtype="float32") / rotary_size
        self.register_buffer("inv_freq", 1.0 / (10000.0**exponents), persistable=False)
        quarter_turn = np.zeros([head_size, head_size], dtype="float32")
        for first in range(0, rotary_size, 2):
            quarter_turn[first + 1, first], quarter_turn[first, first + 1] = -1.0, 1.0
        self.register_buffer("quarter_turn", paddle.to_tensor(quarter_turn), persistable=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Rotate x [B, N, heads, head_size] by position (axis 1)."""
        # Angles in the frequencies' dtype (float32 unless the model was cast), as the reference computes them.
        positions = paddle.arange(paddle.shape(x)[1], dtype=self.inv_freq.dtype)  # run-time N: exports stay dynamic
        angles = positions.unsqueeze(1) * self.inv_freq.unsqueeze(0)  # n f
        angles = paddle.stack([angles, angles], axis=-1).reshape([0, -1])  # n (f 2)
        unrotated = paddle.zeros([paddle.shape(x)[1], self.head_size - self.rotary_size], dtype=angles.dtype)
        cos = paddle.concat([angles.cos(), unrotated + 1.0], axis=-1).astype(x.dtype)  # n d
        sin = paddle.concat([angles.sin(), unrotated], axis=-1).astype(x.dtype)
        if fused_ops.available(x):
            return fused_ops.rotary(x, cos, sin)
        turned = paddle.matmul(x.reshape([-1, self.head_size]), self.quarter_turn.astype(x.dtype))
        turned = turned.reshape(paddle.shape(x))
        return x * broadcast_as(cos[None, :, None, :], x) + turned * broadcast_as(sin[None, :, None, :], x)


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
        self.scale = config.head_size**-0.5
        self.query = Linear(hidden, hidden)
        self.key = Linear(hidden, hidden)
        self.query_att = Linear(hidden, heads)
        self.key_att = Linear(hidden, heads)
        self.transform = Linear(hidden, hidden)
        self.output = Linear(hidden, hidden)
        self.weights_dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
        query = self.query(hidden_states)  # b n D
        key = self.key(hidden_states)
        query_heads = split_heads(query, self.num_heads)  # b n h d
        global_query = additive_pool(self.query_att(query), self.scale, token_mask, query_heads, self.weights_dropout)
        mixed = scale_tokens(key, merge_heads(global_query))  # p = q_g * k: b n D
        global_key = additive_pool(
            self.key_att(mixed), self.scale, token_mask, split_heads(mixed, self.num_heads), self.weights_dropout
        )  # b 1 h d
        weighted_values = scale_tokens(query, merge_heads(global_key))  # u = k_g * q (query = value)
        return self.output(self.transform(weighted_values, residual=query))


class LucidrainsAdditiveAttention(nn.Layer):
    """fast-transformer-pytorch 0.0.4: separate v, head-shared score vectors, global key from raw k.

    ``to_q_attn_logits`` and ``to_k_attn_logits`` are passed in so that one pair serves every layer
    (tied, as in the reference). With rotary positions, q, k and v are rotated for the aggregations
    and the key/value products are reduced by summing adjacent feature pairs.
    """

    def __init__(
        self,
        config: FastformerConfig,
        to_q_attn_logits: nn.Linear,
        to_k_attn_logits: nn.Linear,
        rotary: Optional[RotaryEmbedding],
    ):
        super().__init__()
        heads, head_size = config.num_attention_heads, config.head_size
        reduced = head_size // 2 if rotary is not None else head_size
        self.num_heads = heads
        self.scale = head_size**-0.5
        self.to_qkv = Linear(config.hidden_size, 3 * heads * head_size, bias_attr=False)
        self.to_q_attn_logits = to_q_attn_logits
        self.to_k_attn_logits = to_k_attn_logits
        self.to_r = Linear(reduced, head_size)
        self.to_out = Linear(heads * head_size, config.hidden_size)
        self.rotary = rotary
        self.weights_dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
        qkv = split_heads(self.to_qkv(hidden_states), 3 * self.num_heads)  # b n (3 h) d
        query, key, value = qkv.chunk(3, axis=2)
        if self.rotary is not None:
            query_aggr, key_aggr, value_aggr = self.rotary(qkv).chunk(3, axis=2)  # one rotation for all three
        else:
            query_aggr, key_aggr, value_aggr = query, key, value

        query_logits = self.to_q_attn_logits(query).squeeze(-1)  # b n h
        global_query = additive_pool(query_logits, self.scale, token_mask, query_aggr, self.weights_dropout)  # b 1 h d

        biased_key = scale_tokens(key, global_query)
        if self.rotary is not None:
            biased_key = sum_adjacent_pairs(biased_key)
        key_logits = self.to_k_attn_logits(biased_key).squeeze(-1)
        global_key = additive_pool(key_logits, self.scale, token_mask, key_aggr, self.weights_dropout)  # raw keys, not k'

        weighted_values = scale_tokens(value_aggr, global_key)
        if self.rotary is not None:
            weighted_values = sum_adjacent_pairs(weighted_values)
        return self.to_out(merge_heads(self.to_r(weighted_values, residual=query)))


class SoftmaxSelfAttention(nn.Layer):
    """Standard multi-head scaled dot-product self-attention: the quadratic baseline (attention_type="softmax")."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.attention = nn.MultiHeadAttention(
            config.hidden_size, config.num_attention_heads, dropout=config.attention_probs_dropout_prob
        )

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
        keep = token_mask.squeeze(-1).unsqueeze([1, 2])  # b 1 1 n: every query may attend to real keys
        return self.attention(hidden_states, attn_mask=keep)


# ----------------------------------------------------------------------------------------------
# block, embeddings, pooler
# ----------------------------------------------------------------------------------------------
class FastformerLayer(nn.Layer):
    """Attention and feed-forward, each a residual branch: post-LN (official) or pre-LN (lucidrains)."""

    def __init__(self, config: FastformerConfig, attention: nn.Layer):
        super().__init__()
        self.pre_norm = config.formulation == "lucidrains"
        self.attention = attention
        self.attention_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.ffn_in = Linear(config.hidden_size, config.intermediate_size)
        self.activation = config.hidden_act
        self.ffn_out = Linear(config.intermediate_size, config.hidden_size)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def feed_forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.ffn_out(self.ffn_in(x, activation=self.activation))

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
        if self.pre_norm:
            attended = self.attention(layer_norm(self.attention_norm, hidden_states), token_mask)
            hidden_states = hidden_states + self.dropout(attended)
            return hidden_states + self.dropout(self.feed_forward(layer_norm(self.ffn_norm, hidden_states)))
        attended = self.dropout(self.attention(hidden_states, token_mask))
        hidden_states = layer_norm(self.attention_norm, hidden_states, attended)
        return layer_norm(self.ffn_norm, hidden_states, self.dropout(self.feed_forward(hidden_states)))


class FastformerEmbeddings(nn.Layer):
    """Token embeddings, plus learned absolute positions; LayerNorm only in the official formulation."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        official = config.formulation == "official"
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id if official else None
        )
        self.position_embeddings = None
        if config.position_embedding_type == "absolute":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps) if official else None
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: paddle.Tensor) -> paddle.Tensor:
        embeddings = self.word_embeddings(input_ids)
        if self.position_embeddings is not None:
            positions = paddle.arange(paddle.shape(input_ids)[1], dtype="int64")
            embeddings = embeddings + broadcast_as(self.position_embeddings(positions).unsqueeze(0), embeddings)
        if self.layer_norm is not None:
            embeddings = layer_norm(self.layer_norm, embeddings)
        return self.dropout(embeddings)


class FastformerPooler(nn.Layer):
    """Additive-attention pooling of the last layer (the authors' ``AttentionPooling``).

    weights = exp(att_fc2(tanh(att_fc1(h)))) on real tokens, normalised with +1e-8, so a row with no
    real token pools to the zero vector. att_fc2's bias shifts every score equally and cancels in the
    normalisation: its true gradient is ~0 (see tests/test_alignment.py).
    """

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.att_fc1 = Linear(config.hidden_size, config.hidden_size)
        self.att_fc2 = Linear(config.hidden_size, 1)

    def forward(self, hidden_states: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
        weights = paddle.exp(self.att_fc2(paddle.tanh(self.att_fc1(hidden_states))))  # b n 1
        weights = weights * token_mask.astype(weights.dtype)
        weights = weights / (weights.sum(axis=1, keepdim=True) + 1e-8)
        return (broadcast_as(weights, hidden_states) * hidden_states).sum(axis=1)  # b D


# ----------------------------------------------------------------------------------------------
# PretrainedModel base, base model, heads
# ----------------------------------------------------------------------------------------------
class FastformerPretrainedModel(PretrainedModel):
    """Ties Fastformer to PaddleNLP's save/load machinery and initialises weights as the authors do."""

    config_class = FastformerConfig
    base_model_prefix = "fastformer"
    pretrained_init_configuration = {}
    pretrained_resource_files_map = {"model_state": {}}

    def _init_weights(self, layer: nn.Layer) -> None:
        """Linear/Embedding weights N(0, initializer_range), biases 0, LayerNorm 1/0, padding row 0."""
        std = self.config.initializer_range
        if isinstance(layer, (nn.Linear, nn.Embedding)):
            layer.weight.set_value(paddle.normal(0.0, std, layer.weight.shape).astype(layer.weight.dtype))
            if isinstance(layer, nn.Embedding) and layer._padding_idx is not None:
                with paddle.no_grad():
                    layer.weight[layer._padding_idx] = 0.0
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            layer.bias.set_value(paddle.zeros_like(layer.bias))
        elif isinstance(layer, nn.LayerNorm):
            layer.weight.set_value(paddle.ones_like(layer.weight))
            layer.bias.set_value(paddle.zeros_like(layer.bias))


def _build_attention_layers(config: FastformerConfig) -> nn.LayerList:
    if config.formulation == "official":
        attention_class = SoftmaxSelfAttention if config.attention_type == "softmax" else OfficialAdditiveAttention
        return nn.LayerList([FastformerLayer(config, attention_class(config)) for _ in range(config.num_hidden_layers)])
    # fast-transformer-pytorch ties its score projections and its rotary table across layers.
    head_size = config.head_size
    rotary = RotaryEmbedding(head_size, head_size // 2) if config.position_embedding_type == "rotary" else None
    key_score_size = head_size // 2 if rotary is not None else head_size
    to_q_attn_logits = Linear(head_size, 1, bias_attr=False)
    to_k_attn_logits = Linear(key_score_size, 1, bias_attr=False)
    return nn.LayerList(
        [
            FastformerLayer(config, LucidrainsAdditiveAttention(config, to_q_attn_logits, to_k_attn_logits, rotary))
            for _ in range(config.num_hidden_layers)
        ]
    )


@register_base_model
class FastformerModel(FastformerPretrainedModel):
    """Embeddings, Fastformer blocks and (optionally) the additive-attention pooler.

    Args:
        config (FastformerConfig): the model configuration.
        add_pooling_layer (bool): build the pooler (task heads that work per token skip it).
    """

    def __init__(self, config: FastformerConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.pad_token_id = config.pad_token_id
        self.max_positions = config.max_position_embeddings
        self.embeddings = FastformerEmbeddings(config)
        self.layers = _build_attention_layers(config)
        self.pooler = FastformerPooler(config) if add_pooling_layer else None

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: paddle.Tensor,
        attention_mask: Optional[paddle.Tensor] = None,
        output_hidden_states: bool = False,
        return_dict: bool = False,
    ):
        r"""
        Args:
            input_ids (Tensor): token ids, int [B, N].
            attention_mask (Tensor, optional): [B, N], 1 (or True) for real tokens, 0 for padding; any
                integer, float or bool dtype. Defaults to ``input_ids != pad_token_id``.
            output_hidden_states (bool): also return the embeddings and every block's output.
            return_dict (bool): return a ``BaseModelOutputWithPooling`` instead of a tuple.

        Returns:
            ``(sequence_output [B, N, D], pooled_output [B, D] or None[, hidden_states])``.
        """
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, seq_len], got shape {input_ids.shape}")
        # Only eager mode knows the length; an exported graph takes any length up to the table's size.
        if paddle.in_dynamic_mode() and input_ids.shape[1] > self.max_positions:
            raise ValueError(
                f"input_ids has {input_ids.shape[1]} tokens, more than max_position_embeddings={self.max_positions}"
            )
        if attention_mask is None:
            token_mask = (input_ids != self.pad_token_id).unsqueeze(-1)
        else:
            if attention_mask.ndim != 2:
                raise ValueError(f"attention_mask must be [batch, seq_len], got shape {attention_mask.shape}")
            token_mask = attention_mask.astype("bool").unsqueeze(-1)  # b n 1

        hidden_states = self.embeddings(input_ids)
        all_hidden_states = [hidden_states] if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states, token_mask)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
        pooled_output = self.pooler(hidden_states, token_mask) if self.pooler is not None else None

        if return_dict:
            return BaseModelOutputWithPooling(
                last_hidden_state=hidden_states,
                pooler_output=pooled_output,
                hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            )
        outputs = (hidden_states, pooled_output)
        return outputs + (tuple(all_hidden_states),) if output_hidden_states else outputs


def token_cross_entropy(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """Mean cross-entropy over the tokens whose label is not -100.

    Written out because Paddle's ``cross_entropy(..., ignore_index=-100)`` with mean reduction divides
    by all tokens, ignored ones included (PyTorch and PaddleNLP users expect the mean over labelled tokens).
    """
    labels = labels.reshape([-1]).astype("int64")
    per_token = F.cross_entropy(logits.reshape([-1, logits.shape[-1]]), labels, ignore_index=-100, reduction="none")
    labelled = (labels != -100).astype(per_token.dtype)
    return per_token.reshape([-1]).sum() / labelled.sum().clip(min=1.0)


def _task_outputs(output_cls, loss, logits, base_outputs, return_dict):
    """PaddleNLP's head return convention: logits alone, or (loss, logits), or an output object."""
    hidden_states = base_outputs[2] if len(base_outputs) > 2 else None
    if return_dict:
        return output_cls(loss=loss, logits=logits, hidden_states=hidden_states)
    outputs = (logits,) if hidden_states is None else (logits, hidden_states)
    if loss is not None:
        outputs = (loss,) + outputs
    return outputs[0] if len(outputs) == 1 else outputs


class FastformerForSequenceClassification(FastformerPretrainedModel):
    """Pooled vector -> Linear(hidden, num_labels); cross-entropy loss when labels are given.

    As in the authors' model, the classifier reads the pooler output directly (no extra dropout).
    """

    def __init__(self, config: FastformerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.fastformer = FastformerModel(config)
        self.classifier = Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states=False, return_dict=False):
        outputs = self.fastformer(input_ids, attention_mask, output_hidden_states=output_hidden_states)
        logits = self.classifier(outputs[1])
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, labels.reshape([-1]).astype("int64"))
        return _task_outputs(SequenceClassifierOutput, loss, logits, outputs, return_dict)


class FastformerForTokenClassification(FastformerPretrainedModel):
    """Per-token dropout + Linear(hidden, num_labels); loss over labels != -100."""

    def __init__(self, config: FastformerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.fastformer = FastformerModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states=False, return_dict=False):
        outputs = self.fastformer(input_ids, attention_mask, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(outputs[0]))
        loss = None
        if labels is not None:
            loss = token_cross_entropy(logits, labels)
        return _task_outputs(TokenClassifierOutput, loss, logits, outputs, return_dict)


class FastformerLMHead(nn.Layer):
    """fast-transformer-pytorch's ``to_logits``: LayerNorm then a projection onto the vocabulary."""

    def __init__(self, config: FastformerConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.decoder = Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: paddle.Tensor) -> paddle.Tensor:
        return self.decoder(layer_norm(self.layer_norm, hidden_states))


class FastformerForMaskedLM(FastformerPretrainedModel):
    """Per-token vocabulary logits; cross-entropy over labels != -100 when labels are given."""

    def __init__(self, config: FastformerConfig):
        super().__init__(config)
        self.fastformer = FastformerModel(config, add_pooling_layer=False)
        self.lm_head = FastformerLMHead(config)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states=False, return_dict=False):
        outputs = self.fastformer(input_ids, attention_mask, output_hidden_states=output_hidden_states)
        logits = self.lm_head(outputs[0])
        loss = None
        if labels is not None:
            loss = token_cross_entropy(logits, labels)
        return _task_outputs(MaskedLMOutput, loss, logits, outputs, return_dict)
