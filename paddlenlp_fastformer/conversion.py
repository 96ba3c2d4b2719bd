"""PyTorch Fastformer checkpoints -> PaddleNLP Fastformer models.

Two sources, one mapping each (ordered regex renames from the PyTorch key to ours):

* ``lucidrains``: a fast-transformer-pytorch 0.0.4 ``FastTransformer`` state_dict -> ``FastformerForMaskedLM``.
  Every size is inferred from the tensor shapes; absolute positions if ``abs_pos_emb.weight`` is
  present, rotary otherwise (then the maximum length must be given).
* ``official``: the authors' classification ``Model`` (word_embedding, fastformer_model.*, dense_linear)
  plus their ``fastformer.json`` -> ``FastformerForSequenceClassification``.

PyTorch stores Linear weights [out, in] and Paddle [in, out]: exactly the weights of our Linear layers
are transposed, never embeddings or LayerNorm. Every key is accounted for: a PyTorch key with no
place, a place with no key, or a shape that disagrees is an error naming them.
"""
from __future__ import annotations

import json
import os
import re
import reprlib
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import paddle.nn as nn
from paddlenlp.transformers.conversion_utils import StateDictNameMapping

from .configuration import FastformerConfig
from .serialization import CheckpointError, check_finite

__all__ = [
    "SOURCES",
    "name_mappings",
    "convert_arrays",
    "ConversionError",
    "checkpoint_config",
    "load_torch_state_dict",
    "check_state_dict",
    "read_official_config_json",
    "torch_to_paddle_name",
    "paddle_to_torch_name",
]

SOURCES = ("lucidrains", "official")


class ConversionError(ValueError):
    """A checkpoint that does not fit the model it should become."""


_SHORT = reprlib.Repr()  # a value saved beside the weights may be a whole training log: show its start
_SHORT.maxstring = _SHORT.maxother = 60


# (PyTorch key prefix, Paddle key prefix); "{i}" stands for a layer index. Read both ways, so that
# an error can name the PyTorch key a Paddle parameter expected.
NAME_PREFIXES: Dict[str, List[Tuple[str, str]]] = {
    "lucidrains": [
        ("token_emb.weight", "fastformer.embeddings.word_embeddings.weight"),
        ("abs_pos_emb.weight", "fastformer.embeddings.position_embeddings.weight"),
        ("layers.{i}.0.norm.", "fastformer.layers.{i}.attention_norm."),
        ("layers.{i}.0.fn.", "fastformer.layers.{i}.attention."),
        ("layers.{i}.1.norm.", "fastformer.layers.{i}.ffn_norm."),
        ("layers.{i}.1.fn.0.", "fastformer.layers.{i}.ffn_in."),
        ("layers.{i}.1.fn.2.", "fastformer.layers.{i}.ffn_out."),
        ("to_logits.0.", "lm_head.layer_norm."),
        ("to_logits.1.", "lm_head.decoder."),
    ],
    "official": [
        ("word_embedding.weight", "fastformer.embeddings.word_embeddings.weight"),
        ("fastformer_model.position_embeddings.", "fastformer.embeddings.position_embeddings."),
        ("fastformer_model.LayerNorm.", "fastformer.embeddings.layer_norm."),
        ("fastformer_model.encoders.{i}.attention.self.", "fastformer.layers.{i}.attention."),
        ("fastformer_model.encoders.{i}.attention.output.dense.", "fastformer.layers.{i}.attention.output."),
        ("fastformer_model.encoders.{i}.attention.output.LayerNorm.", "fastformer.layers.{i}.attention_norm."),
        ("fastformer_model.encoders.{i}.intermediate.dense.", "fastformer.layers.{i}.ffn_in."),
        ("fastformer_model.encoders.{i}.output.dense.", "fastformer.layers.{i}.ffn_out."),
        ("fastformer_model.encoders.{i}.output.LayerNorm.", "fastformer.layers.{i}.ffn_norm."),
        ("fastformer_model.poolers.0.", "fastformer.pooler."),
        ("dense_linear.", "classifier."),
    ],
}


def _translate(key: str, pairs: List[Tuple[str, str]]) -> Optional[str]:
    """Rewrite the longest matching prefix of ``key`` (with its layer index), or None if none matches.

    The longest, because one prefix may contain another (read backwards, ``...attention.`` contains
    ``...attention.output.``).
    """
    best = None
    for source_prefix, target_prefix in pairs:
        match = re.match(re.escape(source_prefix).replace(r"\{i\}", r"(\d+)"), key)
        if match and (best is None or match.end() > best[0].end()):
            best = (match, target_prefix)
    if best is None:
        return None
    match, target_prefix = best
    layer = match.group(1) if match.groups() else ""
    return target_prefix.replace("{i}", layer) + key[match.end() :]


