"""Fastformer ("Fastformer: Additive Attention Can Be All You Need", arXiv 2108.09084) as PaddleNLP models.

The ``PretrainedModel`` base, the base model (embeddings, Fastformer blocks, additive-attention
pooler: the layers of :mod:`.layers`, where the paper's equations are) and the task heads.
Shapes: B batch, N tokens, D hidden, H heads, d features per head.
"""
from __future__ import annotations

import os
from typing import Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.transformers.model_outputs import MaskedLMOutput, TokenClassifierOutput
from paddlenlp.transformers.model_utils import PretrainedModel, register_base_model

from . import serialization
from .auto_registration import register_with_paddlenlp_auto
from .configuration import FastformerConfig
from .kernels.fused_ops import Dropout, FlatLinear
from .layers import FastformerEmbeddings, FastformerLMHead, FastformerPooler, VocabularyProjection, build_layers
from .outputs import DecoderCache, FastformerModelOutput, FastformerSequenceClassifierOutput
from .pooling import PackedTexts

__all__ = [
    "FastformerPretrainedModel",
    "FastformerModel",
    "FastformerForSequenceClassification",
    "FastformerForTokenClassification",
    "FastformerForMaskedLM",
    "FastformerForCausalLM",
    "FastformerForConditionalGeneration",
]


