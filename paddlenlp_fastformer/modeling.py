"""Fastformer ("Fastformer: Additive Attention Can Be All You Need", arXiv 2108.09084) as PaddleNLP models.

One file, top to bottom: the ``PretrainedModel`` base, the base model (embeddings, Fastformer blocks,
additive-attention pooler: the layers of :mod:`.layers`, where the paper's equations are), the encoder
heads (sequence and token classification, masked LM) and the heads that write (causal LM and
encoder-decoder), which generate through PaddleNLP's ``generate()``.
Shapes: B batch, N tokens, D hidden, H heads, d features per head.
"""
from __future__ import annotations

import copy
import numbers
import os
from typing import Mapping, Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.generation import GenerationConfig, GenerationMixin
from paddlenlp.generation.configuration_utils import DEFAULT_MAX_NEW_TOKENS
from paddlenlp.transformers.model_outputs import (
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    Seq2SeqLMOutput,
    TokenClassifierOutput,
)
from paddlenlp.transformers.model_utils import PretrainedModel, register_base_model

from . import conversion, serialization
from .configuration import FastformerConfig, FastformerConfigError
from .cpu import tune_cpu_at_first_forward
from .kernels.fused_ops import Dropout, FlatLinear
from .layers import (
    CROSS_ATTENTIONS,
    FastformerEmbeddings,
    FastformerLMHead,
    FastformerPooler,
    VocabularyProjection,
    build_layers,
)
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
            CheckpointError: unreadable ``config.json``, a weights file that is damaged, would run code or holds
                other than float32 tensors, sizes in ``config.json`` that differ from the weights' shapes (checked
                before the model is built), a vocabulary whose size differs from the config's; then (while
                loading) weights whose shapes differ from the model's, missing weights, non-finite values.
        """
        if os.path.isdir(str(pretrained_model_name_or_path)):
            serialization.check_pretrained_dir(str(pretrained_model_name_or_path), kwargs.get("use_safetensors"), kwargs)
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
        with paddle.utils.unique_name.guard():  # a model built only to read its weight names takes none of the process's
            return conversion.name_mappings(config.formulation, cls._torch_checkpoint_head(config))

    @classmethod
    def convert(cls, weight_file: str, config: FastformerConfig, cache_dir: str) -> dict:
        """``from_pretrained(dir, convert_from_torch=True)``: the weights of a PyTorch checkpoint in ``dir``.

        Read with ``torch.load(weights_only=True)`` and converted through :meth:`_get_name_mappings` with
        every check of the converter tool (one-line ``ConversionError``s). Nothing is written to ``dir``;
        ``save_pretrained`` keeps a Paddle copy.
        """
        state_dict = conversion.load_torch_state_dict(weight_file)
        with paddle.utils.unique_name.guard():
            head = cls._torch_checkpoint_head(config)
        arrays = conversion.convert_arrays(config.formulation, state_dict, head)
        return {key: paddle.to_tensor(value) for key, value in arrays.items()}

    @staticmethod
    def _torch_checkpoint_head(config: FastformerConfig) -> "FastformerPretrainedModel":
        """The model a PyTorch checkpoint of ``config.formulation`` converts into: the masked-LM head
        (fast-transformer-pytorch's ``to_logits``) or the authors' classifier."""
        head = FastformerForMaskedLM if config.formulation == "lucidrains" else FastformerForSequenceClassification
        return head(config)

    @classmethod
    def from_torch_state_dict(
        cls,
        source: str,
        state_dict: Mapping,
        official_config_json: Optional[Mapping] = None,
        max_seq_len: Optional[int] = None,
    ) -> "FastformerPretrainedModel":
        """The Paddle model of a PyTorch checkpoint's arrays, every key and shape checked (:mod:`.conversion`).

        Args:
            source: ``"lucidrains"`` (a fast-transformer-pytorch 0.0.4 state_dict, sizes read from its
                tensors) or ``"official"`` (the authors' classifier, sizes from their config json).
            state_dict: PyTorch key -> numpy array (:func:`.conversion.load_torch_state_dict`) or torch tensor
                (a module's ``state_dict()`` as it is).
            official_config_json: the authors' ``fastformer.json``, for ``"official"``.
            max_seq_len: the maximum length of a rotary lucidrains checkpoint (its tensors do not hold it).

        Returns:
            ``FastformerForMaskedLM`` (lucidrains) or ``FastformerForSequenceClassification`` (official), in
            eval mode.

        Raises:
            ConversionError: a value that is no float tensor or array, a key with no place, a place with no
                key, a shape that disagrees, a bad source; each named in one line.

        Example:
            >>> arrays = conversion.load_torch_state_dict("fast_transformer.pt")
            >>> model = FastformerPretrainedModel.from_torch_state_dict("lucidrains", arrays, max_seq_len=512)
        """
        state_dict = conversion.check_state_dict(state_dict, "state_dict")
        config = conversion.checkpoint_config(source, state_dict, official_config_json, max_seq_len)
        model = cls._torch_checkpoint_head(config)
        arrays = conversion.convert_arrays(source, state_dict, model)
        model.set_state_dict({key: paddle.to_tensor(value) for key, value in arrays.items()})
        model.eval()
        return model

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
                real with ``inputs_embeds``. PaddleNLP's 4-D form [B, 1, Nq, N] is read by its last row
                (:func:`flat_attention_mask`).
            inputs_embeds (Tensor, optional): token vectors [B, N, D] used instead of looking ``input_ids``
                up (for embedding-level attribution or adversarial training); positions are added as usual.
            output_hidden_states (bool): also return the embeddings and every block's output.
            output_attentions (bool): also return the weights additive attention pools tokens with (causal mode:
                each position's, over the tokens up to it; not with ``cache``).
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
            block's output; with ``output_attentions``, each block's attention weights: [B, 2, H, N], the
            weights of the global query and the global key over the tokens (softmax baseline: [B, H, N, N]);
            in causal mode, where each position pools the tokens up to it, [B, 2, H, N, N], row t holding
            the weights position t pools with (0 on later tokens). The pooler's token weights are in the
            output object (``pooler_attentions``).

        Example:
            .. code-block::

                model = FastformerModel(FastformerConfig(vocab_size=100))
                sequence_output, pooled_output = model(paddle.to_tensor([[5, 6, 7, 0]]))
                # sequence_output: [1, 4, 256]; pooled_output: [1, 256] (the padding token 0 is not pooled)
        """
        if self.config.tune_cpu and paddle.get_device() == "cpu":
            tune_cpu_at_first_forward()
        if self.causal and output_attentions and cache is not None:
            raise ValueError("output_attentions takes the whole sequence in one call, without a cache: additive "
                             "attention's cache keeps pools, not each earlier token's weight")  # fmt: skip
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
        mask = flat_attention_mask(encoder_attention_mask)
        if mask is None:
            mask = paddle.ones(encoder_hidden_states.shape[:2])
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
        attention_mask = flat_attention_mask(attention_mask)
        if attention_mask is not None:
            if attention_mask.ndim != 2:
                raise ValueError(f"attention_mask must be [batch, seq_len] (or PaddleNLP's [batch, 1, query_len, seq_len]), "
                                 f"got shape {attention_mask.shape}")  # fmt: skip
            return attention_mask.astype("bool").unsqueeze(-1)  # b n 1
        if input_ids is not None:
            return (input_ids != self.pad_token_id).unsqueeze(-1)
        return paddle.ones(inputs_embeds.shape[:2] + [1], dtype="bool")


def flat_attention_mask(attention_mask: Optional[paddle.Tensor]) -> Optional[paddle.Tensor]:
    """The real-token mask [B, N] of PaddleNLP's 4-D form [B, 1, Nq, N]; any other mask (or None) as it is.

    PaddleNLP's generation hands decoder models a [B, 1, Nq, N] mask and grows it by a row and a column each step;
    Fastformer reads one flag per token, which the mask's last row holds (the last position sees every key). Read
    as PaddleNLP writes it: an int or bool mask keeps a key with a positive value, a float one is additive (0 keeps
    it, a large negative value masks it).
    """
    if attention_mask is None or attention_mask.ndim != 4:
        return attention_mask
    if attention_mask.shape[1] != 1:
        raise ValueError(f"a 4-D attention_mask must be [batch, 1, query_len, seq_len], got shape {attention_mask.shape}")
    last_row = attention_mask[:, 0, -1, :]
    keep = last_row >= 0 if paddle.is_floating_point(last_row) else last_row.astype("int64") > 0
    return keep.astype("int64")


def token_cross_entropy(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """Mean cross-entropy over the tokens whose label is not -100.

    Written out because Paddle's ``cross_entropy(..., ignore_index=-100)`` with mean reduction divides
    by all tokens, ignored ones included (PyTorch and PaddleNLP users expect the mean over labelled tokens).
    """
    labels = labels.reshape([-1]).astype("int64")
    per_token = F.cross_entropy(logits.reshape([-1, logits.shape[-1]]), labels, ignore_index=-100, reduction="none")
    labelled = (labels != -100).astype(per_token.dtype)
    return per_token.reshape([-1]).sum() / labelled.sum().clip(min=1.0)


def _output_tuple(loss, logits, *extras):
    """PaddleNLP's head return convention without ``return_dict``: the logits alone, or ``([loss,] logits, *extras)``
    leaving out the extras that are None."""
    outputs = ((loss,) if loss is not None else ()) + (logits,) + tuple(value for value in extras if value is not None)
    return outputs[0] if len(outputs) == 1 else outputs


def _task_outputs(output_cls, loss, logits, base: FastformerModelOutput, return_dict: bool, **extra):
    """PaddleNLP's head return convention: logits alone, or (loss, logits, ...), or an output object."""
    if return_dict:
        return output_cls(loss=loss, logits=logits, hidden_states=base.hidden_states, attentions=base.attentions, **extra)
    return _output_tuple(loss, logits, base.hidden_states, base.attentions)


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


# ----------------------------------------------------------------------------------------------
# Fastformer that writes: the decoder heads, which generate through PaddleNLP's ``generate()``.
# A decoder is a FastformerModel with ``config.is_decoder``: every block attends causally (each position
# to itself and those before it; how, per formulation, is in layers.py), and a DecoderCache carries the
# state from one call to the next. For additive attention that state is two pools per block, a fixed size
# whatever the length, so each new token costs the same; the softmax baseline keeps every key and value
# (a KV cache), so its cost per token grows with the length.
# ----------------------------------------------------------------------------------------------
def reorder_decoder_cache(cache, rows: paddle.Tensor):
    """Every tensor of a (nested) cache with its batch rows taken in the order of ``rows`` (beam search)."""
    if isinstance(cache, paddle.Tensor):
        return paddle.index_select(cache, rows, axis=0)
    if cache is None:
        return None
    parts = [reorder_decoder_cache(part, rows) for part in cache]
    return type(cache)(*parts) if hasattr(cache, "_fields") else type(cache)(parts)


_DECODE_STRATEGIES = ("greedy_search", "sampling", "beam_search")


def _is_count(value, least: int) -> bool:
    """Whether ``value`` is an integer (numpy's too, not a bool) of at least ``least``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_generation_lengths(settings: GenerationConfig, explicit: Mapping) -> None:
    """How many tokens to write, as PaddleNLP 2.8.1 reads it: ``max_length`` (and ``min_length``) count new tokens
    too and stand in for ``max_new_tokens`` (``min_new_tokens``) left at their defaults; 0 means unset."""
    # 0 is the default, "unset": asked for explicitly, PaddleNLP would silently write 20 tokens.
    if not _is_count(settings.max_length, 1 if "max_length" in explicit else 0):
        raise ValueError(f"generate(): max_length must be an integer >= 1 (PaddleNLP counts it in new tokens, like "
                         f"max_new_tokens), got {settings.max_length!r}")  # fmt: skip
    if not _is_count(settings.min_length, 0):
        raise ValueError(f"generate(): min_length must be an integer >= 0 (PaddleNLP counts it in new tokens, like "
                         f"min_new_tokens), got {settings.min_length!r}")  # fmt: skip
    most, least = settings.max_new_tokens, settings.min_new_tokens
    if settings.max_length and most == DEFAULT_MAX_NEW_TOKENS:
        most = settings.max_length
    if settings.min_length and not least:
        least = settings.min_length
    if not _is_count(most, 1):
        # PaddleNLP would still write one token; Hugging Face's generate() refuses max_new_tokens <= 0 too.
        raise ValueError(f"generate(): max_new_tokens must be an integer >= 1 (generate() returns only the new "
                         f"tokens), got {most!r}")  # fmt: skip
    if not _is_count(least, 0) or least > most:
        raise ValueError(f"generate(): min_new_tokens (or min_length) must be an integer from 0 to max_new_tokens={most}, "
                         f"got {least!r}")  # fmt: skip


def _check_generation_strategy(settings: GenerationConfig) -> None:
    """The decoding strategy and its own settings (sampling's are read only when sampling)."""
    strategy = settings.decode_strategy
    if strategy not in _DECODE_STRATEGIES:
        raise ValueError(f"generate(): decode_strategy must be one of {', '.join(_DECODE_STRATEGIES)}, got {strategy!r}")
    for name in ("num_beams", "num_return_sequences"):
        if not _is_count(getattr(settings, name), 1):
            raise ValueError(f"generate(): {name} must be an integer >= 1, got {getattr(settings, name)!r}")
    if strategy != "sampling":
        return
    # Dividing the logits by 0 leaves no probability to sample from (Paddle's multinomial fails); top_p is the share
    # of probability kept. PaddleNLP reads None as "off" for all three.
    temperature, top_k, top_p = settings.temperature, settings.top_k, settings.top_p
    if temperature is not None and (not _is_number(temperature) or temperature <= 0):
        raise ValueError(f"generate(): temperature must be a number > 0 for sampling (decode_strategy='greedy_search' "
                         f"always takes the likeliest token), got {temperature!r}")  # fmt: skip
    if top_k is not None and not _is_count(top_k, 0):
        raise ValueError(f"generate(): top_k must be an integer >= 0 (0 keeps every token), got {top_k!r}")
    if top_p is not None and (not _is_number(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"generate(): top_p must be a number in (0, 1] (1 keeps every token), got {top_p!r}")


def _check_prompt(input_ids, attention_mask, name: str) -> None:
    """The ids ``generate()`` starts from (the prompt, or an encoder-decoder's source): int [B, N], N >= 1."""
    if input_ids is None:  # PaddleNLP starts from bos_token_id
        return
    if not isinstance(input_ids, paddle.Tensor) or input_ids.ndim != 2 or input_ids.dtype not in (paddle.int32, paddle.int64):
        shown = f"{input_ids.dtype} {list(input_ids.shape)}" if isinstance(input_ids, paddle.Tensor) else type(input_ids).__name__
        raise ValueError(f"generate(): input_ids must be an int32/int64 paddle.Tensor [batch, seq_len] of the {name}, got {shown}")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"generate(): input_ids must hold at least one token of the {name}, got shape {list(input_ids.shape)}")
    if isinstance(attention_mask, paddle.Tensor) and attention_mask.ndim == 4:  # PaddleNLP's [B, 1, Nq, N] form
        attention_mask = flat_attention_mask(attention_mask)
    if attention_mask is not None and list(getattr(attention_mask, "shape", [])) != list(input_ids.shape):
        raise ValueError(f"generate(): attention_mask must have input_ids' shape {list(input_ids.shape)}, got "
                         f"{list(getattr(attention_mask, 'shape', [])) or type(attention_mask).__name__}")  # fmt: skip


class _GenerationHooks:
    """What PaddleNLP's ``generate()`` asks of both decoder heads, beyond ``prepare_inputs_for_generation``."""

    _prompt_name = "prompt"

    def generate(self, input_ids=None, generation_config=None, stopping_criteria=None, streamer=None, synced_gpus=None, **kwargs):
        """PaddleNLP's ``generate()`` (same arguments and return), after checking its arguments.

        PaddleNLP 2.8.1 checks few of them: ``max_new_tokens=0`` or a negative ``max_length`` still write one token,
        ``max_length=0`` writes 20, and an empty prompt or ``temperature=0`` fail deep inside Paddle.

        Raises:
            ValueError: one line naming the argument and what it must be: ``max_new_tokens`` / ``max_length`` not
                a positive integer (generate() returns only new tokens, so 0 has nothing to return; Hugging Face
                refuses it too), ``min_new_tokens`` out of [0, max_new_tokens], an unknown ``decode_strategy``,
                ``num_beams`` / ``num_return_sequences`` below 1, for sampling ``temperature`` <= 0, ``top_k`` < 0
                or ``top_p`` outside (0, 1], or ``input_ids`` that are not int [batch, seq_len] with a token.
        """
        settings = generation_config if generation_config is not None else self.generation_config
        if generation_config is None and settings._from_model_config:  # as generate() does: the model config rules
            settings = GenerationConfig.from_model_config(self.config)
        settings = copy.deepcopy(settings)
        settings.update(**kwargs)
        _check_generation_lengths(settings, kwargs)
        _check_generation_strategy(settings)
        prompt = input_ids if input_ids is not None else kwargs.get("input_ids")
        _check_prompt(prompt, kwargs.get("attention_mask"), self._prompt_name)
        return super().generate(input_ids, generation_config, stopping_criteria, streamer, synced_gpus, **kwargs)

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
            input_ids, inputs_embeds: as in ``FastformerModel.forward`` (token ids [B, N], or vectors [B, N, D]).
            attention_mask (Tensor, optional): 1 for real tokens, 0 for padding: [B, N] for these tokens, or
                [B, past + N] for every token so far (as ``generate()`` passes it; the last N columns are used), or
                PaddleNLP's 4-D form [B, 1, past + N, past + N] (:func:`flat_attention_mask`).
            labels (Tensor, optional): int [B, N], usually the input ids themselves; position t's logits are
                scored against ``labels[:, t + 1]`` (the shift happens here); -100 and padding are left out.
            cache (DecoderCache, optional): the state after the tokens before these.
            use_cache (bool): also return the state after these tokens.
            output_hidden_states (bool): also return the embeddings and each block's output, [B, N, D] each.
            output_attentions (bool): also return each block's attention weights: [B, 2, H, N, N], row t the
                weights position t pools the tokens up to it with into its global query (index 0 on axis 1) and
                global key (index 1), 0 on padding and on later tokens; the softmax baseline's maps [B, H, N, N].
                Needs the whole sequence in one call (no ``cache``).
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
        attention_mask = flat_attention_mask(attention_mask)
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
        return _output_tuple(loss, logits, base.past_key_values, base.hidden_states, base.attentions)

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

    _prompt_name = "source"

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
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        output_hidden_states=False,
        output_attentions=False,
    ):
        r"""
        Args:
            input_ids (Tensor, optional): source token ids [B, M]; not needed with ``inputs_embeds``,
                ``encoder_output`` or ``cache``.
            attention_mask (Tensor, optional): the source's real-token mask [B, M]; defaults to ``input_ids !=
                pad_token_id``, or to all real with ``inputs_embeds`` or ``encoder_output``.
            decoder_input_ids (Tensor, optional): target ids read so far [B, N]; defaults to ``labels`` shifted
                right behind the start token (teacher forcing).
            decoder_attention_mask (Tensor, optional): their real-token mask; defaults to ``!= pad_token_id``.
            encoder_output (Tensor, optional): the encoder's states [B, M, D], when already computed.
            labels (Tensor, optional): target ids [B, N] (-100 left out); the loss compares position t's logits
                with ``labels[:, t]``.
            cache (DecoderCache, optional), use_cache (bool): as in ``FastformerForCausalLM``; the cache also holds
                what cross-attention computed once from the encoder.
            return_dict (bool): return a ``Seq2SeqLMOutput`` instead of a tuple.
            inputs_embeds (Tensor, optional): source token vectors [B, M, D] used instead of ``input_ids`` (the
                encoder's word embeddings are skipped; positions are added as usual).
            decoder_inputs_embeds (Tensor, optional): target token vectors [B, N, D] used instead of
                ``decoder_input_ids`` (the decoder's word embeddings are skipped).
            output_hidden_states (bool): also return the decoder's embeddings and each of its blocks' outputs
                [B, N, D], and the encoder's [B, M, D] (when it runs here, i.e. without ``encoder_output``).
            output_attentions (bool): also return each decoder block's self-attention weights [B, 2, H, N, N]
                (causal: row t for position t, as in ``FastformerForCausalLM``) and each encoder block's
                [B, 2, H, M] (when it runs here); the softmax baseline's maps [B, H, N, N] and [B, H, M, M].
                Needs the whole target in one call (no ``cache``). Cross-attention weights are not returned.

        Returns:
            Tensor, tuple or ``Seq2SeqLMOutput``: the logits [B, N, vocab_size] alone, or ``([loss,] logits
            [, cache][, decoder_hidden_states][, decoder_attentions][, encoder_hidden_states][, encoder_attentions])``;
            the output object also holds ``encoder_last_hidden_state`` [B, M, D].

        Example:
            .. code-block::

                config = FastformerConfig(vocab_size=100, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2)
                model = FastformerForConditionalGeneration(config)
                loss, logits = model(paddle.to_tensor([[5, 6, 7]]), labels=paddle.to_tensor([[8, 9, 3]]))
                ids, scores = model.generate(paddle.to_tensor([[5, 6, 7]]), decode_strategy="beam_search", num_beams=4)
        """
        if attention_mask is None and input_ids is not None:
            attention_mask = input_ids != self.config.pad_token_id
        encoder = None
        if encoder_output is None and cache is None:  # a cache holds what cross-attention needs of the encoder
            encoder = self.fastformer(input_ids, attention_mask, inputs_embeds, output_hidden_states, output_attentions, True)
            encoder_output = encoder.last_hidden_state
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if labels is None:
                raise ValueError("give decoder_input_ids, or labels to read them from (teacher forcing), or decoder_inputs_embeds")
            decoder_input_ids = self.shift_right(labels)
        base = self.decoder(
            decoder_input_ids, decoder_attention_mask, decoder_inputs_embeds, output_hidden_states, output_attentions, True,
            cache, use_cache, encoder_output, attention_mask,
        )  # fmt: skip
        logits = self.lm_head(base.last_hidden_state)
        loss = None if labels is None else token_cross_entropy(logits, labels)
        encoder_states, encoder_attentions = (encoder.hidden_states, encoder.attentions) if encoder is not None else (None, None)
        if return_dict:
            return Seq2SeqLMOutput(
                loss=loss, logits=logits, past_key_values=base.past_key_values, decoder_hidden_states=base.hidden_states,
                decoder_attentions=base.attentions, encoder_last_hidden_state=encoder_output,
                encoder_hidden_states=encoder_states, encoder_attentions=encoder_attentions,
            )  # fmt: skip
        return _output_tuple(loss, logits, base.past_key_values, base.hidden_states, base.attentions, encoder_states, encoder_attentions)

    def prepare_inputs_for_generation(self, decoder_input_ids, encoder_output=None, attention_mask=None, cache=None, use_cache=True, **kwargs):
        """PaddleNLP's generation hook: the source stays encoded; with a cache, only the newest target token goes in."""
        if cache is not None:
            decoder_input_ids = decoder_input_ids[:, -1:]
        return {
            "decoder_input_ids": decoder_input_ids, "encoder_output": encoder_output, "attention_mask": attention_mask,
            "cache": cache, "use_cache": use_cache,
        }  # fmt: skip
