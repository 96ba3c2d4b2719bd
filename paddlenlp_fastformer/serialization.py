"""Reading and writing weight files without ever running code from them.

``paddle.load`` unpickles, and a crafted ``.pdparams`` file runs code at load time. This package
writes weights as safetensors (plain arrays) and reads a legacy pickled file only through
:class:`_ArraysOnlyUnpickler`, which admits the few globals a genuine weights file holds (numpy
arrays and dtypes, plain containers) and refuses any other before anything is called. The checks a
loaded checkpoint must pass (finite values, shapes and keys that fit the model) live here too, so
that ``from_pretrained``, the tools and the converter say the same one-line thing.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Tuple

import numpy as np

__all__ = [
    "CheckpointError",
    "load_pickled_arrays",
    "load_weights",
    "save_arrays",
    "load_arrays",
    "check_finite",
    "WEIGHT_FILES",
]

SAFE_WEIGHTS, PICKLED_WEIGHTS = "model.safetensors", "model_state.pdparams"
WEIGHT_FILES = (SAFE_WEIGHTS, PICKLED_WEIGHTS)  # in the order from_pretrained prefers them
WEIGHT_DTYPE = "float32"  # every weight of every Fastformer head; config.json's 'dtype' may say nothing else

# safetensors' dtype codes by the names numpy and Paddle print.
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64",
    "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}  # fmt: skip
# numpy has no such types: safetensors.numpy fails on them with a bare "data type not understood".
_NOT_IN_NUMPY = {"BF16", "F8_E4M3", "F8_E5M2"}

# Everything a genuine Paddle weights or optimizer-state pickle needs (read off real files): numpy
# arrays and the helpers that rebuild them, and plain containers.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "tuple"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("collections", "OrderedDict"),
}


class CheckpointError(ValueError):
    """A weights or checkpoint file that cannot be used as it is, said in one line naming the file."""


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`_ALLOWED_GLOBALS`: a payload never gets a callable to run."""

    def __init__(self, stream, path: str):
        super().__init__(stream)
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise CheckpointError(
                f"{self.path}: refusing to unpickle '{module}.{name}': a weights file may hold only arrays, and "
                "this one would run code when loaded; if you trust its source, load it yourself (paddle.load) and "
                "save the model again with save_pretrained, which writes arrays only (model.safetensors)"
            )
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise CheckpointError(f"{self.path}: refusing a pickle with persistent references; expected plain arrays")


def load_pickled_arrays(path) -> dict:
    """The content of a pickled Paddle state file (``.pdparams``), refusing anything but arrays and containers."""
    path = str(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read()
        # Parsed first, nothing built: damaged bytes whose opcodes declare more data than the file holds would
        # otherwise make the unpickler allocate it (a MemoryError, and a stray SystemError line on stderr).
        for _ in pickletools.genops(io.BytesIO(data)):
            pass
        content = _ArraysOnlyUnpickler(io.BytesIO(data), path).load()
    except CheckpointError:
        raise
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror or error})") from None
    except Exception as error:  # truncated or random bytes: pickle raises many types
        raise CheckpointError(f"{path}: not a readable weights file ({type(error).__name__}: {error})") from None
    if not isinstance(content, dict):
        raise CheckpointError(f"{path}: holds a {type(content).__name__}; expected a dict of named arrays")
    return content


