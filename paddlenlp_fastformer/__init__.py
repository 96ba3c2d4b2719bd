"""Fastformer for PaddleNLP: configuration, model, tokenizer, and their registration with the Auto classes."""
import sys

from .cpu import tune_cpu

# Before paddle makes its first matrix product (MKL reads its variable then): see cpu.py.
CPU_SETTINGS = tune_cpu()

import paddlenlp.transformers as _transformers
from paddlenlp.transformers.auto import configuration as _auto_configuration
from paddlenlp.transformers.auto import modeling as _auto_modeling

from . import configuration, modeling, tokenizer
from .configuration import FastformerConfig
from .modeling import (
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    FastformerForTokenClassification,
    FastformerModel,
    FastformerPretrainedModel,
)
from .tokenizer import FastformerTokenizer

__all__ = [
    "FastformerConfig",
    "FastformerTokenizer",
    "FastformerPretrainedModel",
    "FastformerModel",
    "FastformerForSequenceClassification",
    "FastformerForTokenClassification",
    "FastformerForMaskedLM",
]


def _register_with_paddlenlp_auto() -> None:
    """Make AutoConfig/AutoTokenizer/AutoModel* resolve ``model_type="fastformer"`` directories to our classes.

    PaddleNLP 2.8.1 has no ``register()`` API. Its Auto classes look classes up by name in
    ``paddlenlp.transformers`` (config, tokenizer) and import ``paddlenlp.transformers.<name>.modeling``
    for a name prefix listed in ``MAPPING_NAMES`` (models), so this package is exposed under that
    module path and its prefix is added to the mappings.
    """
    package = sys.modules[__name__]
    sys.modules.setdefault("paddlenlp.transformers.fastformer", package)
    for submodule in (configuration, modeling, tokenizer):
        sys.modules.setdefault(f"paddlenlp.transformers.fastformer.{submodule.__name__.rsplit('.', 1)[-1]}", submodule)
    for name in __all__:
        setattr(_transformers, name, globals()[name])

    _auto_configuration.AutoConfig.MAPPING_NAMES["fastformer"] = [FastformerConfig]
    # First, so that no other model's prefix can claim a "Fastformer..." class name.
    _auto_modeling.MAPPING_NAMES["Fastformer"] = "fastformer"
    _auto_modeling.MAPPING_NAMES.move_to_end("Fastformer", last=False)
    for task in _auto_modeling.MAPPING_TASKS:
        auto_class = getattr(_auto_modeling, _auto_modeling.MAPPING_TASKS[task], None)
        if auto_class is not None and auto_class._name_mapping is not None:
            mapping = _auto_modeling.get_name_mapping(task)
            auto_class._name_mapping.update(mapping)


_register_with_paddlenlp_auto()