def torch_to_paddle_name(source: str, key: str) -> Optional[str]:
    """The Paddle state-dict key of a PyTorch key of ``source``, or None if it has no place."""
    return _translate(key, NAME_PREFIXES[source])


def paddle_to_torch_name(source: str, key: str) -> Optional[str]:
    """The PyTorch key that fills a Paddle state-dict key of the model converted from ``source``."""
    return _translate(key, [(ours, theirs) for theirs, ours in NAME_PREFIXES[source]])


# Fields of the authors' fastformer.json (a BertConfig) that carry over to FastformerConfig.
OFFICIAL_JSON_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "max_position_embeddings",
    "initializer_range",
    "layer_norm_eps",
)


def load_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
    """Read a PyTorch checkpoint (a state_dict, or a dict holding one) as float32 numpy arrays."""
    import torch  # only conversion needs torch

    if not os.path.isfile(path):
        raise ConversionError(f"{path}: checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for unreadable files, with long multi-line texts
        raise ConversionError(
            f"{path}: not a PyTorch state_dict file ({type(error).__name__}; a whole pickled model is not "
            "accepted: save model.state_dict())"
        ) from None
    for wrapper_key in ("state_dict", "model_state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper_key), dict):
            checkpoint = checkpoint[wrapper_key]
    if not isinstance(checkpoint, dict):
        raise ConversionError(f"{path}: holds a {type(checkpoint).__name__}; expected a state_dict (a dict of tensors)")
    return check_state_dict(checkpoint, path)


def check_state_dict(state_dict: Mapping, where: str) -> Dict[str, np.ndarray]:
    """The float32 arrays of a PyTorch state_dict (tensors or numpy arrays by name); ``where`` names its file.

    Raises:
        ConversionError: a value that is not a tensor or array (a number, a string, a nested dict: often
            training state saved beside the weights), or one that is not of real floating point; naming its key.
    """
    if not isinstance(state_dict, Mapping):
        raise ConversionError(f"{where}: got a {type(state_dict).__name__}; expected a state_dict (a dict of tensors)")
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ConversionError(f"{where}: key {key!r} is a {type(key).__name__}; expected parameter names (strings)")
        arrays[key] = _float_array(key, value, where)
    return arrays


def _float_array(key: str, value, where: str) -> np.ndarray:
    is_tensor = type(value).__module__.startswith("torch") and hasattr(value, "is_floating_point")
    if not (is_tensor or isinstance(value, np.ndarray)):
        plain = isinstance(value, (int, float, str, bytes, list, tuple, dict, type(None)))
        shown = f"the {type(value).__name__} {_SHORT.repr(value)}" if plain else f"a {type(value).__name__} object"
        shown = "None" if value is None else shown
        nested = " (a nested dict: save model.state_dict() itself)" if isinstance(value, dict) else ""
        raise ConversionError(
            f"{where}: key {key!r} holds {shown}{nested}; expected a state_dict whose every value is a weight tensor"
        )
    real = value.is_floating_point() if is_tensor else value.dtype.kind == "f"
    if not real:  # complex parts would be dropped, integers are no weights
        raise ConversionError(f"{where}: tensor {key!r} has dtype {str(value.dtype).replace('torch.', '')}; expected "
                              "real floating-point weights")  # fmt: skip
    return value.detach().float().numpy() if is_tensor else value.astype(np.float32)


def _layer_indices(state_dict: Mapping[str, np.ndarray], pattern: str) -> List[int]:
    return sorted({int(m.group(1)) for key in state_dict if (m := re.match(pattern, key))})


def _require(state_dict: Mapping[str, np.ndarray], key: str, source: str, ndim: int = 2) -> np.ndarray:
    """The tensor a size is read from, of the rank it must have (a 1-D one would end in an unpacking error)."""
    if key not in state_dict:
        raise ConversionError(f"{source} checkpoint: missing key {key!r}")
    if np.ndim(state_dict[key]) != ndim or 0 in np.shape(state_dict[key]):
        raise ConversionError(f"{source} checkpoint: {key} has shape {list(np.shape(state_dict[key]))}; expected a "
                              f"non-empty {ndim}-D weight")  # fmt: skip
    return state_dict[key]


def infer_lucidrains_config(state_dict: Mapping[str, np.ndarray], max_seq_len: Optional[int]) -> FastformerConfig:
    """Sizes of a fast-transformer-pytorch model, read off its tensor shapes."""
    vocab_size, hidden_size = _require(state_dict, "token_emb.weight", "lucidrains").shape
    depth = len(_layer_indices(state_dict, r"layers\.(\d+)\."))
    if depth == 0:
        raise ConversionError("lucidrains checkpoint: no 'layers.<i>.' keys found")
    qkv_out = _require(state_dict, "layers.0.0.fn.to_qkv.weight", "lucidrains").shape[0]
    head_size, r_in = _require(state_dict, "layers.0.0.fn.to_r.weight", "lucidrains").shape
    if qkv_out % (3 * head_size):
        raise ConversionError(f"lucidrains checkpoint: layers.0.0.fn.to_qkv.weight has {qkv_out} rows; expected 3 x heads "
                              f"x {head_size} (the head size of layers.0.0.fn.to_r.weight)")  # fmt: skip
    absolute = "abs_pos_emb.weight" in state_dict
    if absolute:
        table_len = _require(state_dict, "abs_pos_emb.weight", "lucidrains").shape[0]
        if max_seq_len not in (None, table_len):
            raise ConversionError(f"--max-seq-len {max_seq_len} disagrees with abs_pos_emb.weight's {table_len} rows")
        max_seq_len = table_len
    elif max_seq_len is None:
        raise ConversionError("lucidrains checkpoint uses rotary positions: pass --max-seq-len (the model's max_seq_len)")
    if r_in != (head_size if absolute else head_size // 2):
        raise ConversionError(f"lucidrains checkpoint: to_r.weight shape {[head_size, r_in]} fits neither position mode")
    return FastformerConfig(
        formulation="lucidrains",
        position_embedding_type="absolute" if absolute else "rotary",
        vocab_size=int(vocab_size),
        hidden_size=int(hidden_size),
        num_hidden_layers=depth,
        num_attention_heads=int(qkv_out // (3 * head_size)),
        attention_head_size=int(head_size),
        intermediate_size=int(_require(state_dict, "layers.0.1.fn.0.weight", "lucidrains").shape[0]),
        max_position_embeddings=int(max_seq_len),
        hidden_dropout_prob=0.0,
        layer_norm_eps=1e-5,
    )


def official_config(state_dict: Mapping[str, np.ndarray], config_json: Mapping) -> FastformerConfig:
    """FastformerConfig from the authors' fastformer.json; vocabulary and classes from the weights."""
    missing = [field for field in OFFICIAL_JSON_FIELDS if field not in config_json]
    if missing:
        raise ConversionError(f"official config: missing field(s) {missing}")
    vocab_size = _require(state_dict, "word_embedding.weight", "official").shape[0]
    num_labels = _require(state_dict, "dense_linear.weight", "official").shape[0]
    return FastformerConfig(
        formulation="official",
        vocab_size=int(vocab_size),
        num_labels=int(num_labels),
        **{field: config_json[field] for field in OFFICIAL_JSON_FIELDS},
    )


def _verify_rotary_frequencies(state_dict: Mapping[str, np.ndarray], config: FastformerConfig) -> None:
    """fast-transformer-pytorch keeps its fixed rotary frequencies as buffers: they must be the standard ones."""
    rotary_size = config.head_size // 2
    expected = 1.0 / (10000 ** (np.arange(0, rotary_size, 2, dtype=np.float32) / rotary_size))
    for key, value in state_dict.items():
        if key.endswith("pos_emb.freqs") and (value.shape != expected.shape or not np.allclose(value, expected)):
            raise ConversionError(f"lucidrains checkpoint: {key} holds non-standard rotary frequencies")


def _linear_weight_names(layer: nn.Layer, prefix: str = "") -> set:
    """State-dict names of every Linear weight, tied ones under each name (named_sublayers dedups them)."""
    names = {f"{prefix}weight"} if isinstance(layer, nn.Linear) else set()
    for child_name, child in layer.named_children():
        names |= _linear_weight_names(child, f"{prefix}{child_name}.")
    return names


def _disagreeing_tied_copies(model: nn.Layer, converted: Mapping[str, np.ndarray], source: str) -> List[str]:
    """A weight tied across layers is stored once per layer; every stored copy must be the same."""
    keys_by_parameter: Dict[int, List[str]] = {}
    for key, parameter in model.state_dict().items():
        keys_by_parameter.setdefault(id(parameter), []).append(key)
    problems = []
    for keys in keys_by_parameter.values():
        if any(not np.array_equal(converted[keys[0]], converted[other]) for other in keys[1:]):
            problems.append(f"tied weight copies differ: {[paddle_to_torch_name(source, key) for key in keys]}")
    return problems


def name_mappings(source: str, model: nn.Layer) -> List[StateDictNameMapping]:
    """PaddleNLP's name mappings for converting a ``source`` checkpoint into ``model`` (a head of that source).

    One per weight of the model, built from :data:`NAME_PREFIXES`; PyTorch stores Linear weights
    transposed, so those are marked "transpose" (embeddings, LayerNorm and the vocabulary projection not).
    """
    transposed = _linear_weight_names(model)
    return [
        StateDictNameMapping(paddle_to_torch_name(source, key), key, "transpose" if key in transposed else None)
        for key in model.state_dict()
    ]


def convert_arrays(source: str, state_dict: Mapping[str, np.ndarray], model: nn.Layer) -> Dict[str, np.ndarray]:
    """The Paddle arrays of ``model`` from a PyTorch ``state_dict`` of ``source``, every key and value checked.

    Raises:
        ConversionError: a PyTorch key with no place, a weight with no key, a shape that disagrees, tied
            copies that differ, non-finite values; all named in one line.
    """
    if source == "lucidrains":
        if model.config.position_embedding_type == "rotary":
            _verify_rotary_frequencies(state_dict, model.config)
        state_dict = {k: v for k, v in state_dict.items() if not k.endswith("pos_emb.freqs")}
    expected = model.state_dict()
    converted, mismatched = {}, []
    by_source = {mapping.source_name: mapping for mapping in name_mappings(source, model)}
    unexpected = sorted(key for key in state_dict if key not in by_source)
    for key, mapping in by_source.items():
        if key not in state_dict:
            continue
        value = state_dict[key].T if mapping.action == "transpose" else state_dict[key]
        if list(value.shape) != list(expected[mapping.target_name].shape):
            wanted = list(expected[mapping.target_name].shape)
            wanted = wanted[::-1] if mapping.action == "transpose" else wanted
            mismatched.append(f"{key} has shape {list(state_dict[key].shape)}, expected {wanted}")
        converted[mapping.target_name] = value
    missing = sorted(key for key in by_source if key not in state_dict)
    problems = []
    if unexpected:
        problems.append(f"unexpected key(s) {unexpected}")
    if missing:
        problems.append(f"missing key(s) {missing}")
    if mismatched:
        problems.append(f"shape mismatch: {'; '.join(mismatched)}")
    problems.extend(_disagreeing_tied_copies(model, converted, source) if not problems else [])
    if problems:
        raise ConversionError(f"{source} checkpoint: " + " | ".join(problems))
    try:
        check_finite(((paddle_to_torch_name(source, key), value) for key, value in converted.items()), f"{source} checkpoint")
    except CheckpointError as error:  # nothing non-finite is ever converted
        raise ConversionError(str(error)) from None
    return {key: value.astype(np.float32) for key, value in converted.items()}


def checkpoint_config(
    source: str,
    state_dict: Mapping[str, np.ndarray],
    official_config_json: Optional[Mapping] = None,
    max_seq_len: Optional[int] = None,
) -> FastformerConfig:
    """The configuration a PyTorch checkpoint of ``source`` converts into: its sizes come from the tensors
    (lucidrains) or from the authors' config json (official)."""
    if source == "lucidrains":
        return infer_lucidrains_config(state_dict, max_seq_len)
    if source == "official":
        if official_config_json is None:
            raise ConversionError("official checkpoints need the authors' config json (--config)")
        return official_config(state_dict, official_config_json)
    raise ConversionError(f"unknown source {source!r}: expected one of {SOURCES}")


def read_official_config_json(path: str) -> dict:
    """The authors' fastformer.json, with a one-line error for a missing or broken file."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
        if not isinstance(content, dict):
            raise ConversionError(f"{path}: holds a JSON {type(content).__name__}; expected an object of config fields")
        return content
    except FileNotFoundError:
        raise ConversionError(f"{path}: config file not found") from None
    except json.JSONDecodeError as error:
        raise ConversionError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as error:
        raise ConversionError(f"{path}: unreadable ({error}); expected the authors' fastformer.json") from None