def read_safetensors_header(path) -> Dict[str, Tuple[str, List[int]]]:
    """Name -> (dtype code, e.g. "F32", shape) of every tensor of a safetensors file, read from its header
    alone: nothing of the data is allocated, so the sizes a file declares can be checked before loading it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            return {name: (handle.get_slice(name).get_dtype(), list(handle.get_slice(name).get_shape()))
                    for name in handle.keys()}  # fmt: skip
    except Exception as error:  # a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable safetensors file ({' '.join(str(error).split())})") from None


def load_arrays(path) -> Dict[str, np.ndarray]:
    """The named arrays of a safetensors file, with a one-line error for a damaged one."""
    from safetensors.numpy import load_file

    for name, (dtype, _) in read_safetensors_header(path).items():
        if dtype in _NOT_IN_NUMPY:
            raise CheckpointError(
                f"{path}: tensor '{name}' has dtype {_SAFETENSORS_DTYPES[dtype]}, which numpy cannot hold; expected "
                f"{WEIGHT_DTYPE} arrays, as save_pretrained writes them"
            )
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for truncated or foreign files
        raise CheckpointError(f"{path}: not a readable safetensors file ({' '.join(str(error).split())})") from None


def load_weights(directory) -> Dict[str, np.ndarray]:
    """The weights of a ``from_pretrained`` directory as arrays, from the file ``from_pretrained`` would read."""
    for name in WEIGHT_FILES:
        path = Path(directory, name)
        if path.is_file():
            if name == SAFE_WEIGHTS:  # the header first: a bfloat16 tensor is said so, not as numpy's failure
                check_weight_dtypes(path, _dtype_names(read_safetensors_header(path)))
            arrays = load_arrays(path) if name == SAFE_WEIGHTS else _pickled_weights(path)
            arrays = {key: np.asarray(value) for key, value in arrays.items()}
            check_weight_dtypes(path, {key: value.dtype.name for key, value in arrays.items()})
            return arrays
    raise CheckpointError(f"{directory}: holds no weights ({' or '.join(WEIGHT_FILES)})")


def _dtype_names(header: Mapping) -> Dict[str, str]:
    return {name: _SAFETENSORS_DTYPES.get(dtype, dtype) for name, (dtype, _) in header.items()}


def _pickled_weights(path) -> dict:
    """The arrays of a ``.pdparams`` file, without the name table Paddle saves beside them."""
    return {key: value for key, value in load_pickled_arrays(path).items() if isinstance(value, np.ndarray)}


def check_weight_dtypes(path, dtypes: Mapping[str, str]) -> None:
    """Refuse a weights file holding anything but float32 tensors; ``dtypes`` maps tensor names to dtype names."""
    for name, dtype in dtypes.items():
        if dtype != WEIGHT_DTYPE:
            if dtype == "uint16" and str(path).endswith(".pdparams"):  # how Paddle pickles bfloat16 tensors
                dtype = "bfloat16 (stored as uint16)"
            raise CheckpointError(
                f"{path}: tensor '{name}' has dtype {dtype}, the model expects {WEIGHT_DTYPE} (this CPU build runs "
                f"{WEIGHT_DTYPE} models); convert the weights to {WEIGHT_DTYPE} and save them again"
            )


def save_arrays(arrays: Mapping[str, np.ndarray], path, metadata: Mapping[str, str] = None) -> None:
    """Write named arrays as safetensors, through a temporary file renamed into place."""
    from safetensors.numpy import save

    from .file_utils import write_bytes_atomically

    # {"format": "np"}: the metadata PaddleNLP's loader reads (as its own save_pretrained writes it).
    data = save({key: np.ascontiguousarray(value) for key, value in arrays.items()}, metadata={"format": "np", **(metadata or {})})
    write_bytes_atomically(path, data)


def check_finite(arrays: Iterable, where: str) -> None:
    """Refuse NaN or infinite values: ``arrays`` yields (name, array); ``where`` names the file or model."""
    for name, value in arrays:
        value = np.asarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).sum())
            raise CheckpointError(f"{where}: weight '{name}' holds {bad} non-finite value(s) (NaN or inf)")


def weights_file(directory) -> str:
    """The weights file ``from_pretrained`` would read in ``directory``, or '' if none."""
    for name in WEIGHT_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return ""


def check_pretrained_dir(directory: str, use_safetensors=None, overrides: Mapping = None) -> None:
    """What ``from_pretrained`` is about to read in ``directory``, checked without running any of it.

    ``config.json`` must parse; the weights file it will load must be a readable safetensors file, or
    a pickle of arrays only, of float32 tensors whose shapes are those config.json's sizes give (read
    before any model is built, so that absurd sizes never reach the allocator); a vocabulary beside
    them must have the model's ``vocab_size`` tokens. ``overrides`` are ``from_pretrained``'s keyword
    arguments: a size given there (or a whole ``config``) replaces config.json's, and is not checked here.
    """
    config_path = os.path.join(directory, "config.json")
    config = _read_json(config_path, required=True)
    _check_config_fields(config_path, config)
    # PaddleNLP prefers a sharded index over the single file, and loads shards without any of these checks.
    sharded = sorted(name for name in os.listdir(directory) if name.endswith(".index.json"))
    if sharded:
        raise CheckpointError(
            f"{os.path.join(directory, sharded[0])}: sharded checkpoints are not read (their shards would be loaded "
            f"unchecked); expected the single {SAFE_WEIGHTS} that save_pretrained writes"
        )
    safe, pickled = os.path.join(directory, SAFE_WEIGHTS), os.path.join(directory, PICKLED_WEIGHTS)
    weights, shapes = None, {}
    if use_safetensors is not False and os.path.isfile(safe):
        weights, header = safe, _check_safetensors_header(safe)
        check_weight_dtypes(safe, _dtype_names(header))
        shapes = {name: shape for name, (_, shape) in header.items()}
    elif os.path.isfile(pickled):
        weights, arrays = pickled, _pickled_weights(pickled)
        check_weight_dtypes(pickled, {name: value.dtype.name for name, value in arrays.items()})
        shapes = {name: list(value.shape) for name, value in arrays.items()}
    overrides = overrides or {}
    if weights and "config" not in overrides:
        sizes = {field: value for field, value in config.items() if field not in overrides}
        check_sizes_fit_weights(config_path, sizes, weights, shapes)
    _check_vocabulary_size(directory, config)


# The sizes a weights file pins down: config.json field -> the weight (under the base model) and axis holding it.
_SIZE_WEIGHTS = (
    ("vocab_size", "embeddings.word_embeddings.weight", 0),
    ("hidden_size", "embeddings.word_embeddings.weight", 1),
    ("max_position_embeddings", "embeddings.position_embeddings.weight", 0),
    ("intermediate_size", "layers.0.ffn_in.weight", 1),
    ("num_attention_heads", "layers.0.attention.query_att.weight", 1),  # official: one score per head
    ("attention_head_size", "layers.0.attention.to_q_attn_logits.weight", 0),  # lucidrains: one per head feature
)


def check_sizes_fit_weights(config_path: str, config: Mapping, weights_path: str, shapes: Mapping) -> None:
    """Refuse a config whose sizes differ from the weights' shapes (name -> shape), before a model of those sizes
    is allocated: a hand-edited or mismatched config.json could otherwise ask for terabytes. A field missing from
    ``config`` or not an integer is left to FastformerConfig's own validation."""
    base = "fastformer."

    def refuse(field, value, name, what=""):
        raise CheckpointError(
            f"{config_path}: {field} is {value}, but {os.path.basename(weights_path)} holds '{name}' of shape "
            f"{list(shapes[name])}{what}; expected config.json and the weights of one save_pretrained"
        )

    for field, suffix, axis in _SIZE_WEIGHTS:
        value = config.get(field)
        name = base + suffix if base + suffix in shapes else suffix
        if type(value) is int and name in shapes and len(shapes[name]) > axis and shapes[name][axis] != value:
            refuse(field, value, name)
    heads, qkv = config.get("num_attention_heads"), base + "layers.0.attention.to_qkv.weight"
    qkv = qkv if qkv in shapes else qkv[len(base):]
    head_size = _head_size(config)
    if head_size and qkv in shapes and shapes[qkv][-1] != 3 * heads * head_size:  # lucidrains: q, k, v of every head
        refuse("num_attention_heads", heads, qkv, f" (3 x heads x {head_size} features per head)")
    layers = {int(match.group(2)) for key in shapes if (match := re.match(r"(fastformer\.)?layers\.(\d+)\.", key))}
    value = config.get("num_hidden_layers")
    if type(value) is int and layers and value != max(layers) + 1:
        name = next(key for key in shapes if re.match(rf"(fastformer\.)?layers\.{max(layers)}\.", key))
        refuse("num_hidden_layers", value, name, f" (the last of {max(layers) + 1} layers)")


