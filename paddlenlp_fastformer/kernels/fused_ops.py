"""The computations Fastformer spends its non-matmul time on, each fused or in pure Paddle.

Paddle's CPU kernels for broadcast adds and products, layer norm and GELU (forward and backward)
are several times slower than PyTorch's, and in Fastformer they cost more than the matrix products
(``docs/speed.md``). Each helper below therefore has two paths that compute the same values: one
fused C++ kernel (``csrc/fastformer_cpu_ops.cc``, loaded by :mod:`.library`) and the pure-Paddle
reference written beside it. The fused path serves where :func:`available` says so: the model's
``use_fused_ops`` is on (or ``PADDLENLP_FASTFORMER_FUSED_OPS=1`` overrides it), the run is eager
(or an export inside :func:`fused_in_static_graphs`), float32 and on the CPU, and the library is built.
Static graphs take the reference path otherwise: the portable export, for ONNX and for machines
without the library, holds standard operators only.

Shapes: B batch, N tokens, H heads, d features per head.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator, Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddlenlp.transformers.activations import ACT2FN

from . import library

__all__ = [
    "SWITCH",
    "available",
    "masked_softmax_over_tokens",
    "broadcast_as",
    "additive_pool",
    "scale_tokens",
    "layer_norm",
    "linear",
    "rotate",
    "FlatLinear",
    "Dropout",
    "fused_in_static_graphs",
    "wanted",
]

SWITCH = "PADDLENLP_FASTFORMER_FUSED_OPS"
FUSED_ACTIVATIONS = {None: 0, "gelu": 1}  # the activation codes of fastformer_bias_act
# Whether static graphs traced now take the fused kernels; per thread and task, so that a fused export
# cannot leak into another thread's tracing.
_fused_static_graphs: contextvars.ContextVar = contextvars.ContextVar("fused_static_graphs", default=False)


@contextlib.contextmanager
def fused_in_static_graphs() -> Iterator[None]:
    """Within this block, static graphs (``paddle.jit.to_static``) take the fused kernels as custom operators.

    The graph then runs only where the library is loaded before the predictor is created
    (``paddle.utils.cpp_extension.load_op_meta_info_and_register_op``, which :func:`library.load` does).
    """
    token = _fused_static_graphs.set(True)
    try:
        yield
    finally:
        _fused_static_graphs.reset(token)


@paddle.jit.not_to_static  # building or loading the library is Python work, never part of a traced graph
def _kernels():
    return library.load()


def available(x: paddle.Tensor, use_fused_ops: bool) -> bool:
    """Whether the fused kernels serve a computation on ``x``.

    ``PADDLENLP_FASTFORMER_FUSED_OPS`` (0 or 1), when set, overrides ``use_fused_ops`` (the model
    config's field). Then: eager mode (or a static graph inside :func:`fused_in_static_graphs`), float32,
    CPU, and a built library.
    """
    if x.dtype != paddle.float32:
        return False
    if not paddle.in_dynamic_mode():  # an export: the graph it writes decides, not the model's config
        return _fused_static_graphs.get() and _kernels() is not None
    return wanted(use_fused_ops) and x.place.is_cpu_place() and _kernels() is not None


def wanted(use_fused_ops: bool) -> bool:
    """Whether eager CPU runs should take the fused kernels: ``PADDLENLP_FASTFORMER_FUSED_OPS`` (0 or 1) when
    set, else ``use_fused_ops`` (the model config's field)."""
    override = os.environ.get(SWITCH)
    return use_fused_ops if override is None else override != "0"


def _dense(x: paddle.Tensor) -> paddle.Tensor:
    # The kernels read raw row-major memory; a strided view (e.g. from split) must be copied first.
    # A static graph's values are always dense.
    if not paddle.in_dynamic_mode():
        return x
    return x if x.is_contiguous() else x.contiguous()


def _shape(x: paddle.Tensor):
    """``x``'s shape: a list in eager mode, a run-time shape tensor in static graphs (whose sizes are unknown)."""
    return x.shape if paddle.in_dynamic_mode() else paddle.shape(x)


# ----------------------------------------------------------------------------------------------
# reference building blocks
# ----------------------------------------------------------------------------------------------
def masked_softmax_over_tokens(logits: paddle.Tensor, token_mask: paddle.Tensor) -> paddle.Tensor:
    """Softmax over the token axis of ``logits`` [B, N, H], padding excluded.

    Padding logits are replaced (not offset) by the dtype's lowest value, so a padding token gets
    exactly zero weight whatever the real logits are. A row without any real token gets uniform
    weights: finite, never NaN.
    """
    lowest = paddle.full([1], paddle.finfo(logits.dtype).min, dtype=logits.dtype)
    return F.softmax(paddle.where(token_mask, logits, lowest), axis=1)


def broadcast_as(small: paddle.Tensor, like: paddle.Tensor) -> paddle.Tensor:
    """``small`` expanded to ``like``'s shape, for an element-wise product.

    Paddle's CPU kernels multiply same-shaped tensors several times faster than they broadcast
    (``docs/speed.md``); in eager mode the expansion is a strided view, static graphs copy it.
    """
    return small.expand(paddle.shape(like))  # a run-time shape: exported graphs stay dynamic


# ----------------------------------------------------------------------------------------------
# fused-or-reference helpers
# ----------------------------------------------------------------------------------------------
def additive_pool(
    logits: paddle.Tensor,
    scale: float,
    token_mask: paddle.Tensor,
    values: paddle.Tensor,
    weights_dropout: nn.Dropout,
    use_fused_ops: bool,
) -> paddle.Tensor:
    """Additive attention: softmax over real tokens of ``logits * scale`` [B, N, H] pools ``values`` [B, N, H, d].

    Returns 'b n h, b n h d -> b 1 h d'. The fused kernel serves only when no attention dropout is active.
    """
    dropout_active = weights_dropout.training and weights_dropout.p > 0
    if not dropout_active and available(values, use_fused_ops):
        heads, head_size = values.shape[2:]
        mask = token_mask.astype("float32").reshape([0, -1])  # 0: the batch size as it is
        flat_values = _dense(values).reshape([0, 0, -1])
        pooled = _kernels().fastformer_token_pool(_dense(logits), mask, flat_values, scale)[0]
        return pooled.reshape([0, 1, heads, head_size])
    weights = weights_dropout(masked_softmax_over_tokens(logits * scale, token_mask))
    return (broadcast_as(weights.unsqueeze(-1), values) * values).sum(axis=1, keepdim=True)


def scale_tokens(x: paddle.Tensor, row_vector: paddle.Tensor, use_fused_ops: bool) -> paddle.Tensor:
    """'b n ..., b 1 ... -> b n ...': every token of a sequence times that sequence's vector; or, for texts packed
    in one row, 'b n ..., b n ...', every token times its own text's vector (plain ops only)."""
    if row_vector.shape[1] == 1 and available(x, use_fused_ops):
        flat_rows = _dense(row_vector).reshape([0, -1])
        if x.ndim == 3:  # no reshape: in exported graphs it would copy x, which the caller still reads
            return _kernels().fastformer_broadcast_mul(_dense(x), flat_rows)
        return _kernels().fastformer_broadcast_mul(_dense(x).reshape([0, 0, -1]), flat_rows).reshape(_shape(x))
    return x * broadcast_as(row_vector, x)


def layer_norm(
    norm: nn.LayerNorm, x: paddle.Tensor, use_fused_ops: bool, residual: Optional[paddle.Tensor] = None
) -> paddle.Tensor:
    """``norm(x + residual)``, or ``norm(x)``."""
    if available(x, use_fused_ops):
        ops = _kernels()
        if residual is None:
            return ops.fastformer_layer_norm(_dense(x), norm.weight, norm.bias, norm._epsilon)[0]
        return ops.fastformer_add_layer_norm(_dense(x), _dense(residual), norm.weight, norm.bias, norm._epsilon)[0]
    return norm(x if residual is None else x + residual)


def linear(
    layer: nn.Linear,
    x: paddle.Tensor,
    use_fused_ops: bool,
    activation: Optional[str] = None,
    residual: Optional[paddle.Tensor] = None,
) -> paddle.Tensor:
    """``activation(x W + b)``, or ``x W + b + residual``, for ``x`` [..., in] (the kernels treat every leading
    axis as rows).

    ``residual`` is shaped like the output and only combines with no activation. Fused: one kernel adds the
    bias and applies the activation (or adds the residual) after the matrix product.
    """
    fusable = layer.bias is not None and activation in FUSED_ACTIVATIONS and (residual is None or activation is None)
    if fusable and available(x, use_fused_ops):
        product = paddle.matmul(x, layer.weight)
        if residual is not None:
            return _kernels().fastformer_bias_residual(_dense(product), layer.bias, _dense(residual))
        return _kernels().fastformer_bias_act(_dense(product), layer.bias, FUSED_ACTIVATIONS[activation])
    out = F.linear(x, layer.weight, layer.bias)
    if activation:
        out = ACT2FN[activation](out)
    return out if residual is None else out + residual


def rotate(
    x: paddle.Tensor, cos: paddle.Tensor, sin: paddle.Tensor, quarter_turn: paddle.Tensor, use_fused_ops: bool
) -> paddle.Tensor:
    """``x * cos + turn(x) * sin`` for x [B, N, K, d], cos and sin [N, d] (or [B, N, d]: a position per row and
    token, which only the plain ops take); turn maps each pair (x0, x1) to (-x1, x0).

    The reference does the turn as one small matrix product with ``quarter_turn`` [d, d]: slicing,
    stacking and concatenating the features instead cost more than the rest of the attention backward.
    """
    if cos.ndim == 2 and available(x, use_fused_ops):
        return _kernels().fastformer_rotary(_dense(x), _dense(cos), _dense(sin))
    head_size = quarter_turn.shape[0]
    turned = paddle.matmul(x.reshape([-1, head_size]), quarter_turn.astype(x.dtype)).reshape(paddle.shape(x))
    cos, sin = (table.unsqueeze(-2) if table.ndim == 3 else table[None, :, None, :] for table in (cos, sin))
    return x * broadcast_as(cos, x) + turned * broadcast_as(sin, x)


class FlatLinear(nn.Linear):
    """A linear layer over the last axis computed as one 2-D matrix product, with an optional epilogue.

    Same parameters as ``nn.Linear``, but in eager mode the input is flattened to [rows, in] first: on
    Paddle's CPU kernels the backward of a matmul with a 3-D or 4-D input runs about twice as slow as on
    the same input flattened (``docs/speed.md``). ``forward`` can also apply an activation or add a residual
    after the product, which the fused kernels do in one pass (:func:`linear`).
    """

    def __init__(self, in_features: int, out_features: int, use_fused_ops: bool = False, bias_attr=None):
        super().__init__(in_features, out_features, bias_attr=bias_attr)
        self.use_fused_ops = use_fused_ops

    def forward(
        self, x: paddle.Tensor, activation: Optional[str] = None, residual: Optional[paddle.Tensor] = None
    ) -> paddle.Tensor:
        """``activation(x W + b)``, or ``x W + b + residual`` (``residual`` shaped like the output)."""
        if not paddle.in_dynamic_mode():
            # Exported graphs have no backward to speed up, and there a reshape copies its input whenever the
            # input is read again, as a layer's input is: the product takes 'b n in' as it is.
            return linear(self, x, self.use_fused_ops, activation, residual)
        out_features = self.weight.shape[1]
        flat_residual = None if residual is None else residual.reshape([-1, out_features])
        out = linear(self, x.reshape([-1, x.shape[-1]]), self.use_fused_ops, activation, flat_residual)
        return out.reshape(x.shape[:-1] + [out_features])


class Dropout(nn.Dropout):
    """``nn.Dropout`` that is left out entirely in evaluation, where (in its default ``upscale_in_train`` mode) it
    returns its input unchanged.

    Paddle's still runs its kernel there, which copies the whole input, in eager mode and as an operator of
    every exported graph. Training, and the other mode (which scales in evaluation), go through it as before.
    """

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.training and self.mode == "upscale_in_train":
            return x
        # nn.Dropout.forward by name: the exporter's code transformation cannot follow a bare super().
        return nn.Dropout.forward(self, x)
