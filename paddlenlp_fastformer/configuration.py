"""Fastformer model configuration.

One configuration describes both public formulations of Fastformer (arXiv 2108.09084):

* ``formulation="official"``: the paper authors' PyTorch code. Post-LayerNorm BERT-style blocks,
  the query doubles as the value, each head's additive-attention score reads the whole query
  (``query_att``: hidden -> heads), the global key sums ``p = global_query * key``, learned absolute
  positions with an embedding LayerNorm, and an additive-attention pooler.
* ``formulation="lucidrains"``: fast-transformer-pytorch 0.0.4. Pre-LayerNorm blocks, a separate
  value, one score vector per head size shared by all heads and tied across layers, the global key
  sums the raw keys, ``to_r``/``to_out`` projections, absolute or rotary positions.

The default is the official formulation with the paper's Amazon settings (Table 9).
"""
from __future__ import annotations

import math
import reprlib
from typing import Any, Callable, NamedTuple, Optional

from paddlenlp.transformers.activations import ACT2FN
from paddlenlp.transformers.configuration_utils import PretrainedConfig


__all__ = [
    "FastformerConfig", "FastformerConfigError", "FORMULATIONS", "POSITION_EMBEDDING_TYPES", "ATTENTION_TYPES", "CROSS_ATTENTION_TYPES",
    "MAX_SIZES", "MAX_WEIGHT_ELEMENTS",
]  # fmt: skip

FORMULATIONS = ("official", "lucidrains")
POSITION_EMBEDDING_TYPES = ("absolute", "rotary")
ATTENTION_TYPES = ("additive", "softmax")
CROSS_ATTENTION_TYPES = ("softmax", "additive")


class FastformerConfigError(ValueError):
    """A configuration value no formulation accepts.

    ``field`` names the ``FastformerConfig`` field at fault; ``related`` the other fields of a
    combination that no formulation defines (any of them may be the one to change).
    """

    def __init__(self, field: str, message: str, related: tuple = ()):
        super().__init__(f"FastformerConfig.{field}: {message}")
        self.field, self.related = field, tuple(related)


class _Rule(NamedTuple):
    """What one field accepts: its Python type(s) and a predicate on the value; ``text`` says it in words."""

    types: tuple
    holds: Callable[[Any], bool]
    text: str


_SHORT_REPR = reprlib.Repr()  # a value read from a file can be enormous: show its start
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 120


def _finite(value) -> bool:
    return not isinstance(value, float) or math.isfinite(value)



def _size(limit: int) -> _Rule:
    return _Rule((int,), lambda v: 0 < v <= limit, f"a positive integer up to {limit:,}")


# Upper bounds on sizes, far above any model this CPU build trains or serves (public vocabularies hold up to a
# few hundred thousand tokens, the widest models some tens of thousands of features): a size past them is a typo
# or a damaged file, and would otherwise go on to ask Paddle's allocator for terabytes.
MAX_SIZES = {
    "vocab_size": 2**24,
    "hidden_size": 2**16,
    "intermediate_size": 2**18,
    "num_hidden_layers": 2**10,
    "num_attention_heads": 2**12,
    "attention_head_size": 2**16,
    "max_position_embeddings": 2**24,
}
# No single weight may hold this many float32 values or more (8 GiB): the bounds above still multiply to terabytes.
MAX_WEIGHT_ELEMENTS = 2**31
_PROBABILITY = _Rule((int, float), lambda v: _finite(v) and 0 <= v < 1, "a number in [0, 1)")
_POSITIVE_FINITE = _Rule((int, float), lambda v: _finite(v) and v > 0, "a finite number > 0")