def _head_size(config: Mapping) -> int:
    """Features per head as FastformerConfig resolves them, or 0 where the fields are not usable integers."""
    heads, hidden, given = (config.get(field) for field in ("num_attention_heads", "hidden_size", "attention_head_size"))
    if type(heads) is not int or heads < 1:
        return 0
    if given is None:
        return hidden // heads if type(hidden) is int else 0
    return given if type(given) is int else 0


def _read_json(path: str, required: bool) -> dict:
    import json

    if not os.path.isfile(path):
        if required:
            raise CheckpointError(f"{path}: not found; expected a directory written by save_pretrained")
        return {}
    try:
        with open(path, encoding="utf-8") as stream:
            content = json.load(stream)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({' '.join(str(error).split())})") from None
    if not isinstance(content, dict):
        raise CheckpointError(f"{path}: holds a JSON {type(content).__name__}; expected an object")
    return content


def _check_config_fields(path: str, config: dict) -> None:
    """The fields PaddleNLP reads before any validation of ours: wrong types there end in its tracebacks."""
    if "vocab_size" in config and type(config["vocab_size"]) is not int:
        raise CheckpointError(f"{path}: 'vocab_size' is {config['vocab_size']!r}; expected an integer")
    for field in ("id2label", "label2id"):
        # null is what PaddleNLP writes for a mapping it was not given
        if config.get(field) is not None and not isinstance(config[field], dict):
            raise CheckpointError(f"{path}: '{field}' is a {type(config[field]).__name__}; expected a mapping")
    if config.get("dtype", "float32") not in ("float32", None):
        raise CheckpointError(f"{path}: 'dtype' is {config['dtype']!r}; this CPU build runs float32 models")