# ----------------------------------------------------------------------------------------------
# PretrainedModel base, base model, heads
# ----------------------------------------------------------------------------------------------
class FastformerPretrainedModel(PretrainedModel):
    """Ties Fastformer to PaddleNLP's save/load machinery and initialises weights as the authors do.

    Saving writes safetensors by default. Loading never unpickles code, and refuses weights that do not
    fit the model (:mod:`.serialization`): PaddleNLP's own loader would run a crafted ``.pdparams`` and
    only warn about a missing or misshapen weight.
    """

    config_class = FastformerConfig
    base_model_prefix = "fastformer"
    pretrained_init_configuration = {}
    pretrained_resource_files_map = {"model_state": {}}

    def save_pretrained(self, save_dir, *args, safe_serialization: bool = True, **kwargs):
        """PaddleNLP's ``save_pretrained``, writing ``model.safetensors`` (arrays only) unless told otherwise."""
        return super().save_pretrained(save_dir, *args, safe_serialization=safe_serialization, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """PaddleNLP's ``from_pretrained``, after checking a local directory without running anything in it.

        Raises:
            CheckpointError: unreadable ``config.json``, a weights file that is damaged or would run code,
                a vocabulary whose size differs from the config's; then (while loading) weights whose
                shapes differ from the config's, missing weights, non-finite values.
        """
        if os.path.isdir(str(pretrained_model_name_or_path)):
            serialization.check_pretrained_dir(str(pretrained_model_name_or_path), kwargs.get("use_safetensors"))
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def support_conversion(cls, config: FastformerConfig) -> bool:
        """Whether a PyTorch checkpoint converts into this configuration: both public formulations do, the
        softmax baseline has no public PyTorch twin. (PaddleNLP's default would build a model to find out,
        on every ``from_pretrained``.)"""
        return config.attention_type == "additive"

    @classmethod
    def _get_name_mappings(cls, config: FastformerConfig) -> list:
        """PaddleNLP's conversion hook: PyTorch key -> Paddle key (and "transpose" for Linear weights).

        The PyTorch checkpoint is of ``config.formulation``: fast-transformer-pytorch's masked LM
        (lucidrains) or the authors' classifier (official); the mapping table is that of
        ``tools/convert_torch_checkpoint.py`` (:mod:`.conversion`).
        """
        from . import conversion

        with paddle.utils.unique_name.guard():  # a model built only to read its weight names takes none of the process's
            return conversion.name_mappings(config.formulation, conversion.head_for(config.formulation, config))

    @classmethod
    def convert(cls, weight_file: str, config: FastformerConfig, cache_dir: str) -> dict:
        """``from_pretrained(dir, convert_from_torch=True)``: the weights of a PyTorch checkpoint in ``dir``.

        Read with ``torch.load(weights_only=True)`` and converted through :meth:`_get_name_mappings` with
        every check of the converter tool (one-line ``ConversionError``s). Nothing is written to ``dir``;
        ``save_pretrained`` keeps a Paddle copy.
        """
        from . import conversion

        state_dict = conversion.load_torch_state_dict(weight_file)
        with paddle.utils.unique_name.guard():
            head = conversion.head_for(config.formulation, config)
        arrays = conversion.convert_arrays(config.formulation, state_dict, head)
        return {key: paddle.to_tensor(value) for key, value in arrays.items()}

    @classmethod
    def _load_pretrained_model(cls, model, state_dict, loaded_keys, resolved_archive_file, pretrained_model_name_or_path, **kwargs):
        if state_dict is not None:
            architectures = getattr(kwargs.get("config"), "architectures", None)
            serialization.check_state_fits(model, state_dict, str(resolved_archive_file), architectures)
        return super()._load_pretrained_model(
            model, state_dict, loaded_keys, resolved_archive_file, pretrained_model_name_or_path, **kwargs
        )

    def _init_weights(self, layer: nn.Layer) -> None:
        """Linear/Embedding/vocabulary-projection weights N(0, initializer_range), biases 0, LayerNorm 1/0, padding row 0."""
        std = self.config.initializer_range
        if isinstance(layer, VocabularyProjection):
            layer.weight.set_value(paddle.normal(0.0, std, layer.weight.shape).astype(layer.weight.dtype))
            layer.bias.set_value(paddle.zeros_like(layer.bias))
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


@register_base_model
class FastformerModel(FastformerPretrainedModel):
    """Embeddings, Fastformer blocks and (optionally) the additive-attention pooler.

    Args:
        config (FastformerConfig): the model configuration.
        add_pooling_layer (bool): build the pooler (task heads that work per token skip it).
        cross_attention (callable, optional): ``cross_attention(config)`` makes each block's cross-attention to
            an encoder's states (the decoder of ``FastformerForConditionalGeneration``).
    """

    def __init__(self, config: FastformerConfig, add_pooling_layer: bool = True, cross_attention=None):
        super().__init__(config)
        self.pad_token_id = config.pad_token_id
        self.max_positions = config.max_position_embeddings
        self.embeddings = FastformerEmbeddings(config)
        self.layers = build_layers(config, cross_attention)
        self.pooler = FastformerPooler(config) if add_pooling_layer else None
        self.causal = config.is_decoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: Optional[paddle.Tensor] = None,
        attention_mask: Optional[paddle.Tensor] = None,
        inputs_embeds: Optional[paddle.Tensor] = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        return_dict: bool = False,
        cache: Optional[DecoderCache] = None,
        use_cache: bool = False,
        encoder_hidden_states: Optional[paddle.Tensor] = None,
        encoder_attention_mask: Optional[paddle.Tensor] = None,
        segment_ids: Optional[paddle.Tensor] = None,
    ):
        r"""
        Args:
            input_ids (Tensor, optional): token ids, int [B, N]. Exactly one of ``input_ids`` and
                ``inputs_embeds`` is given.
            attention_mask (Tensor, optional): [B, N], 1 (or True) for real tokens, 0 for padding; any
                integer, float or bool dtype. Defaults to ``input_ids != pad_token_id``, or to all tokens
                real with ``inputs_embeds``.
            inputs_embeds (Tensor, optional): token vectors [B, N, D] used instead of looking ``input_ids``
                up (for embedding-level attribution or adversarial training); positions are added as usual.
            output_hidden_states (bool): also return the embeddings and every block's output.
            output_attentions (bool): also return the weights additive attention pools tokens with.
            return_dict (bool): return a :class:`FastformerModelOutput` instead of a tuple.
            cache (DecoderCache, optional): causal mode (``config.is_decoder``): the state after the tokens
                before these (``past_key_values`` of the previous call); these tokens continue them.
            use_cache (bool): causal mode: also return the state after these tokens.
            encoder_hidden_states, encoder_attention_mask (Tensor, optional): with cross-attention, the encoder's
                states [B, M, D] and its real-token mask [B, M] (1 or True for real tokens).
            segment_ids (Tensor, optional): packed texts, with no padding: ``input_ids`` [1, T] holds S texts back
                to back and ``segment_ids`` [1, T] numbers each token's text, 0 to S-1 (each text's tokens
                together, in order). Every text is attended, positioned and pooled on its own, exactly as if it
                were a row of a padded batch with its attention_mask (a pad id inside a packed text counts as
                a token), and the pooled output is [S, D]. Additive attention encoders
                only (not causal, not ``attention_type="softmax"``), without ``attention_mask`` and
                ``output_attentions``.

        Returns:
            tuple or :class:`FastformerModelOutput`: ``(sequence_output, pooled_output[, cache][, hidden_states]
            [, attentions])``: the last block's output [B, N, D]; the additive-attention pooled vector
            [B, D] (None without the pooler); with ``output_hidden_states``, the embeddings and each
            block's output; with ``output_attentions``, each block's attention weights. The pooler's token
            weights are in the output object (``pooler_attentions``).

        Example:
            .. code-block::

                model = FastformerModel(FastformerConfig(vocab_size=100))
                sequence_output, pooled_output = model(paddle.to_tensor([[5, 6, 7, 0]]))
                # sequence_output: [1, 4, 256]; pooled_output: [1, 256] (the padding token 0 is not pooled)
        """
        if self.causal and output_attentions:
            raise ValueError("output_attentions is not available in causal mode: each position pools its own prefix")
        if segment_ids is not None:
            token_mask = self._packed_texts(input_ids, attention_mask, inputs_embeds, segment_ids, output_attentions)
            positions, seen = token_mask.positions, None
        else:
            token_mask = self._token_mask(input_ids, attention_mask, inputs_embeds)
            positions, seen = self._decoder_positions(token_mask, cache) if self.causal else (None, None)
        hidden_states = self.embeddings(input_ids, inputs_embeds, positions)
        all_hidden_states = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        memory = self._memory(encoder_hidden_states, encoder_attention_mask, cache)
        layer_caches = []
        for index, layer in enumerate(self.layers):
            layer_cache = cache.layers[index] if cache is not None else None
            hidden_states, weights, layer_cache = layer(hidden_states, token_mask, output_attentions, layer_cache, positions, memory)
            layer_caches.append(layer_cache)
            for collected, value in ((all_hidden_states, hidden_states), (all_attentions, weights)):
                if collected is not None:
                    collected.append(value)
        pooled_output = pooler_weights = None
        if self.pooler is not None:
            pooled_output, pooler_weights = self.pooler(hidden_states, token_mask)
        output = FastformerModelOutput(
            last_hidden_state=hidden_states,
            pooler_output=pooled_output,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
            pooler_attentions=pooler_weights if output_attentions else None,
            past_key_values=DecoderCache(tuple(layer_caches), seen) if self.causal and use_cache else None,
        )
        if return_dict:
            return output
        extras = tuple(value for value in (output.past_key_values, output.hidden_states, output.attentions) if value is not None)
        return (hidden_states, pooled_output) + extras

    def _memory(self, encoder_hidden_states, encoder_attention_mask, cache):
        """What cross-attention reads, (states [B, M, D], real-token mask [B, M] bool), or None without an encoder."""
        if encoder_hidden_states is None:
            if cache is None and any(layer.cross_attention is not None for layer in self.layers):
                raise ValueError("this decoder reads an encoder: give encoder_hidden_states")
            return None
        mask = encoder_attention_mask if encoder_attention_mask is not None else paddle.ones(encoder_hidden_states.shape[:2])
        return encoder_hidden_states, mask.astype("bool")

    def _decoder_positions(self, token_mask: paddle.Tensor, cache: Optional[DecoderCache]):
        """Causal mode: each real token's position, counting the row's real tokens before it ([B, N]; padding
        takes its neighbour's), and how many real tokens each row has seen after these ([B])."""
        seen = cache.seen if cache is not None else paddle.zeros([token_mask.shape[0]], dtype="int64")
        counts = paddle.cumsum(token_mask.squeeze(-1).astype("int64"), axis=1)  # b n
        positions = (seen.unsqueeze(1) + counts - 1).clip(min=0)
        if paddle.in_dynamic_mode() and int(positions.max()) >= self.max_positions:
            raise ValueError(f"the sequence has grown past max_position_embeddings={self.max_positions} tokens")
        return positions, seen + counts[:, -1]

    @staticmethod
    def _check_tokens(input_ids, inputs_embeds) -> paddle.Tensor:
        """Whichever of ``input_ids`` [B, N] and ``inputs_embeds`` [B, N, D] is given: exactly one must be."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if input_ids is not None and input_ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, seq_len], got shape {input_ids.shape}")
        if inputs_embeds is not None and inputs_embeds.ndim != 3:
            raise ValueError(f"inputs_embeds must be [batch, seq_len, hidden_size], got shape {inputs_embeds.shape}")
        return input_ids if input_ids is not None else inputs_embeds

    def _packed_texts(self, input_ids, attention_mask, inputs_embeds, segment_ids, output_attentions) -> PackedTexts:
        """The layout of texts packed in one row, after checking that this model and these inputs allow it."""
        if self.causal or self.config.attention_type != "additive":
            raise ValueError("segment_ids (packed texts) are for additive attention encoders, not decoders or softmax attention")
        if attention_mask is not None or output_attentions:
            raise ValueError("packed texts have no padding to mask and return no attention weights: drop attention_mask and output_attentions")
        if not paddle.in_dynamic_mode():  # an export: its input specs fix the shapes
            return PackedTexts.from_segment_ids(segment_ids)
        return PackedTexts.from_segment_ids(segment_ids, self._check_tokens(input_ids, inputs_embeds), self.max_positions)

    def _token_mask(self, input_ids, attention_mask, inputs_embeds) -> paddle.Tensor:
        """The real-token mask [B, N, 1] (bool), after checking the inputs' shapes."""
        length = self._check_tokens(input_ids, inputs_embeds).shape[1]
        # Only eager mode knows the length; an exported graph takes any length up to the table's size.
        if paddle.in_dynamic_mode() and length > self.max_positions:
            raise ValueError(f"the input has {length} tokens, more than max_position_embeddings={self.max_positions}")
        if attention_mask is not None:
            if attention_mask.ndim != 2:
                raise ValueError(f"attention_mask must be [batch, seq_len], got shape {attention_mask.shape}")
            return attention_mask.astype("bool").unsqueeze(-1)  # b n 1
        if input_ids is not None:
            return (input_ids != self.pad_token_id).unsqueeze(-1)
        return paddle.ones(inputs_embeds.shape[:2] + [1], dtype="bool")


