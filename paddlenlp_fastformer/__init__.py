"""Fastformer for PaddleNLP: configuration, model with every head, tokenizer, checkpoint conversion and
fused CPU kernels; what PaddleNLP would hold as ``paddlenlp/transformers/fastformer/``.

Importing the package registers its classes with PaddleNLP's Auto classes and changes nothing else
process-wide; the model's first CPU forward applies :func:`tune_cpu` (unless told not to), the tools call it first.
"""
import sys

import paddlenlp.transformers as _transformers
from paddlenlp.transformers.auto import configuration as _auto_configuration
from paddlenlp.transformers.auto import modeling as _auto_modeling

from . import configuration, modeling, tokenizer
from .configuration import FastformerConfig, FastformerConfigError
from .cpu import tune_cpu
from .modeling import (
    FastformerForCausalLM,
    FastformerForConditionalGeneration,
    FastformerForMaskedLM,
    FastformerForSequenceClassification,
    FastformerForTokenClassification,
    FastformerModel,
    FastformerPretrainedModel,
)
from .tokenizer import FastformerTokenizer

__all__ = [
    "FastformerConfig",
    "FastformerConfigError",
    "FastformerTokenizer",
    "FastformerPretrainedModel",
    "FastformerModel",
    "FastformerForSequenceClassification",
    "FastformerForTokenClassification",
    "FastformerForMaskedLM",
    "FastformerForCausalLM",
    "FastformerForConditionalGeneration",
    "tune_cpu",
]


def _register_with_paddlenlp_auto_classes() -> None:
    """PaddleNLP 2.8.1 has no ``register()``: its Auto classes find configs and tokenizers by class name in
    ``paddlenlp.transformers``, and models by importing ``paddlenlp.transformers.<name>.modeling`` for a
    class-name prefix of ``MAPPING_NAMES``. So this package is put at that module path, and its prefix
    first in the mapping, so that no other model's prefix claims a "Fastformer..." class name."""
    sys.modules.setdefault("paddlenlp.transformers.fastformer", sys.modules[__name__])
    for module in (configuration, modeling, tokenizer):
        sys.modules.setdefault(f"paddlenlp.transformers.fastformer.{module.__name__.rsplit('.', 1)[1]}", module)
    for name in __all__:
        if name.startswith("Fastformer"):
            setattr(_transformers, name, globals()[name])
    _auto_configuration.AutoConfig.MAPPING_NAMES["fastformer"] = [FastformerConfig]
    _auto_modeling.MAPPING_NAMES["Fastformer"] = "fastformer"
    _auto_modeling.MAPPING_NAMES.move_to_end("Fastformer", last=False)
    for task, class_name in _auto_modeling.MAPPING_TASKS.items():
        auto_class = getattr(_auto_modeling, class_name, None)
        if auto_class is not None and auto_class._name_mapping is not None:
            auto_class._name_mapping.update(_auto_modeling.get_name_mapping(task))


_register_with_paddlenlp_auto_classes()
