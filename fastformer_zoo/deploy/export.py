"""Export a trained review classifier as a static graph for Paddle Inference and, optionally, ONNX; a text
writer (``Global.task=seq2seq``) as the two graphs of :mod:`.generation`.

An export directory holds everything :class:`~fastformer_zoo.deploy.predictor.Predictor` needs and nothing
else:

* ``inference.json`` + ``inference.pdiparams``: the static graph (PIR) and its weights. Inputs
  ``input_ids`` and ``attention_mask``, int64 ``[batch, seq_len]``, both dimensions dynamic (positions,
  absolute or rotary, come from the run-time shape). Output: float32 ``[batch, num_labels]`` class
  **probabilities**, i.e. the softmax is part of the graph, so that every backend (Paddle Inference,
  onnxruntime, a C++ or serving deployment) returns the same numbers without its own post-processing;
  the predicted class is their argmax, exactly as for the logits.
* ``inference_fused.json`` + ``inference_fused.pdiparams`` (where the fused CPU kernels are built): the
  same graph with those kernels as custom operators, which Paddle Inference runs once their library is
  loaded; the predictor prefers it and falls back to the portable graph above where it cannot load.
* ``inference_packed.json`` + ``inference_packed.pdiparams``: the same model (standard operators only) for
  texts packed back to back without padding: inputs ``input_ids`` and ``segment_ids`` (each token's text,
  0, 1, ...), int64 ``[1, T]``; output ``[texts, num_labels]`` probabilities. A batch of mixed lengths costs
  its real tokens only, which is what a service's micro-batches are.
* ``inference.onnx`` and ``inference_packed.onnx`` (with ``onnx=True``): the portable and packed graphs
  converted by paddle2onnx.
* ``inference_int8.onnx`` and ``inference_packed_int8.onnx`` (with ``quantize="int8"``, which implies ``onnx``):
  those graphs with onnxruntime's dynamic quantization of their weight matrix products: int8 weights (per
  output channel), activations quantized per batch at run time; everything else stays float32.
* ``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``: the tokenizer.
* ``inference_config.json``: label names in class-id order, the truncation length (where training
  truncated, :func:`~fastformer_zoo.engine.checkpoint.truncation_length`), inputs and output.

The directory appears in one rename when complete (:func:`file_utils.write_directory_atomically`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Optional

import paddle
import paddle.nn.functional as F

from paddlenlp_fastformer.file_utils import write_text_atomically
from paddlenlp_fastformer.kernels import fused_ops, library

from ..directories import write_directory_atomically
from ..engine.checkpoint import label_names, load_checkpoint, truncation_length
from ..errors import UserError, one_line
from ..settings import Config
from .export_format import (
    FUSED_MODEL_FILES,
    FUSED_MODEL_PREFIX,
    INFERENCE_CONFIG_FILE,
    INPUT_NAMES,
    MODEL_FILES,
    MODEL_PREFIX,
    ONNX_FILE,
    ONNX_INT8_FILE,
    PACKED_INPUT_NAMES,
    PACKED_MODEL_FILES,
    PACKED_MODEL_PREFIX,
    PACKED_ONNX_FILE,
    PACKED_ONNX_INT8_FILE,
)  # fmt: skip
from .onnx_graphs import quantize_onnx_int8, save_onnx

__all__ = ["export_inference_model", "export_text_writer", "export_from_config"]

logger = logging.getLogger("fastformer_zoo")



class _ProbabilityModel(paddle.nn.Layer):
    """The classifier followed by a softmax over classes: the graph that is exported. Its second input is the
    attention mask [batch, length], or with ``packed`` the segment ids [1, T] of texts packed in one row."""

    def __init__(self, classifier: paddle.nn.Layer, packed: bool = False):
        super().__init__()
        self.classifier = classifier
        self.second_input = "segment_ids" if packed else "attention_mask"

    def forward(self, input_ids: paddle.Tensor, mask_or_segments: paddle.Tensor) -> paddle.Tensor:
        return F.softmax(self.classifier(input_ids, **{self.second_input: mask_or_segments}), axis=-1)


def _check_output_dir(output_dir: str) -> None:
    """Refuse to replace a non-empty directory that is not an earlier export (e.g. a checkpoint)."""
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise UserError(f"Global.save_inference_dir={output_dir!r}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not (path / INFERENCE_CONFIG_FILE).is_file():
        raise UserError(
            f"Global.save_inference_dir={output_dir!r}: exists, is not empty and holds no earlier export "
            f"({INFERENCE_CONFIG_FILE}); choose a new or empty directory"
        )


def _save_static_graph(model: paddle.nn.Layer, directory: str, fused: bool = False) -> None:
    """``paddle.jit.save`` of the probability graph, batch and sequence length both dynamic; with ``fused``,
    the graph that calls the fused kernels (``inference_fused.*``), else the portable one (``inference.*``)."""
    input_spec = [paddle.static.InputSpec([None, None], "int64", name) for name in INPUT_NAMES]
    with fused_ops.fused_in_static_graphs() if fused else contextlib.nullcontext():
        static_model = paddle.jit.to_static(_ProbabilityModel(model), input_spec=input_spec, full_graph=True)
        paddle.jit.save(static_model, os.path.join(directory, FUSED_MODEL_PREFIX if fused else MODEL_PREFIX))


def _save_packed_graph(model: paddle.nn.Layer, directory: str) -> None:
    """``paddle.jit.save`` of the packed probability graph (``inference_packed.*``), one row of any length."""
    input_spec = [paddle.static.InputSpec([1, None], "int64", name) for name in PACKED_INPUT_NAMES]
    static_model = paddle.jit.to_static(_ProbabilityModel(model, packed=True), input_spec=input_spec, full_graph=True)
    paddle.jit.save(static_model, os.path.join(directory, PACKED_MODEL_PREFIX))


QUANTIZATIONS = ("int8",)


def _inference_config(model: paddle.nn.Layer, tokenizer) -> dict:
    """What a predictor needs besides the graph: label names and how far to truncate."""
    config = model.config
    return {
        "label_names": label_names(config),
        "max_seq_len": truncation_length(model, tokenizer),
        "vocab_size": config.vocab_size,  # the graph's embedding rows: the tokenizer must not produce more ids
        "max_position_embeddings": config.max_position_embeddings,  # the longest input the graph takes
        "inputs": list(INPUT_NAMES),
        "packed_inputs": list(PACKED_INPUT_NAMES) if _packs_texts(config) else None,
        "output": "probabilities",
        "formulation": config.formulation,
        "position_embedding_type": config.position_embedding_type,
    }


def _packs_texts(config) -> bool:
    """Whether the model takes packed texts (FastformerModel's ``segment_ids``): additive attention encoders."""
    return config.attention_type == "additive" and not config.is_decoder


def export_inference_model(pretrained_dir: str, output_dir: str, onnx: bool = False, quantize: Optional[str] = None) -> list[str]:
    """Export the classifier in ``pretrained_dir`` to ``output_dir`` (see the module docstring).

    An earlier export in ``output_dir`` is replaced only once the new one is complete.

    Returns:
        The names of the files written, sorted.

    Raises:
        UserError: ``pretrained_dir`` is incomplete, ``output_dir`` holds something else, or the
            ONNX conversion failed.
    """
    if quantize not in (None, *QUANTIZATIONS):
        raise UserError(f"--quantize {quantize!r} is not offered; choose {', '.join(QUANTIZATIONS)}")
    _check_output_dir(output_dir)
    model, tokenizer = load_checkpoint(pretrained_dir, "Global.pretrained_model")
    _check_outputs_finite(model, pretrained_dir)

    def save(staging: str) -> None:
        _save_static_graph(model, staging)
        if library.load() is not None:
            try:
                _save_static_graph(model, staging, fused=True)
            except Exception as error:  # noqa: BLE001  the portable graph is what every backend can run
                for name in FUSED_MODEL_FILES:
                    Path(staging, name).unlink(missing_ok=True)
                logger.warning("the fused-kernel graph could not be exported (%s); the portable graph is", one_line(error)[:300])
        # (graph files, ONNX file, int8 ONNX file) of the graphs that convert to ONNX
        standard_graphs = [(MODEL_FILES, ONNX_FILE, ONNX_INT8_FILE)]
        if _packs_texts(model.config):
            _save_packed_graph(model, staging)
            standard_graphs.append((PACKED_MODEL_FILES, PACKED_ONNX_FILE, PACKED_ONNX_INT8_FILE))
        tokenizer.save_pretrained(staging)
        text = json.dumps(_inference_config(model, tokenizer), indent=2, ensure_ascii=False) + "\n"
        write_text_atomically(os.path.join(staging, INFERENCE_CONFIG_FILE), text)
        for graph_files, onnx_file, int8_file in standard_graphs:
            if onnx or quantize:
                save_onnx(staging, graph_files, onnx_file)
            if quantize == "int8":
                quantize_onnx_int8(staging, onnx_file, int8_file)

    write_directory_atomically(save, output_dir, overwrite=True)
    return sorted(os.listdir(output_dir))


@paddle.no_grad()
def _check_outputs_finite(model: paddle.nn.Layer, pretrained_dir: str) -> None:
    """Refuse a model whose outputs overflow although its weights are finite: it would serve NaN."""
    length = min(8, model.config.max_position_embeddings)
    ids = paddle.arange(length, dtype="int64").reshape([1, -1]) % model.config.vocab_size
    probabilities = F.softmax(model(ids, attention_mask=paddle.ones_like(ids)), axis=-1)
    if not bool(paddle.isfinite(probabilities).all()):
        raise UserError(f"Global.pretrained_model={pretrained_dir!r}: the model returns NaN or inf; its weights are degenerate")


def export_text_writer(pretrained_dir: str, output_dir: str, max_target_len: int) -> list[str]:
    """Export the encoder-decoder in ``pretrained_dir`` to ``output_dir``: its prefill and step graphs
    (:mod:`.generation`), the tokenizer and ``inference_config.json``; returns the names of the files written."""
    from paddlenlp_fastformer.modeling import FastformerForConditionalGeneration

    from .generation import save_generation_graphs

    _check_output_dir(output_dir)
    model, tokenizer = load_checkpoint(pretrained_dir, "Global.pretrained_model", FastformerForConditionalGeneration)
    config = model.config
    if config.eos_token_id is None or config.pad_token_id is None:
        raise UserError(f"{pretrained_dir}/config.json: eos_token_id and pad_token_id must be set; a writer's titles end at one, pad with the other")

    def save(staging: str) -> None:
        layout = save_generation_graphs(model, staging)
        tokenizer.save_pretrained(staging)
        settings = {
            "task": "seq2seq", "max_seq_len": truncation_length(model, tokenizer), "max_target_len": max_target_len,
            "vocab_size": config.vocab_size, "eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id,
            "attention_type": config.attention_type,
            "cross_attention_type": config.cross_attention_type, **layout,
        }  # fmt: skip
        write_text_atomically(os.path.join(staging, INFERENCE_CONFIG_FILE), json.dumps(settings, indent=2) + "\n")

    write_directory_atomically(save, output_dir, overwrite=True)
    return sorted(os.listdir(output_dir))


def export_from_config(config: Config, onnx: bool = False, quantize: Optional[str] = None) -> list[str]:
    """Export ``Global.pretrained_model`` to ``Global.save_inference_dir``: a classifier, or with
    ``Global.task=seq2seq`` a text writer (Paddle Inference only: ``onnx`` and ``quantize`` are refused)."""
    settings = config.global_
    if settings.task == "seq2seq":
        if onnx or quantize:
            raise UserError("--onnx and --quantize export classifiers; a text writer (Global.task=seq2seq) exports for Paddle Inference only")
        return export_text_writer(settings.pretrained_model, settings.save_inference_dir, config.data.max_target_len)
    return export_inference_model(settings.pretrained_model, settings.save_inference_dir, onnx, quantize)
