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
from paddlenlp.transformers.model_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from paddlenlp.transformers.model_utils import PretrainedModel, register_base_model

from . import serialization
from .auto_registration import register_with_paddlenlp_auto
from .configuration import FastformerConfig
from .kernels import fused_ops
from .kernels.fused_ops import FlatLinear
from .layers import FastformerEmbeddings, FastformerPooler, build_layers

__all__ = [
    "FastformerPretrainedModel",
    "FastformerModel",
    "FastformerForSequenceClassification",
    "FastformerForTokenClassification",
    "FastformerForMaskedLM",
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
    def _load_pretrained_model(cls, model, state_dict, loaded_keys, resolved_archive_file, pretrained_model_name_or_path, **kwargs):
        if state_dict is not None:
            architectures = getattr(kwargs.get("config"), "architectures", None)
            serialization.check_state_fits(model, state_dict, str(resolved_archive_file), architectures)
        return super()._load_pretrained_model(
            model, state_dict, loaded_keys, resolved_archive_file, pretrained_model_name_or_path, **kwargs
        )

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
        self.layers = build_layers(config)
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
            tuple or ``BaseModelOutputWithPooling``: ``(sequence_output, pooled_output[, hidden_states])``:
            the last block's output [B, N, D]; the additive-attention pooled vector [B, D] (None without
            the pooler); with ``output_hidden_states``, the embeddings and each block's output.

        Example:
            .. code-block::

                model = FastformerModel(FastformerConfig(vocab_size=100))
                sequence_output, pooled_output = model(paddle.to_tensor([[5, 6, 7, 0]]))
                # sequence_output: [1, 4, 256]; pooled_output: [1, 256] (the padding token 0 is not pooled)
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
        self.classifier = FlatLinear(config.hidden_size, config.num_labels, config.use_fused_ops)

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states=False, return_dict=False):
        r"""
        Args:
            input_ids (Tensor): token ids, int [B, N].
            attention_mask (Tensor, optional): [B, N], 1 for real tokens, 0 for padding; see ``FastformerModel``.
            labels (Tensor, optional): class ids, int [B] (or [B, 1]); given, the cross-entropy is returned too.
            output_hidden_states (bool): also return the embeddings and every block's output.
            return_dict (bool): return a ``SequenceClassifierOutput`` instead of a tuple.

        Returns:
            Tensor, tuple or ``SequenceClassifierOutput``: the logits [B, num_labels] alone, or
            ``(loss, logits[, hidden_states])`` when ``labels`` or ``output_hidden_states`` are given.

        Example:
            .. code-block::

                model = FastformerForSequenceClassification(FastformerConfig(vocab_size=100, num_labels=3))
                loss, logits = model(paddle.to_tensor([[5, 6, 7]]), labels=paddle.to_tensor([2]))
                # logits: [1, 3]
        """
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
        self.classifier = FlatLinear(config.hidden_size, config.num_labels, config.use_fused_ops)

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states=False, return_dict=False):
        r"""
        Args:
            input_ids (Tensor): token ids, int [B, N].
            attention_mask (Tensor, optional): [B, N], 1 for real tokens, 0 for padding; see ``FastformerModel``.
            labels (Tensor, optional): a class id per token, int [B, N]; -100 marks tokens left out of the loss.
            output_hidden_states (bool): also return the embeddings and every block's output.
            return_dict (bool): return a ``TokenClassifierOutput`` instead of a tuple.

        Returns:
            Tensor, tuple or ``TokenClassifierOutput``: the logits [B, N, num_labels] alone, or
            ``(loss, logits[, hidden_states])``; the loss is the mean over labelled tokens.

        Example:
            .. code-block::

                model = FastformerForTokenClassification(FastformerConfig(vocab_size=100, num_labels=4))
                logits = model(paddle.to_tensor([[5, 6, 7]]))
                # logits: [1, 3, 4]
        """
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
        self.fused = config.use_fused_ops
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.decoder = FlatLinear(config.hidden_size, config.vocab_size, self.fused)

    def forward(self, hidden_states: paddle.Tensor) -> paddle.Tensor:
        return self.decoder(fused_ops.layer_norm(self.layer_norm, hidden_states, self.fused))


class FastformerForMaskedLM(FastformerPretrainedModel):
    """Per-token vocabulary logits; cross-entropy over labels != -100 when labels are given."""

    def __init__(self, config: FastformerConfig):
        super().__init__(config)
        self.fastformer = FastformerModel(config, add_pooling_layer=False)
        self.lm_head = FastformerLMHead(config)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states=False, return_dict=False):
        r"""
        Args:
            input_ids (Tensor): token ids, int [B, N].
            attention_mask (Tensor, optional): [B, N], 1 for real tokens, 0 for padding; see ``FastformerModel``.
            labels (Tensor, optional): the token id to predict at each position, int [B, N]; -100 marks
                positions left out of the loss.
            output_hidden_states (bool): also return the embeddings and every block's output.
            return_dict (bool): return a ``MaskedLMOutput`` instead of a tuple.

        Returns:
            Tensor, tuple or ``MaskedLMOutput``: the vocabulary logits [B, N, vocab_size] alone, or
            ``(loss, logits[, hidden_states])``; the loss is the mean over labelled positions.

        Example:
            .. code-block::

                model = FastformerForMaskedLM(FastformerConfig(vocab_size=100))
                logits = model(paddle.to_tensor([[5, 6, 7]]))
                # logits: [1, 3, 100]
        """
        outputs = self.fastformer(input_ids, attention_mask, output_hidden_states=output_hidden_states)
        logits = self.lm_head(outputs[0])
        loss = None
        if labels is not None:
            loss = token_cross_entropy(logits, labels)
        return _task_outputs(MaskedLMOutput, loss, logits, outputs, return_dict)


register_with_paddlenlp_auto()
