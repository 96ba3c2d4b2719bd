"""Experiment settings: a YAML file plus PaddleClas-style ``-o Section.key=value`` overrides.

Four sections. ``Global``, ``Data`` and ``Optimizer`` are declared once, below, as one dataclass
each: every field carries its default, its type (from the annotation) and a one-line ``doc``;
optional ``choices`` and ``rule`` metadata restrict its values. ``Model`` is not re-declared here:
its keys are the arguments of :class:`~paddlenlp_fastformer.FastformerConfig` (documented there)
except those the data decides (vocabulary size, padding id, labels), and a ``Model`` section is
valid exactly when ``FastformerConfig`` accepts it. Every problem is a one-line
:class:`~.errors.UserError` naming the key and the file or override that set it.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
import reprlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Optional

import yaml

from paddlenlp_fastformer.configuration import FastformerConfig, FastformerConfigError
from paddlenlp_fastformer.file_utils import write_text_atomically

from .errors import UserError

__all__ = [
    "GlobalConfig",
    "DataConfig",
    "OptimizerConfig",
    "Config",
    "MODEL_KEYS",
    "load_config",
    "config_to_dict",
    "declared_default",
    "save_config",
]


class Rule(NamedTuple):
    """A range constraint on a numeric field; ``text`` completes "expected a value ..."."""

    text: str
    holds: Callable[[Any], bool]


# Every rule holds only for finite numbers: `lr: .inf` or `nan` is never a setting.
POSITIVE = Rule("> 0 (and finite)", lambda v: math.isfinite(v) and v > 0)
NON_NEGATIVE = Rule(">= 0 (and finite)", lambda v: math.isfinite(v) and v >= 0)
PROBABILITY = Rule("in [0, 1)", lambda v: 0 <= v < 1)
STEP_LIMIT = Rule("equal to -1 or > 0", lambda v: v == -1 or v > 0)
SEED = Rule("in [0, 2**32)", lambda v: 0 <= v < 2**32)  # what numpy's seeding accepts
THREADS = Rule("in [0, 1024]", lambda v: 0 <= v <= 1024)  # larger counts overflow paddle's own types
NON_EMPTY = Rule("that is not empty", lambda v: bool(v.strip()))
OPEN_PROBABILITY = Rule("in (0, 1)", lambda v: 0 < v < 1)
FILE_LIST = Rule("that lists file paths (non-empty strings)", lambda v: all(isinstance(x, str) and x.strip() for x in v))


def _field(default: Any, doc: str, *, choices: Optional[tuple] = None, rule: Optional[Rule] = None) -> Any:
    """Declare a schema field; pass ``dataclasses.MISSING`` as default to make it required."""
    return dataclasses.field(default=default, metadata={"doc": doc, "choices": choices, "rule": rule})


@dataclass
class GlobalConfig:
    """``Global``: run control, checkpoints and logging."""

    seed: int = _field(42, "Seed of python, numpy and paddle random generators.", rule=SEED)
    epochs: int = _field(3, "Number of passes over the training set.", rule=POSITIVE)
    max_steps: int = _field(-1, "Stop after this many optimizer steps; -1 runs all epochs.", rule=STEP_LIMIT)
    output_dir: str = _field("output/fastformer", "Where checkpoints, logs and the resolved config go.", rule=NON_EMPTY)
    checkpoint: Optional[str] = _field(
        None, "The trained model directory tools/eval.py evaluates (e.g. output/amazon/best); training never reads it."
    )
    pretrained_model: Optional[str] = _field(
        None, "The trained model directory tools/export_model.py exports (e.g. output/amazon/best)."
    )
    save_inference_dir: str = _field("inference", "Where tools/export_model.py writes the static model.", rule=NON_EMPTY)
    num_threads: int = _field(0, "CPU threads for paddle; 0 uses all cores.", rule=THREADS)
    log_interval: int = _field(20, "Log the training loss every this many steps.", rule=POSITIVE)
    eval_every_epoch: bool = _field(True, "Evaluate on the dev set after each epoch; false reads no dev set (no best/).")
    eval_steps: int = _field(
        0, "Also evaluate on the dev set (keeping best/, saving last/) every this many steps; 0 only at epochs' ends. "
        "A pretraining's few long epochs get a dev curve this way.", rule=NON_NEGATIVE,
    )
    resume: bool = _field(True, "Resume from output_dir/last when it exists.")
    save_steps: int = _field(0, "Also save output_dir/last every this many steps; 0 saves at epoch ends only.", rule=NON_NEGATIVE)
    predictions_file: Optional[str] = _field(None, "tools/eval.py writes per-example predictions here (JSON lines).")
    use_visualdl: bool = _field(
        False, "Also write VisualDL scalars (loss, learning rate, tokens/s, dev accuracy and macro-F1) to output_dir/vdl."
    )
    task: str = _field(
        "classification",
        "What tools/train.py trains: classification (a label per text, folders of tools/prepare_data.py) or seq2seq "
        "(a summary per text, e.g. a review's title: folders of tools/prepare_pairs.py, FastformerForConditionalGeneration).",
        choices=("classification", "seq2seq"),
    )
    init_from: Optional[str] = _field(
        None,
        "A from_pretrained directory (a pretraining output, or a classifier of another task) whose vocabulary, "
        "embeddings and encoder start this training; the classification head starts fresh. The Model section "
        "must describe the same architecture. A run resuming from output_dir/last continues its own weights and must "
        "name the same init_from.",
    )


@dataclass
class DataConfig:
    """``Data``: the prepared dataset and how it is batched."""

    data_dir: str = _field(dataclasses.MISSING, "Folder written by tools/prepare_data.py.", rule=NON_EMPTY)
    train_file: str = _field("train.jsonl", "Training split, relative to data_dir.", rule=NON_EMPTY)
    dev_file: str = _field("dev.jsonl", "Development split, relative to data_dir.", rule=NON_EMPTY)
    test_file: str = _field("test.jsonl", "Test split, relative to data_dir.", rule=NON_EMPTY)
    eval_file: Optional[str] = _field(None, "A file to evaluate instead of test_file.")
    batch_size: int = _field(64, "Training examples per optimizer step.", rule=POSITIVE)
    eval_batch_size: int = _field(128, "Examples per evaluation batch.", rule=POSITIVE)
    max_seq_len: int = _field(
        512,
        "Tokens kept per training example. Saved with the checkpoint, it is also where evaluation, export "
        "and prediction truncate.",
        rule=POSITIVE,
    )
    max_batch_tokens: Optional[int] = _field(
        None,
        "Cap on a batch's padded tokens (examples x longest), training and evaluation: a batch of long texts over it "
        "is cut into smaller ones, so whole documents fit in memory; null caps nothing.",
        rule=POSITIVE,
    )
    max_vocab_size: Optional[int] = _field(None, "Keep only the most frequent tokens; null keeps all.", rule=POSITIVE)
    min_freq: int = _field(1, "Drop tokens seen fewer times than this in training.", rule=POSITIVE)
    num_workers: int = _field(0, "DataLoader worker processes; 0 loads in the main process.", rule=NON_NEGATIVE)
    class_weights: str = _field(
        "none",
        "Loss weight per class: none (plain cross-entropy, as the paper), or balanced (n / (classes x count), "
        "scikit-learn's rule, from the training split) for skewed labels.",
        choices=("none", "balanced"),
    )
    sampler: str = _field(
        "shuffle",
        "Which training examples an epoch visits: shuffle (each once), or class_balanced (drawn with replacement, "
        "every class equally often). Batches are length-bucketed either way.",
        choices=("shuffle", "class_balanced"),
    )
    mask_prob: float = _field(
        0.15, "Pretraining only: the share of tokens a masked-LM batch chooses as targets (BERT: 0.15).", rule=OPEN_PROBABILITY
    )
    max_target_len: int = _field(
        32, "Sequence-to-sequence only: tokens kept per summary (a review's title), its end token included.", rule=POSITIVE
    )
    held_out_files: Optional[list] = _field(
        None,
        "Pretraining only, and required there: the dev and test splits (JSON lines or .txt) of every later fine-tune; "
        "tools/pretrain.py refuses pretraining text that holds any of their reviews, naming the file ([] skips the check).",
        rule=FILE_LIST,
    )


@dataclass
class OptimizerConfig:
    """``Optimizer``: optimizer, learning-rate schedule and gradient clipping."""

    name: str = _field("adam", "adam, or adamw for decoupled weight decay.", choices=("adam", "adamw"))
    lr: float = _field(1e-3, "Peak learning rate.", rule=POSITIVE)
    weight_decay: float = _field(0.0, "Weight-decay coefficient.", rule=NON_NEGATIVE)
    beta1: float = _field(0.9, "First-moment decay.", rule=PROBABILITY)
    beta2: float = _field(0.999, "Second-moment decay.", rule=PROBABILITY)
    epsilon: float = _field(1e-8, "Denominator epsilon.", rule=POSITIVE)
    scheduler: str = _field(
        "constant", "Learning rate after warmup: constant, or linear decay to 0.", choices=("constant", "linear")
    )
    warmup_steps: int = _field(0, "Steps of linear warmup from 0 to lr.", rule=NON_NEGATIVE)
    grad_clip: float = _field(0.0, "Clip the global gradient norm to this; 0 disables clipping.", rule=NON_NEGATIVE)


# Model fields the data decides: the tokenizer sets the vocabulary size and padding id, the label set the labels.
DATA_DECIDED_MODEL_KEYS = ("vocab_size", "pad_token_id", "num_labels", "num_classes", "id2label", "label2id")
# Every other argument of FastformerConfig is a Model key, with FastformerConfig's default.
MODEL_KEYS = {
    name: parameter.default
    for name, parameter in inspect.signature(FastformerConfig.__init__).parameters.items()
    if parameter.kind is parameter.POSITIONAL_OR_KEYWORD and name != "self" and name not in DATA_DECIDED_MODEL_KEYS
}


@dataclass
class Config:
    """A whole experiment; ``section`` metadata gives each attribute's YAML section name.

    ``model`` holds every Model key (:data:`MODEL_KEYS`) with its resolved value: the keyword
    arguments of ``FastformerConfig`` besides those the data decides.
    """

    global_: GlobalConfig = dataclasses.field(metadata={"section": "Global"})
    data: DataConfig = dataclasses.field(metadata={"section": "Data"})
    model: dict = dataclasses.field(metadata={"section": "Model"})
    optimizer: OptimizerConfig = dataclasses.field(metadata={"section": "Optimizer"})

    @property
    def is_transformer_baseline(self) -> bool:
        """Whether this is the softmax-attention Transformer baseline rather than Fastformer."""
        return self.model["attention_type"] == "softmax"


# YAML section name -> Config attribute, in declaration order; and the dataclass of each declared section.
_ATTRIBUTES = {f.metadata["section"]: f.name for f in dataclasses.fields(Config)}
_DECLARED = {"Global": GlobalConfig, "Data": DataConfig, "Optimizer": OptimizerConfig}


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 120


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float, and refuses a key given twice in one mapping.

    PyYAML follows YAML 1.1, where a float needs a dot, so ``lr: 1e-3`` would silently be the
    string "1e-3" and fail the type check; and it lets a repeated key silently win. Changing both on
    a subclass leaves ``yaml.safe_load`` itself untouched.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _section_fields(section: str) -> dict[str, Any]:
    """Key -> dataclass field of a declared section, or key -> default for Model."""
    if section == "Model":
        return MODEL_KEYS
    return {f.name: f for f in dataclasses.fields(_DECLARED[section])}


def _check_section(section: Any, source: str) -> None:
    if section not in _ATTRIBUTES:
        raise UserError(f"unknown section {section!r} in {source}; allowed sections: {', '.join(_ATTRIBUTES)}")


def _check_key(section: Any, key: Any, source: str) -> None:
    _check_section(section, source)
    if key not in _section_fields(section):
        hint = " (set from the data, not the config)" if section == "Model" and key in DATA_DECIDED_MODEL_KEYS else ""
        raise UserError(
            f"unknown key '{section}.{key}' in {source}{hint}; allowed keys of {section}: "
            f"{', '.join(_section_fields(section))}"
        )


def _checked_value(section: Any, key: Any, value: Any, source: str) -> Any:
    """Check the key, then ``value`` against the field's type, choices and rule; return it as that type.

    Model values are checked all together by FastformerConfig once every source is read.
    """
    _check_key(section, key, source)
    if section == "Model":
        return value
    field = _section_fields(section)[key]
    expected = typing.get_type_hints(_DECLARED[section])[key]
    optional = typing.get_origin(expected) is typing.Union
    if optional:
        expected = next(t for t in typing.get_args(expected) if t is not type(None))
    where = f"'{section}.{key}' in {source}"
    type_text = expected.__name__ + (" or null" if optional else "")
    if value is None:
        if optional:
            return None
        raise UserError(f"{where} must not be null; expected {type_text}")
    shown = _SHORT_REPR.repr(value)  # a value built by YAML aliases can be enormous
    if expected is float and type(value) is int:
        value = float(value)
    # An exact type match: bool is a subclass of int, but `batch_size: true` is surely a mistake.
    if type(value) is not expected:
        raise UserError(f"{where} has value {shown} of type {type(value).__name__}; expected {type_text}")
    choices, rule = field.metadata["choices"], field.metadata["rule"]
    if choices is not None and value not in choices:
        raise UserError(f"{where} has value {shown}; allowed values: {', '.join(choices)}")
    if rule is not None and not rule.holds(value):
        raise UserError(f"{where} has value {shown}; expected a value {rule.text}")
    return value


def _read_file(path: Path) -> dict:
    """Return the file's sections as a mapping, reporting I/O and YAML problems in one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); expected a YAML file") from None
    try:
        content = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{where}: invalid YAML: {problem}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise UserError(f"{path}: expected a mapping of sections ({', '.join(_ATTRIBUTES)}) at the top level")
    return content


