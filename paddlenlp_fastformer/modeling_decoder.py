"""Fastformer that writes: the decoder heads, which generate through PaddleNLP's ``generate()``.

A decoder is a :class:`~.modeling.FastformerModel` with ``config.is_decoder``: every block attends causally
(each position to itself and the positions before it; how, per formulation, is in :mod:`.layers`), and a
:class:`~.outputs.DecoderCache` carries the state from one call to the next. For additive attention that
state is two pools per block, a fixed size whatever the length, so each new token costs the same; the
softmax baseline keeps every key and value (a KV cache), so its cost per token grows with the length.
"""
from __future__ import annotations

from typing import Optional

import paddle
from paddlenlp.transformers.model_outputs import CausalLMOutputWithCrossAttentions

from .configuration import FastformerConfig
from .modeling import FastformerLMHead, FastformerModel, FastformerPretrainedModel, token_cross_entropy
from .outputs import DecoderCache

__all__ = ["FastformerForCausalLM", "reorder_decoder_cache"]


def reorder_decoder_cache(cache, rows: paddle.Tensor):
    """Every tensor of a (nested) cache with its batch rows taken in the order of ``rows`` (beam search)."""
    if isinstance(cache, paddle.Tensor):
        return paddle.index_select(cache, rows, axis=0)
    if cache is None:
        return None
    parts = [reorder_decoder_cache(part, rows) for part in cache]
    return type(cache)(*parts) if hasattr(cache, "_fields") else type(cache)(parts)


def _decoder_config(config: FastformerConfig) -> FastformerConfig:
    """``config``, made causal: a decoder head always is."""
    if not config.is_decoder:
        config.is_decoder = True
        config._validate()
    return config


class FastformerForCausalLM(FastformerPretrainedModel):
    """Decoder-only language model: a causal FastformerModel, then the LM head (LayerNorm and a projection onto
    the vocabulary, the word-embedding matrix itself with ``tie_word_embeddings``). Predicts each next token.
    """

    def __init__(self, config: FastformerConfig):
        super().__init__(_decoder_config(config))
        self.fastformer = FastformerModel(config, add_pooling_layer=False)
        self.lm_head = FastformerLMHead(config)
        self.tie_weights()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        labels=None,
        inputs_embeds=None,
        cache: Optional[DecoderCache] = None,
        use_cache: bool = False,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=False,
    ):
        r"""
        Args:
            input_ids, inputs_embeds, output_hidden_states, output_attentions: as in ``FastformerModel.forward``.
            attention_mask (Tensor, optional): 1 for real tokens, 0 for padding: [B, N] for these tokens, or
                [B, past + N] for every token so far (as ``generate()`` passes it; the last N columns are used).
            labels (Tensor, optional): int [B, N], usually the input ids themselves; position t's logits are
                scored against ``labels[:, t + 1]`` (the shift happens here), -100 left out.
            cache (DecoderCache, optional): the state after the tokens before these.
            use_cache (bool): also return the state after these tokens.
            return_dict (bool): return a ``CausalLMOutputWithCrossAttentions`` instead of a tuple.

        Returns:
            Tensor, tuple or ``CausalLMOutputWithCrossAttentions``: the next-token logits [B, N, vocab_size]
            alone, or ``([loss,] logits[, cache][, hidden_states][, attentions])``; the loss is the mean
            cross-entropy over the labelled next tokens.

        Example:
            .. code-block::

                model = FastformerForCausalLM(FastformerConfig(vocab_size=100, bos_token_id=2, eos_token_id=3))
                ids, scores = model.generate(paddle.to_tensor([[2, 5, 6]]), max_length=8)  # greedy, 8 new tokens at most
        """
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if attention_mask is not None and attention_mask.ndim == 2 and attention_mask.shape[1] > length:
            attention_mask = attention_mask[:, -length:]
        base = self.fastformer(
            input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions, True, cache, use_cache
        )
        logits = self.lm_head(base.last_hidden_state)
        loss = None if labels is None else token_cross_entropy(logits[:, :-1], labels[:, 1:])
        if return_dict:
            return CausalLMOutputWithCrossAttentions(
                loss=loss, logits=logits, past_key_values=base.past_key_values,
                hidden_states=base.hidden_states, attentions=base.attentions,
            )  # fmt: skip
        outputs = (logits,) + tuple(v for v in (base.past_key_values, base.hidden_states, base.attentions) if v is not None)
        outputs = ((loss,) if loss is not None else ()) + outputs
        return outputs[0] if len(outputs) == 1 else outputs

    def prepare_inputs_for_generation(self, input_ids, cache=None, attention_mask=None, use_cache=True, **kwargs):
        """PaddleNLP's generation hook: with a cache, only the newest token goes in."""
        if cache is not None:
            input_ids = input_ids[:, -1:]
        return {"input_ids": input_ids, "attention_mask": attention_mask, "cache": cache, "use_cache": use_cache}

    @staticmethod
    def prepare_attention_mask_for_generation(input_ids, pad_token_id, eos_token_id):
        """A [B, N] 1/0 mask (PaddleNLP's default is an additive [B, 1, 1, N] one, which this model does not take)."""
        if pad_token_id is None:
            return paddle.ones_like(input_ids, dtype="int64")
        return (input_ids != pad_token_id).astype("int64")

    @staticmethod
    def reorder_cache(cache, beam_idx):
        return reorder_decoder_cache(cache, beam_idx)