# Every field the model reads, with what it accepts. Cross-field constraints are checked after these.
_FIELD_RULES = {
    "vocab_size": _size(MAX_SIZES["vocab_size"]),
    "hidden_size": _size(MAX_SIZES["hidden_size"]),
    "num_hidden_layers": _size(MAX_SIZES["num_hidden_layers"]),
    "num_attention_heads": _size(MAX_SIZES["num_attention_heads"]),
    "intermediate_size": _size(MAX_SIZES["intermediate_size"]),
    "max_position_embeddings": _size(MAX_SIZES["max_position_embeddings"]),
    "hidden_act": _Rule((str,), lambda v: v in ACT2FN, f"one of {', '.join(sorted(ACT2FN))}"),
    "hidden_dropout_prob": _PROBABILITY,
    "attention_probs_dropout_prob": _PROBABILITY,
    "initializer_range": _POSITIVE_FINITE,
    "layer_norm_eps": _POSITIVE_FINITE,
    "pad_token_id": _Rule((int,), lambda v: v >= 0, "an integer >= 0"),
    "formulation": _Rule((str,), lambda v: v in FORMULATIONS, f"one of {FORMULATIONS}"),
    "position_embedding_type": _Rule(
        (str,), lambda v: v in POSITION_EMBEDDING_TYPES, f"one of {POSITION_EMBEDDING_TYPES}"
    ),
    "attention_head_size": _Rule(
        (int, type(None)),
        lambda v: v is None or 0 < v <= MAX_SIZES["attention_head_size"],
        f"a positive integer up to {MAX_SIZES['attention_head_size']:,} or None",
    ),
    "attention_type": _Rule((str,), lambda v: v in ATTENTION_TYPES, f"one of {ATTENTION_TYPES}"),
    "use_fused_ops": _Rule((bool,), lambda v: True, "true or false"),
    "tune_cpu": _Rule((bool,), lambda v: True, "true or false"),
    "cross_attention_type": _Rule((str,), lambda v: v in CROSS_ATTENTION_TYPES, f"one of {CROSS_ATTENTION_TYPES}"),
}


