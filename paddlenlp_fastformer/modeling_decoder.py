"""Fastformer that writes: the decoder heads, which generate through PaddleNLP's ``generate()``.

A decoder is a :class:`~.modeling.FastformerModel` with ``config.is_decoder``: every block attends causally
(each position to itself and the positions before it; how, per formulation, is in :mod:`.layers`), and a
:class:`~.outputs.DecoderCache` carries the state from one call to the next. For additive attention that
state is two pools per block, a fixed size whatever the length, so each new token costs the same; the
softmax baseline keeps every key and value (a KV cache), so its cost per token grows with the length.
"""
from __future__ import annotations

import copy
from typing import Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.generation import GenerationMixin
from paddlenlp.transformers.model_outputs import CausalLMOutputWithCrossAttentions, Seq2SeqLMOutput

from .auto_registration import register_with_paddlenlp_auto
from .configuration import FastformerConfig, FastformerConfigError
from .kernels.fused_ops import FlatLinear
from .layers import FastformerLMHead, merge_heads, split_heads
from .pooling import MASKED_SCORE, AdditivePooling
from .modeling import FastformerModel, FastformerPretrainedModel, VocabularyHeadMixin, token_cross_entropy
from .outputs import DecoderCache

__all__ = [
    "FastformerForCausalLM", "FastformerForConditionalGeneration", "SoftmaxCrossAttention", "AdditiveCrossAttention",
    "reorder_decoder_cache",
]  # fmt: skip


def reorder_decoder_cache(cache, rows: paddle.Tensor):
    """Every tensor of a (nested) cache with its batch rows taken in the order of ``rows`` (beam search)."""
    if isinstance(cache, paddle.Tensor):
        return paddle.index_select(cache, rows, axis=0)
    if cache is None:
        return None
    parts = [reorder_decoder_cache(part, rows) for part in cache]
    return type(cache)(*parts) if hasattr(cache, "_fields") else type(cache)(parts)


class _GenerationHooks:
    """What PaddleNLP's ``generate()`` asks of both decoder heads, beyond ``prepare_inputs_for_generation``."""

    @staticmethod
    def prepare_attention_mask_for_generation(input_ids, pad_token_id, eos_token_id):
        """The first attention mask: [B, N], 1 for real tokens (PaddleNLP's default is an additive [B, 1, 1, N]
        one, which these models do not take). As PaddleNLP does, an end token that doubles as padding is real."""
        if pad_token_id is None or pad_token_id == eos_token_id:
            return paddle.ones_like(input_ids, dtype="int64")
        return (input_ids != pad_token_id).astype("int64")

    @staticmethod
    def reorder_cache(cache, beam_idx):
        return reorder_decoder_cache(cache, beam_idx)

    @staticmethod
    def update_model_kwargs_for_generation(outputs, model_kwargs, is_encoder_decoder=False):
        """PaddleNLP's update, keeping the cache under ``cache`` alone: beam search reorders every key it finds,
        and the same cache under ``past_key_values`` too would be reordered twice per step."""
        model_kwargs = GenerationMixin.update_model_kwargs_for_generation(outputs, model_kwargs, is_encoder_decoder)
        model_kwargs.pop("past_key_values", None)
        return model_kwargs


def _decoder_config(config: FastformerConfig) -> FastformerConfig:
    """A causal copy of ``config`` (a decoder always is); the caller's config is left as it was."""
    config = copy.deepcopy(config)
    config.is_decoder = True
    config._validate()
    return config


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