def _check_safetensors_header(path: str) -> Dict[str, Tuple[str, List[int]]]:
    """The tensors :func:`read_safetensors_header` finds, once the metadata PaddleNLP needs is there."""
    from safetensors import safe_open

    header = read_safetensors_header(path)
    with safe_open(path, framework="np") as handle:
        metadata = handle.metadata()
    if not metadata or metadata.get("format") != "np":
        raise CheckpointError(
            f"{path}: lacks the metadata {{'format': 'np'}} that PaddleNLP reads; re-save it with save_pretrained"
        )
    return header


def _check_vocabulary_size(directory: str, config: dict) -> None:
    vocab = os.path.join(directory, "vocab.txt")
    if not os.path.isfile(vocab) or "vocab_size" not in config:
        return
    with open(vocab, encoding="utf-8", errors="replace") as stream:
        tokens = sum(1 for _ in stream)
    added = len(_read_json(os.path.join(directory, "added_tokens.json"), required=False))
    if tokens + added != config["vocab_size"]:
        extra = f" + {added} added" if added else ""
        raise CheckpointError(
            f"{vocab}: holds {tokens}{extra} tokens but config.json has vocab_size={config['vocab_size']}; "
            "the vocabulary and the model must come from the same save"
        )


def check_state_fits(model, state_dict: Mapping, source: str, checkpoint_architectures) -> None:
    """Refuse weights that do not fit ``model``: a shape that differs, a weight of the model missing, a
    non-finite value. A task head may be missing only when the checkpoint is of another architecture
    (a base model or another head, as when fine-tuning from a pretrained encoder)."""
    prefix = f"{model.base_model_prefix}."
    expected = {key: list(value.shape) for key, value in model.state_dict().items()}
    has_prefix = any(key.startswith(prefix) for key in state_dict)
    expects_prefix = any(key.startswith(prefix) for key in expected)
    dtypes = {key: value.dtype for key, value in model.state_dict().items()}
    same_architecture = type(model).__name__ in (checkpoint_architectures or [])
    found, unexpected = set(), []
    for key, value in state_dict.items():
        target = key
        if expects_prefix and not has_prefix:
            target = prefix + key
        elif has_prefix and not expects_prefix:
            target = key[len(prefix):] if key.startswith(prefix) else None
        if target not in expected:
            unexpected.append(key)
            continue
        if value.dtype != dtypes[target]:
            found_dtype, wanted = (str(dtype).replace("paddle.", "") for dtype in (value.dtype, dtypes[target]))
            raise CheckpointError(f"{source}: weight '{key}' has dtype {found_dtype}, the model expects {wanted}")
        if list(value.shape) != expected[target]:
            raise CheckpointError(
                f"{source}: weight '{key}' has shape {list(value.shape)}, the model (per config.json) expects "
                f"{expected[target]}"
            )
        found.add(target)
    if same_architecture and unexpected:
        raise CheckpointError(f"{source}: unexpected weight(s) {sorted(unexpected)[:3]} for {type(model).__name__}")
    missing = sorted(set(expected) - found)
    # The pooler alone may be absent: a masked-LM or token-classification checkpoint has none, and the
    # heads that pool start it fresh (as PaddleNLP does for any head weight the file lacks).
    encoder_missing = [
        key for key in missing
        if (key.startswith(prefix) or not expects_prefix) and not key.removeprefix(prefix).startswith("pooler.")
    ]  # fmt: skip
    if encoder_missing or (same_architecture and missing):
        names = (encoder_missing or missing)[:3]
        raise CheckpointError(
            f"{source}: missing weight(s) {names}{' ...' if len(missing) > 3 else ''} of {type(model).__name__}; "
            "the file is incomplete or belongs to another model"
        )
    check_finite(((key, np.asarray(value)) for key, value in state_dict.items()), source)
