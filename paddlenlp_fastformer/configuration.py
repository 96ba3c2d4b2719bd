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

from typing import Optional

from paddlenlp.transformers.configuration_utils import PretrainedConfig

__all__ = ["FastformerConfig", "FORMULATIONS", "POSITION_EMBEDDING_TYPES", "ATTENTION_TYPES"]

FORMULATIONS = ("official", "lucidrains")
POSITION_EMBEDDING_TYPES = ("absolute", "rotary")
ATTENTION_TYPES = ("additive", "softmax")


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
        num_labels (int, optional): Number of classes of the classification heads. Defaults to 5
            (review ratings 1..5). ``num_classes`` is accepted as an alias.
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
        **kwargs,
    ):
        # "dropout" is an alias (attribute_map) that must win over the default of the named argument.
        hidden_dropout_prob = kwargs.pop("dropout", hidden_dropout_prob)
        if not {"num_labels", "num_classes", "id2label"} & set(kwargs):
            kwargs["num_labels"] = 5
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(pad_token_id=pad_token_id, **kwargs)
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
        self._validate()

    @property
    def head_size(self) -> int:
        """Features per attention head, resolved from ``attention_head_size``."""
        if self.attention_head_size is None:
            return self.hidden_size // self.num_attention_heads
        return self.attention_head_size

    def _validate(self) -> None:
        """Reject combinations that no formulation defines, naming the field at fault."""
        if self.formulation not in FORMULATIONS:
            raise ValueError(f"FastformerConfig.formulation={self.formulation!r}: expected one of {FORMULATIONS}")
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"FastformerConfig.position_embedding_type={self.position_embedding_type!r}: "
                f"expected one of {POSITION_EMBEDDING_TYPES}"
            )
        if self.attention_type not in ATTENTION_TYPES:
            raise ValueError(f"FastformerConfig.attention_type={self.attention_type!r}: expected one of {ATTENTION_TYPES}")
        if self.attention_type == "softmax" and self.formulation != "official":
            raise ValueError("FastformerConfig.attention_type='softmax' exists only with formulation='official'")
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"FastformerConfig.{name}={getattr(self, name)!r}: expected a positive integer")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"FastformerConfig.{name}={getattr(self, name)!r}: expected a value in [0, 1)")
        if self.formulation == "official":
            if self.hidden_size % self.num_attention_heads != 0:
                raise ValueError(
                    f"FastformerConfig.hidden_size={self.hidden_size} is not a multiple of "
                    f"num_attention_heads={self.num_attention_heads}, which the official formulation requires"
                )
            if self.attention_head_size not in (None, self.hidden_size // self.num_attention_heads):
                raise ValueError(
                    f"FastformerConfig.attention_head_size={self.attention_head_size}: the official formulation "
                    "needs hidden_size // num_attention_heads (or None)"
                )
            if self.position_embedding_type != "absolute":
                raise ValueError(
                    "FastformerConfig.position_embedding_type='rotary' exists only with formulation='lucidrains'"
                )
        if self.position_embedding_type == "rotary" and self.head_size % 4 != 0:
            raise ValueError(
                f"FastformerConfig.attention_head_size={self.head_size}: rotary positions need a multiple of 4"
            )