class FastformerForCausalLM(_GenerationHooks, VocabularyHeadMixin, FastformerPretrainedModel):
    """Decoder-only language model: a causal FastformerModel, then the LM head (LayerNorm and a projection onto
    the vocabulary, the word-embedding matrix itself with ``tie_word_embeddings``). Predicts each next token.
    """

    def __init__(self, config: FastformerConfig):
        config = _decoder_config(config)
        super().__init__(config)
        self.fastformer = FastformerModel(config, add_pooling_layer=False)
        self.lm_head = FastformerLMHead(config)
        self.tie_weights()

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
                scored against ``labels[:, t + 1]`` (the shift happens here); -100 and padding are left out.
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
                ids, scores = model.generate(paddle.to_tensor([[2, 5, 6]]), max_new_tokens=8)  # greedy
        """
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        if attention_mask is not None and attention_mask.ndim == 2 and attention_mask.shape[1] > length:
            attention_mask = attention_mask[:, -length:]
        base = self.fastformer(
            input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions, True, cache, use_cache
        )
        logits = self.lm_head(base.last_hidden_state)
        loss = None
        if labels is not None:
            if attention_mask is not None:  # padding is never a target
                labels = paddle.where(attention_mask.astype("bool"), labels, paddle.full_like(labels, -100))
            loss = token_cross_entropy(logits[:, :-1], labels[:, 1:])
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



# ----------------------------------------------------------------------------------------------
# the encoder-decoder
# ----------------------------------------------------------------------------------------------
class FastformerForConditionalGeneration(_GenerationHooks, VocabularyHeadMixin, FastformerPretrainedModel):
    """Encoder-decoder: a Fastformer encoder (``fastformer``: a pretrained encoder loads into it), a causal
    Fastformer decoder whose blocks also read the encoder (``config.cross_attention_type``), and the LM head.
    The decoder has its own word and position embeddings. ``generate(input_ids=source ids)`` writes the target.
    """

    def __init__(self, config: FastformerConfig):
        config = copy.deepcopy(config)
        config.is_encoder_decoder = True
        start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
        if start is not None and start == config.pad_token_id:
            raise FastformerConfigError(
                "decoder_start_token_id", f"got {start}, the padding id: the decoder would read its start token as "
                "padding; expected another token (a vocabulary of build_from_corpus has [CLS] = 2)", ("pad_token_id",),
            )  # fmt: skip
        super().__init__(config)
        encoder_config = copy.deepcopy(config)
        encoder_config.is_decoder = False
        self.fastformer = FastformerModel(encoder_config, add_pooling_layer=False)
        decoder_config = _decoder_config(copy.deepcopy(config))
        self.decoder = FastformerModel(decoder_config, add_pooling_layer=False, cross_attention=CROSS_ATTENTIONS[config.cross_attention_type])
        self.lm_head = FastformerLMHead(config)
        self.tie_weights()  # with tie_word_embeddings, the head is the decoder's word embeddings

    def get_input_embeddings(self) -> nn.Embedding:
        """The decoder's word embeddings: those the output head scores against (the encoder has its own)."""
        return self.decoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.decoder.set_input_embeddings(value)

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None) -> nn.Embedding:
        """Resize the decoder's word embeddings and the output head, and the encoder's word embeddings with them."""
        embeddings = super().resize_token_embeddings(new_num_tokens)
        encoder_embeddings = self.fastformer.get_input_embeddings()
        size = embeddings.weight.shape[0]
        if encoder_embeddings.weight.shape[0] != size:
            self.fastformer.set_input_embeddings(self._get_resized_embeddings(encoder_embeddings, size))
        for config in (self.config, self.fastformer.config, self.decoder.config):  # each holds its own copy
            config.vocab_size = size
        return embeddings

    def get_encoder(self):
        """What ``generate()`` encodes the source with: the encoder's last states [B, M, D]."""

        def encode(input_ids=None, attention_mask=None, inputs_embeds=None, **unused):
            return self.fastformer(input_ids, attention_mask, inputs_embeds, return_dict=True).last_hidden_state

        return encode

    def shift_right(self, labels: paddle.Tensor) -> paddle.Tensor:
        """The decoder's input for ``labels``: the start token, then the labels but the last (-100 read as padding)."""
        start = self.config.decoder_start_token_id if self.config.decoder_start_token_id is not None else self.config.bos_token_id
        if start is None:
            raise ValueError("set config.decoder_start_token_id (or bos_token_id): the token the decoder starts from")
        shifted = paddle.concat([paddle.full_like(labels[:, :1], start), labels[:, :-1]], axis=1)
        return paddle.where(shifted == -100, paddle.full_like(shifted, self.config.pad_token_id), shifted)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        encoder_output=None,
        labels=None,
        cache: Optional[DecoderCache] = None,
        use_cache: bool = False,
        return_dict=False,
    ):
        r"""
        Args:
            input_ids (Tensor, optional): source token ids [B, M]; not needed with ``encoder_output`` or ``cache``.
            attention_mask (Tensor, optional): the source's real-token mask [B, M]; defaults to ``input_ids !=
                pad_token_id``, or to all real with ``encoder_output``.
            decoder_input_ids (Tensor, optional): target ids read so far [B, N]; defaults to ``labels`` shifted
                right behind the start token (teacher forcing).
            decoder_attention_mask (Tensor, optional): their real-token mask; defaults to ``!= pad_token_id``.
            encoder_output (Tensor, optional): the encoder's states [B, M, D], when already computed.
            labels (Tensor, optional): target ids [B, N] (-100 left out); the loss compares position t's logits
                with ``labels[:, t]``.
            cache (DecoderCache, optional), use_cache (bool): as in ``FastformerForCausalLM``; the cache also holds
                what cross-attention computed once from the encoder.
            return_dict (bool): return a ``Seq2SeqLMOutput`` instead of a tuple.

        Returns:
            Tensor, tuple or ``Seq2SeqLMOutput``: the logits [B, N, vocab_size] alone, or ``([loss,] logits
            [, cache])``.

        Example:
            .. code-block::

                config = FastformerConfig(vocab_size=100, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2)
                model = FastformerForConditionalGeneration(config)
                loss, logits = model(paddle.to_tensor([[5, 6, 7]]), labels=paddle.to_tensor([[8, 9, 3]]))
                ids, scores = model.generate(paddle.to_tensor([[5, 6, 7]]), decode_strategy="beam_search", num_beams=4)
        """
        if attention_mask is None and input_ids is not None:
            attention_mask = input_ids != self.config.pad_token_id
        if encoder_output is None and cache is None:  # a cache holds what cross-attention needs of the encoder
            encoder_output = self.get_encoder()(input_ids, attention_mask)
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("give decoder_input_ids, or labels to read them from (teacher forcing)")
            decoder_input_ids = self.shift_right(labels)
        base = self.decoder(
            decoder_input_ids, decoder_attention_mask, None, False, False, True, cache, use_cache, encoder_output, attention_mask
        )
        logits = self.lm_head(base.last_hidden_state)
        loss = None if labels is None else token_cross_entropy(logits, labels)
        if return_dict:
            return Seq2SeqLMOutput(loss=loss, logits=logits, past_key_values=base.past_key_values, encoder_last_hidden_state=encoder_output)
        outputs = (logits,) + ((base.past_key_values,) if base.past_key_values is not None else ())
        outputs = ((loss,) if loss is not None else ()) + outputs
        return outputs[0] if len(outputs) == 1 else outputs

    def prepare_inputs_for_generation(self, decoder_input_ids, encoder_output=None, attention_mask=None, cache=None, use_cache=True, **kwargs):
        """PaddleNLP's generation hook: the source stays encoded; with a cache, only the newest target token goes in."""
        if cache is not None:
            decoder_input_ids = decoder_input_ids[:, -1:]
        return {
            "decoder_input_ids": decoder_input_ids, "encoder_output": encoder_output, "attention_mask": attention_mask,
            "cache": cache, "use_cache": use_cache,
        }  # fmt: skip


register_with_paddlenlp_auto(__name__)