def _parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``Section.key=value`` and parse the value as YAML."""
    if "=" not in text:
        raise UserError(f"override {text!r} has no '='; expected Section.key=value")
    dotted, raw = text.split("=", 1)
    section, dot, key = dotted.strip().partition(".")
    if not dot or not key:
        raise UserError(f"override {text!r} does not name Section.key; expected Section.key=value")
    try:
        value = _parse_yaml(raw)
    except yaml.YAMLError as exc:
        raise UserError(f"override {text!r}: value is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return section, key, value


BASE_KEY = "_BASE_"


# Section -> key -> (value, where it was set): the file or override named in error messages.
SourcedValues = dict[str, dict[str, tuple[Any, str]]]


def _file_values(path: Path, including: tuple[Path, ...] = ()) -> SourcedValues:
    """The checked values set by ``path``, on top of those of the file its ``_BASE_`` key names.

    ``_BASE_`` (as in PaddleDetection) is a path relative to the including file; a variant config,
    such as the softmax baseline of an experiment, then states only what differs from its base.
    """
    content = _read_file(path)
    base = content.pop(BASE_KEY, None)
    if base is None:
        values: SourcedValues = {section: {} for section in _ATTRIBUTES}
    elif not isinstance(base, str):
        raise UserError(f"'{BASE_KEY}' in {path} has value {base!r}; expected the path of a base config file")
    else:
        base_path = path.parent / base
        if base_path.resolve() in including + (path.resolve(),):
            raise UserError(f"'{BASE_KEY}' in {path} names {base_path}, which includes {path} itself")
        if not base_path.is_file():
            raise UserError(f"'{BASE_KEY}' in {path} names {base_path}, which is not a file")
        values = _file_values(base_path, including + (path.resolve(),))
    for section, entries in content.items():
        _check_section(section, str(path))
        if entries is None:  # an empty `Model:` block just keeps the defaults
            continue
        if not isinstance(entries, dict):
            raise UserError(f"section {section!r} in {path} must be a mapping of keys to values")
        for key, value in entries.items():
            values[section][key] = (_checked_value(section, key, value, str(path)), str(path))
    return values


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read ``path`` (and its ``_BASE_`` chain), apply ``overrides`` in order (later wins), validate.

    Raises:
        UserError: on any problem, with a one-line message naming the key and its source.
    """
    path = Path(path)
    values = _file_values(path)
    for text in overrides:
        section, key, value = _parse_override(text)
        source = f"override {text!r}"
        values[section][key] = (_checked_value(section, key, value, source), source)

    sections = {}
    for section, cls in _DECLARED.items():
        given = {key: value for key, (value, _) in values[section].items()}
        for field in dataclasses.fields(cls):
            if field.default is dataclasses.MISSING and field.name not in given:
                raise UserError(
                    f"'{section}.{field.name}' is required: set it in {path} or with -o {section}.{field.name}=..."
                )
        sections[_ATTRIBUTES[section]] = cls(**given)
    config = Config(model=_model_values(values["Model"]), **sections)
    _check_consistency(config)
    return config


