"""The output objects of the Fastformer models: PaddleNLP's, plus the weights Fastformer attends with.

Fastformer has no token-by-token attention map: each block pools the tokens twice by additive
attention (into the global query, then the global key), and the classifier pools the last block's
states once more. Those weights over tokens are what ``output_attentions=True`` returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import paddle
from paddlenlp.transformers.model_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput


__all__ = ["DecoderCache", "FastformerModelOutput", "FastformerSequenceClassifierOutput"]


class DecoderCache(NamedTuple):
    """What a causal Fastformer keeps between decoding steps: per block, its attention's cache (additive
    attention: the pools of the global query and the global key, a fixed size whatever the length; softmax
    attention: every key and value so far), and per row how many real tokens it has seen (the next one's
    position)."""

    layers: tuple
    seen: paddle.Tensor  # b, int64


@dataclass
class FastformerModelOutput(BaseModelOutputWithPooling):
    """``BaseModelOutputWithPooling`` with the weights of additive attention.

    Args:
        last_hidden_state (Tensor): the last block's output [B, N, D].
        pooler_output (Tensor): the additive-attention pooled vector [B, D], or None without a pooler.
        hidden_states (tuple of Tensor, optional): the embeddings and each block's output, [B, N, D] each.
        attentions (tuple of Tensor, optional): one tensor per block. Fastformer: [B, 2, H, N], the
            weights over tokens of the global query (index 0 on axis 1) and of the global key (index 1),
            softmax over each sequence's real tokens; the softmax baseline: its [B, H, N, N] maps. In causal
            mode (decoders), [B, 2, H, N, N]: row t holds the weights position t pools the tokens up to it with.
            Padding always gets exactly 0.
        pooler_attentions (Tensor, optional): the pooler's token weights [B, N], summing to 1 over real
            tokens, 0 on padding.
        past_key_values (DecoderCache, optional): a causal model's state after these tokens, with ``use_cache``.
    """

    pooler_attentions: Optional[paddle.Tensor] = None
    past_key_values: Optional[DecoderCache] = None


@dataclass
class FastformerSequenceClassifierOutput(SequenceClassifierOutput):
    """``SequenceClassifierOutput`` with the pooler's token weights [B, N] (see :class:`FastformerModelOutput`)."""

    pooler_attentions: Optional[paddle.Tensor] = None