class FastformerConfig(PretrainedConfig):
    r"""
    Configuration of a Fastformer model.

    Args:
        vocab_size (int, optional): Number of tokens in the vocabulary. Defaults to 30000.
        hidden_size (int, optional): Width of the token representations. Defaults to 256.
        num_hidden_layers (int, optional): Number of Fastformer blocks. Defaults to 2.
        num_attention_heads (int, optional): Number of additive-attention heads. Defaults to 16.
        intermediate_size (int, optional): Width of the feed-forward layer inside each block.
            Defaults to 256, as in the authors' ``fastformer.json``.
        hidden_act (str, optional): Activation of the feed-forward layer; "gelu" is the exact
            (erf) GELU used by both formulations. Defaults to "gelu".
        hidden_dropout_prob (float, optional): Dropout on the embeddings and on each residual branch.
            Defaults to 0.2 (paper, Table 9). fast-transformer-pytorch has no dropout: use 0.0.
        attention_probs_dropout_prob (float, optional): Dropout on the additive-attention weights
            (the softmax over tokens). Neither public implementation has one, so the default 0.0
            reproduces both.
        max_position_embeddings (int, optional): Longest sequence the model accepts; the size of the
            absolute position table, or the rotary table's length. Defaults to 512.
        initializer_range (float, optional): Standard deviation of the normal initialiser of every
            Linear and Embedding weight. Defaults to 0.02.
        layer_norm_eps (float, optional): Epsilon of every LayerNorm. Defaults to 1e-12 (BERT, official
            code); fast-transformer-pytorch uses PyTorch's default 1e-5.
        pad_token_id (int, optional): Id of the padding token. Used to build the attention mask when
            none is given, and, in the official formulation, as the embedding's padding row (kept at
            zero and never updated). Defaults to 0.
        formulation (str, optional): "official" or "lucidrains" (see the module docstring).
            Defaults to "official".
        position_embedding_type (str, optional): "absolute" (a learned table added to the token
            embeddings) or "rotary" (rotary embeddings on the first half of each head's features,
            lucidrains formulation only). Defaults to "absolute".
        attention_head_size (int, optional): Features per head. ``None`` means
            ``hidden_size // num_attention_heads``, which the official formulation requires;
            fast-transformer-pytorch's ``dim_head`` may differ from it. Defaults to None.
        attention_type (str, optional): "additive" (Fastformer) or "softmax": the same model with
            standard scaled dot-product self-attention in each block (official formulation only), the
            quadratic baseline that Fastformer is compared against. Defaults to "additive".
        use_fused_ops (bool, optional): Run the fused C++ CPU kernels of
            ``paddlenlp_fastformer.kernels`` (bias + GELU, bias + residual, add + LayerNorm, additive
            token pooling, the per-sequence broadcast product, the rotary rotation) where they serve:
            eager float32 runs on the CPU, once the kernels are built. The pure-Paddle ops compute the
            same values and always serve exported graphs, other dtypes and devices. The environment
            variable ``PADDLENLP_FASTFORMER_FUSED_OPS`` (0 or 1), when set, overrides this field.
            Defaults to True.
        tune_cpu (bool, optional): At the first forward pass on the CPU, apply
            :func:`paddlenlp_fastformer.tune_cpu` (MKL's AVX2 kernels on AMD CPUs, malloc keeping freed memory;
            once per process, logged once), so that code which never calls it runs as fast as the tools. The
            environment variable ``PADDLENLP_FASTFORMER_TUNE_CPU=0`` turns it off for every model. Defaults to True.
        cross_attention_type (str, optional): How the decoder of ``FastformerForConditionalGeneration`` reads
            the encoder: "softmax" (standard multi-head attention to every encoder token; the encoder's keys and
            values are computed once per source) or "additive" (the encoder's keys pooled once by additive
            attention into one global key per head, which multiplies each decoder query element-wise: O(1) per
            decoder token whatever the source length). Defaults to "softmax", the standard form
            (docs/generation.md gives what each costs per generated token).
        num_labels (int, optional): Number of classes of the classification heads. Defaults to 5
            (review ratings 1..5). ``num_classes`` is accepted as an alias.
        is_decoder (bool, optional): PaddleNLP's switch for a causal model: each position attends to itself
            and the positions before it only, and a cache carries the state from one call to the next
            (``FastformerForCausalLM`` sets it). Defaults to False.

    Sizes have upper bounds (:data:`MAX_SIZES`: vocab_size 2**24, hidden_size 2**16, intermediate_size 2**18,
    num_hidden_layers 2**10, num_attention_heads 2**12, attention_head_size 2**16, max_position_embeddings
    2**24), and no single weight may reach :data:`MAX_WEIGHT_ELEMENTS` (2**31 float32 values, 8 GiB): far
    beyond any model this CPU build trains, and short of sizes that would only fail in Paddle's allocator.

    Raises:
        FastformerConfigError: a value of the wrong type or out of range, or a combination that no
            formulation defines; the message names the field.
    """

    model_type = "fastformer"
    attribute_map = {"num_classes": "num_labels", "dropout": "hidden_dropout_prob"}

    def __init__(
        self,
        vocab_size: int = 30000,
        hidden_size: int = 256,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 16,
        intermediate_size: int = 256,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.2,
        attention_probs_dropout_prob: float = 0.0,
        max_position_embeddings: int = 512,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 0,
        formulation: str = "official",
        position_embedding_type: str = "absolute",
        attention_head_size: Optional[int] = None,
        attention_type: str = "additive",
        use_fused_ops: bool = True,
        tune_cpu: bool = True,
        cross_attention_type: str = "softmax",
        **kwargs,
    ):
        # "dropout" is an alias (attribute_map) that must win over the default of the named argument.
        hidden_dropout_prob = kwargs.pop("dropout", hidden_dropout_prob)
        if not {"num_labels", "num_classes", "id2label"} & set(kwargs):
            kwargs["num_labels"] = 5
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if self.label2id is None and self.id2label:  # PaddleNLP leaves it unset when only id2label is given
            self.label2id = {name: index for index, name in self.id2label.items()}
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.formulation = formulation
        self.position_embedding_type = position_embedding_type
        self.attention_head_size = attention_head_size
        self.attention_type = attention_type
        self.use_fused_ops = use_fused_ops
        self.tune_cpu = tune_cpu
        self.cross_attention_type = cross_attention_type
        self._validate()

    @property
    def head_size(self) -> int:
        """Features per attention head, resolved from ``attention_head_size``."""
        if self.attention_head_size is None:
            return self.hidden_size // self.num_attention_heads
        return self.attention_head_size

    def _validate(self) -> None:
        """Reject values and combinations that no formulation defines, naming the field at fault."""
        for field, rule in _FIELD_RULES.items():
            value = getattr(self, field)
            # An exact type check: True is an int to Python, but `hidden_size=True` is surely a mistake.
            if type(value) not in rule.types or not rule.holds(value):
                raise FastformerConfigError(field, f"got {_SHORT_REPR.repr(value)}; expected {rule.text}")
        if self.pad_token_id >= self.vocab_size:
            raise FastformerConfigError(
                "pad_token_id", f"got {self.pad_token_id}; expected an id below vocab_size={self.vocab_size}", ("vocab_size",)
            )
        if self.attention_type == "softmax" and self.formulation != "official":
            raise FastformerConfigError(
                "attention_type", "'softmax' exists only with formulation='official'", ("formulation",)
            )
        if self.is_decoder and self.attention_type == "additive" and self.attention_probs_dropout_prob > 0:
            raise FastformerConfigError(
                "attention_probs_dropout_prob",
                f"got {self.attention_probs_dropout_prob}; causal additive attention (is_decoder) has no dropout on "
                "its pooling weights: expected 0.0",
                ("is_decoder",),
            )
        if self.formulation == "official":
            self._validate_official()
        if self.position_embedding_type == "rotary" and self.head_size % 4 != 0:
            raise FastformerConfigError(
                "attention_head_size", f"got a head size of {self.head_size}; rotary positions need a multiple of 4"
            )
        self._validate_weight_sizes()

    def _validate_weight_sizes(self) -> None:
        """Refuse sizes that each pass their bound but multiply into one weight of MAX_WEIGHT_ELEMENTS or more."""
        hidden = self.hidden_size
        if self.formulation == "lucidrains":  # q, k and v of every head in one matrix, of any head size
            heads, head_size = self.num_attention_heads, self.head_size
            attention = ("num_attention_heads", ("attention_head_size", "hidden_size"), 3 * heads * head_size,
                         f"3 x num_attention_heads={heads:,} x attention_head_size={head_size:,}")
        else:  # heads split hidden_size: each projection is hidden_size x hidden_size
            attention = ("hidden_size", (), hidden, f"hidden_size={hidden:,}")
        weights = [
            ("vocab_size", ("hidden_size",), self.vocab_size, f"vocab_size={self.vocab_size:,}", "the word embeddings"),
            ("intermediate_size", ("hidden_size",), self.intermediate_size, f"intermediate_size={self.intermediate_size:,}",
             "each feed-forward layer"),
            (*attention, "each attention projection"),
        ]  # fmt: skip
        if self.position_embedding_type == "absolute":
            weights.append(("max_position_embeddings", ("hidden_size",), self.max_position_embeddings,
                            f"max_position_embeddings={self.max_position_embeddings:,}", "the position table"))  # fmt: skip
        for field, related, rows, how, what in weights:
            if rows * hidden >= MAX_WEIGHT_ELEMENTS:
                raise FastformerConfigError(
                    field,
                    f"{how} x hidden_size={hidden:,} makes {what} {rows * hidden:,} values; expected fewer than "
                    f"{MAX_WEIGHT_ELEMENTS:,} (8 GiB of float32) in any one weight",
                    related,
                )

    def _validate_official(self) -> None:
        if self.hidden_size % self.num_attention_heads != 0:
            raise FastformerConfigError(
                "hidden_size",
                f"{self.hidden_size} is not a multiple of num_attention_heads={self.num_attention_heads}, "
                "which the official formulation requires",
                ("num_attention_heads", "formulation"),
            )
        if self.attention_head_size not in (None, self.hidden_size // self.num_attention_heads):
            raise FastformerConfigError(
                "attention_head_size",
                f"got {self.attention_head_size}; the official formulation needs hidden_size // num_attention_heads "
                "(or None)",
                ("hidden_size", "num_attention_heads", "formulation"),
            )
        if self.position_embedding_type != "absolute":
            raise FastformerConfigError(
                "position_embedding_type", "'rotary' exists only with formulation='lucidrains'", ("formulation",)
            )
