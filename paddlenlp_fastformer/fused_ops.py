"""The fused C++ CPU kernels of ``csrc/fastformer_cpu_ops.cc``: building, loading, and Python entry points.

Paddle 3.3.1's CPU kernels for broadcast adds and products, layer norm and GELU (forward and
backward) are several times slower than PyTorch's, and in Fastformer they cost more than the matrix
products (see the README's speed section). ``modeling.py`` therefore calls these kernels in eager
float32 CPU runs and keeps its pure-Paddle code beside each call as the reference; exported static
graphs always use the reference ops, so Paddle Inference needs no custom operator.

The library is compiled with ``paddle.utils.cpp_extension`` (g++, OpenMP, ``-march=native``) into
``~/.cache/paddlenlp_fastformer/`` on first use, or ahead of time with
``python -m paddlenlp_fastformer.fused_ops`` (the README's set-up commands run it). The build
directory is keyed by the source, the Paddle version and the CPU, so a changed file or another machine
builds afresh. ``PADDLENLP_FASTFORMER_FUSED_OPS=0`` turns the kernels off; a failed build logs one
warning and the model runs on the reference ops.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Optional

import paddle

from .cpu import cpu_model_name

__all__ = ["available", "build", "bias_act", "bias_residual", "layer_norm", "token_pool", "rotary", "broadcast_mul"]

logger = logging.getLogger("paddlenlp_fastformer")

SOURCE = Path(__file__).with_name("csrc") / "fastformer_cpu_ops.cc"
SWITCH = "PADDLENLP_FASTFORMER_FUSED_OPS"
ACTIVATIONS = {None: 0, "gelu": 1}  # the activation codes of fastformer_bias_act
_library = None
_load_failed = False


def build_directory() -> Path:
    key = hashlib.sha256(
        b"\0".join([SOURCE.read_bytes(), paddle.__version__.encode(), cpu_model_name().encode()])
    ).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "paddlenlp_fastformer"
    return root / f"cpu_ops-{key}"


def build():
    """Compile (once per source, Paddle version and CPU) and load the kernels; returns the op module."""
    from paddle.utils.cpp_extension import load

    paddle_libs = Path(paddle.__file__).parent / "libs"
    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    # Processes started together (data-parallel ranks, test workers) must not compile into one directory at once.
    with open(directory / ".lock", "w") as lock, contextlib.redirect_stdout(io.StringIO()):
        fcntl.flock(lock, fcntl.LOCK_EX)
        return load(
            name="fastformer_cpu_ops",
            sources=[str(SOURCE)],
            extra_cxx_cflags=["-O3", "-march=native", "-fopenmp", "-fno-math-errno"],
            # Paddle's own OpenMP runtime (Intel's, which also serves GCC's OpenMP calls), so that the
            # kernels follow paddle's thread setting; libmvec for vectorised erf and exp.
            extra_ldflags=[f"-L{paddle_libs}", "-l:libiomp5.so", f"-Wl,-rpath,{paddle_libs}", "-lmvec"],
            build_directory=str(directory),
            verbose=False,
        )


def _ops():
    global _library, _load_failed
    if _library is None and not _load_failed:
        try:
            _library = build()
        except Exception as error:  # a missing compiler must not stop training: the reference ops remain
            _load_failed = True
            logger.warning("fused CPU kernels unavailable, using the pure-Paddle ops: %s", " ".join(str(error).split())[:300])
    return _library


def available(x: paddle.Tensor) -> bool:
    """Whether the fused kernels serve a computation on ``x``: eager float32 CPU, switched on, built."""
    return (
        os.environ.get(SWITCH, "1") != "0"
        and paddle.in_dynamic_mode()
        and x.dtype == paddle.float32
        and x.place.is_cpu_place()
        and _ops() is not None
    )


def _dense(x: paddle.Tensor) -> paddle.Tensor:
    # The kernels read raw row-major memory; a strided view (e.g. from split) must be copied first.
    return x if x.is_contiguous() else x.contiguous()


def bias_act(x: paddle.Tensor, bias: paddle.Tensor, activation: Optional[str] = None) -> paddle.Tensor:
    """``act(x + bias)`` over the last axis; ``activation`` is None or "gelu" (exact, erf form)."""
    return _ops().fastformer_bias_act(_dense(x), bias, ACTIVATIONS[activation])


def bias_residual(x: paddle.Tensor, bias: paddle.Tensor, residual: paddle.Tensor) -> paddle.Tensor:
    """``x + bias + residual`` (same shapes but the bias, which is broadcast over the last axis)."""
    return _ops().fastformer_bias_residual(_dense(x), bias, _dense(residual))


def layer_norm(
    x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor, epsilon: float, residual: Optional[paddle.Tensor] = None
) -> paddle.Tensor:
    """LayerNorm over the last axis of ``x`` (plus ``residual``, same shape, added first)."""
    if residual is None:
        return _ops().fastformer_layer_norm(_dense(x), weight, bias, epsilon)[0]
    return _ops().fastformer_add_layer_norm(_dense(x), _dense(residual), weight, bias, epsilon)[0]


def token_pool(logits: paddle.Tensor, token_mask: paddle.Tensor, values: paddle.Tensor, scale: float) -> paddle.Tensor:
    """Masked softmax over tokens of ``logits * scale`` [B, N, H], then the weighted sum of ``values`` [B, N, H, d].

    ``token_mask`` is [B, N, 1] (bool); returns [B, 1, H, d].
    """
    batch, _, heads, head_size = values.shape
    mask = token_mask.astype("float32").reshape([batch, -1])
    pooled = _ops().fastformer_token_pool(_dense(logits), mask, _dense(values).reshape([0, 0, -1]), scale)[0]
    return pooled.reshape([batch, 1, heads, head_size])


def rotary(x: paddle.Tensor, cos: paddle.Tensor, sin: paddle.Tensor) -> paddle.Tensor:
    """``x * cos + turn(x) * sin`` for x [B, N, K, d], cos and sin [N, d]; turn maps each pair (x0, x1) to (-x1, x0)."""
    return _ops().fastformer_rotary(_dense(x), _dense(cos), _dense(sin))


def broadcast_mul(x: paddle.Tensor, g: paddle.Tensor) -> paddle.Tensor:
    """``x * g`` for x [B, N, ...] and g [B, 1, ...]: every token of a row scaled by the row's vector."""
    out = _ops().fastformer_broadcast_mul(_dense(x).reshape([0, 0, -1]), _dense(g).reshape([g.shape[0], -1]))
    return out.reshape(x.shape)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if _ops() is not None:
        print(f"fused CPU kernels ready in {build_directory()}")
    else:
        print("fused CPU kernels unavailable: the model runs on the pure-Paddle reference ops (slower)")