def token_cross_entropy(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """Mean cross-entropy over the tokens whose label is not -100.

    Written out because Paddle's ``cross_entropy(..., ignore_index=-100)`` with mean reduction divides
    by all tokens, ignored ones included (PyTorch and PaddleNLP users expect the mean over labelled tokens).
    """
    labels = labels.reshape([-1]).astype("int64")
    per_token = F.cross_entropy(logits.reshape([-1, logits.shape[-1]]), labels, ignore_index=-100, reduction="none")
    labelled = (labels != -100).astype(per_token.dtype)
    return per_token.reshape([-1]).sum() / labelled.sum().clip(min=1.0)


def _task_outputs(output_cls, loss, logits, base: FastformerModelOutput, return_dict: bool, **extra):
    """PaddleNLP's head return convention: logits alone, or (loss, logits, ...), or an output object."""
    if return_dict:
        return output_cls(loss=loss, logits=logits, hidden_states=base.hidden_states, attentions=base.attentions, **extra)
    outputs = (logits,) + tuple(value for value in (base.hidden_states, base.attentions) if value is not None)
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
        self.classifier = FlatLinear(config.hidden_size, config.num_labels, config.use_fused_ops)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        labels=None,
        inputs_embeds=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=False,
        segment_ids=None,
    ):
        r"""
        Args:
            input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions, segment_ids: as in
                ``FastformerModel.forward`` (with ``segment_ids``, one row of packed texts gets a row of logits per text).
            labels (Tensor, optional): class ids, int [B] (or [B, 1]); given, the cross-entropy is returned too.
            return_dict (bool): return a :class:`FastformerSequenceClassifierOutput` instead of a tuple.

        Returns:
            Tensor, tuple or :class:`FastformerSequenceClassifierOutput`: the logits [B, num_labels] alone,
            or ``(loss, logits[, hidden_states][, attentions])`` when those are asked for; the output
            object also holds the pooler's token weights.

        Example:
            .. code-block::

                model = FastformerForSequenceClassification(FastformerConfig(vocab_size=100, num_labels=3))
                loss, logits = model(paddle.to_tensor([[5, 6, 7]]), labels=paddle.to_tensor([2]))
                # logits: [1, 3]
        """
        base = self.fastformer(input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions, True,
                               segment_ids=segment_ids)  # fmt: skip
        logits = self.classifier(base.pooler_output)
        loss = None if labels is None else F.cross_entropy(logits, labels.reshape([-1]).astype("int64"))
        return _task_outputs(
            FastformerSequenceClassifierOutput, loss, logits, base, return_dict, pooler_attentions=base.pooler_attentions
        )


