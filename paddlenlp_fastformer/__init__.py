"""Fastformer for PaddleNLP: configuration, model, tokenizer, checkpoint conversion and fused CPU kernels.

The public names load on first use, so that ``import paddlenlp_fastformer`` (and the application's
data readers under it) does not import paddle. Importing changes nothing process-wide but the
registration with PaddleNLP's Auto classes (:mod:`.auto_registration`); the CPU tuning of
:func:`tune_cpu` is a call that tools and users make themselves.
"""
import importlib

from .auto_registration import register_when_paddlenlp_loads

# public name -> the module that defines it
_PUBLIC_NAMES = {
    "FastformerConfig": "configuration",
    "FastformerTokenizer": "tokenizer",
    "FastformerPretrainedModel": "modeling",
    "FastformerModel": "modeling",
    "FastformerForSequenceClassification": "modeling",
    "FastformerForTokenClassification": "modeling",
    "FastformerForMaskedLM": "modeling",
    "FastformerForCausalLM": "modeling",
    "FastformerForConditionalGeneration": "modeling",
    "tune_cpu": "cpu",
}
__all__ = list(_PUBLIC_NAMES)


def __getattr__(name: str):
    if name not in _PUBLIC_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


register_when_paddlenlp_loads()