def _model_values(given: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """Every Model key with its value, checked by building a ``FastformerConfig`` from them."""
    model = {key: given[key][0] if key in given else default for key, default in MODEL_KEYS.items()}
    try:
        FastformerConfig(**model)
    except FastformerConfigError as error:
        # Name the first of the fields at fault that a file or override set: that is the one to change.
        field = next((name for name in (error.field, *error.related) if name in given), error.field)
        source = given[field][1] if field in given else "the defaults of FastformerConfig"
        message = str(error).split(": ", 1)[1]
        raise UserError(f"'Model.{field}' in {source}: {message}") from None
    return model


def _check_consistency(config: Config) -> None:
    """Constraints that span sections, which no single model or data class can see."""
    if config.global_.task == "seq2seq" and config.data.max_target_len > config.model["max_position_embeddings"]:
        raise UserError(
            f"'Data.max_target_len' ({config.data.max_target_len}) exceeds 'Model.max_position_embeddings' "
            f"({config.model['max_position_embeddings']}); the decoder has no positions for the extra tokens"
        )
    if config.data.max_seq_len > config.model["max_position_embeddings"]:
        raise UserError(
            f"'Data.max_seq_len' ({config.data.max_seq_len}) exceeds 'Model.max_position_embeddings' "
            f"({config.model['max_position_embeddings']}); the model has no positions for the extra tokens"
        )
    if config.global_.eval_steps and not config.global_.eval_every_epoch:
        raise UserError(
            f"'Global.eval_steps' ({config.global_.eval_steps}) asks for dev evaluations, but 'Global.eval_every_epoch' "
            "is false, which reads no dev set; expected eval_every_epoch true, or eval_steps 0"
        )


def declared_default(section: str, key: str) -> Any:
    """The default a key of ``section`` has (a Model key: FastformerConfig's), or None for a required or unknown one."""
    if section == "Model":
        return MODEL_KEYS.get(key)
    fields = {field.name: field for field in dataclasses.fields(_DECLARED[section])}
    default = fields[key].default if key in fields else None
    return None if default is dataclasses.MISSING else default


def config_to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The config as ``{"Global": {...}, "Data": {...}, ...}``, ready for ``yaml.safe_dump``."""
    return {
        section: dict(section_value) if isinstance(section_value, dict) else dataclasses.asdict(section_value)
        for section, section_value in ((s, getattr(config, a)) for s, a in _ATTRIBUTES.items())
    }


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML that :func:`load_config` reads back unchanged."""
    write_text_atomically(str(path), yaml.safe_dump(config_to_dict(config), sort_keys=False))