class FastformerForTokenClassification(FastformerPretrainedModel):
    """Per-token dropout + Linear(hidden, num_labels); loss over labels != -100."""

    def __init__(self, config: FastformerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.fastformer = FastformerModel(config, add_pooling_layer=False)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.classifier = FlatLinear(config.hidden_size, config.num_labels, config.use_fused_ops)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        labels=None,
        inputs_embeds=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=False,
    ):
        r"""
        Args:
            input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions: as in
                ``FastformerModel.forward``.
            labels (Tensor, optional): a class id per token, int [B, N]; -100 marks tokens left out of the loss.
            return_dict (bool): return a ``TokenClassifierOutput`` instead of a tuple.

        Returns:
            Tensor, tuple or ``TokenClassifierOutput``: the logits [B, N, num_labels] alone, or
            ``(loss, logits[, hidden_states][, attentions])``; the loss is the mean over labelled tokens.

        Example:
            .. code-block::

                model = FastformerForTokenClassification(FastformerConfig(vocab_size=100, num_labels=4))
                logits = model(paddle.to_tensor([[5, 6, 7]]))
                # logits: [1, 3, 4]
        """
        base = self.fastformer(input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions, True)
        logits = self.classifier(self.dropout(base.last_hidden_state))
        loss = None if labels is None else token_cross_entropy(logits, labels)
        return _task_outputs(TokenClassifierOutput, loss, logits, base, return_dict)


class VocabularyHeadMixin:
    """For heads that end in a :class:`FastformerLMHead` (``self.lm_head``): it is the output embedding, and
    ``resize_token_embeddings`` resizes it with the word embeddings (PaddleNLP's own resizes only those)."""

    def get_output_embeddings(self) -> VocabularyProjection:
        return self.lm_head.decoder

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None) -> nn.Embedding:
        """PaddleNLP's resize of the word embeddings, and of the output projection with them."""
        embeddings = super().resize_token_embeddings(new_num_tokens)
        decoder = self.lm_head.decoder
        if not self.config.tie_word_embeddings and decoder.weight.shape[0] != embeddings.weight.shape[0]:
            kept = min(decoder.weight.shape[0], embeddings.weight.shape[0])
            resized = VocabularyProjection(decoder.weight.shape[1], embeddings.weight.shape[0])
            self._init_weights(resized)
            with paddle.no_grad():
                resized.weight[:kept] = decoder.weight[:kept]
                resized.bias[:kept] = decoder.bias[:kept]
            self.lm_head.decoder = resized
        return embeddings


class FastformerForMaskedLM(VocabularyHeadMixin, FastformerPretrainedModel):
    """Per-token vocabulary logits; cross-entropy over labels != -100 when labels are given.

    The output projection is the word-embedding matrix itself with ``tie_word_embeddings=True`` (default
    False, as in fast-transformer-pytorch); either way ``resize_token_embeddings`` resizes both.
    """

    def __init__(self, config: FastformerConfig):
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
        output_hidden_states=False,
        output_attentions=False,
        return_dict=False,
        masked_positions=None,
    ):
        r"""
        Args:
            input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions: as in
                ``FastformerModel.forward``.
            labels (Tensor, optional): the token id to predict at each position, int [B, N]; -100 marks
                positions left out of the loss. With ``masked_positions``: the ids at those positions, int [M].
            return_dict (bool): return a ``MaskedLMOutput`` instead of a tuple.
            masked_positions (Tensor, optional): int [M], flat positions (row * N + column) of the only tokens to
                score, as PaddleNLP's BERT pretraining takes them: the projection onto the vocabulary, the
                costliest product of pretraining, then runs for those alone.

        Returns:
            Tensor, tuple or ``MaskedLMOutput``: the vocabulary logits [B, N, vocab_size] ([M, vocab_size] with
            ``masked_positions``) alone, or ``(loss, logits[, hidden_states][, attentions])``; the loss is the
            mean over labelled positions.

        Example:
            .. code-block::

                model = FastformerForMaskedLM(FastformerConfig(vocab_size=100))
                logits = model(paddle.to_tensor([[5, 6, 7]]))
                # logits: [1, 3, 100]
        """
        base = self.fastformer(input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions, True)
        hidden_states = base.last_hidden_state
        if masked_positions is not None:
            hidden_states = paddle.gather(hidden_states.reshape([-1, hidden_states.shape[-1]]), masked_positions)  # m D
        logits = self.lm_head(hidden_states)
        loss = None if labels is None else token_cross_entropy(logits, labels)
        return _task_outputs(MaskedLMOutput, loss, logits, base, return_dict)


# The decoder heads live in their own file; PaddleNLP's Auto classes look every head up in this module. Read on
# first use (PEP 562), as modeling_decoder imports this module: importing either one first then works.
_DECODER_HEADS = ("FastformerForCausalLM", "FastformerForConditionalGeneration")


def __getattr__(name: str):
    if name in _DECODER_HEADS:
        from . import modeling_decoder

        return getattr(modeling_decoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_with_paddlenlp_auto(__name__)
