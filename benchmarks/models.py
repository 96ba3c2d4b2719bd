"""What the benchmark measures: the models and engines, their sizes, FLOPs per token and attention memory.

Pure Python: the main process reads these to plan and summarise a run without importing a framework.
The FLOP formulas are explained term by term in :mod:`benchmarks.speed`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

__all__ = [
    "ModelSpec",
    "MODELS",
    "MODES",
    "BASELINE_MODEL",
    "DYGRAPH_MODEL",
    "TORCH_TWIN",
    "Sizes",
    "dygraph_reference",
    "batch_for_length",
    "flops_per_token",
    "attention_matrix_mib",
]

MODES = ("train", "infer")


@dataclass(frozen=True)
class ModelSpec:
    framework: str  # "paddle" | "torch": which fork server runs it
    formulation: str  # "official" | "lucidrains"
    attention: str  # "additive" | "softmax"
    head: str  # "classifier" (pooler + Linear(D, C)) | "lm" (LayerNorm + Linear(D, V) per token)
    description: str
    # "eager" (dygraph / torch eager), or the engine that runs the exported official classifier (infer only):
    # "inference" | "inference-onednn" (Paddle Inference on the portable graph, oneDNN off / on) |
    # "inference-fused" | "inference-fused-onednn" (the graph with the fused kernels) | "onnxruntime" | "onnxruntime-int8"
    # | "onnxruntime-packed" (the packed graph, one row of batch x length tokens) | "auto" (what Predictor's default
    # runs at the shape: the engine measured fastest there, see fastformer_zoo/deploy/engines.py)
    engine: str = "eager"

    @property
    def exported(self) -> bool:
        return self.engine != "eager"


MODELS: Dict[str, ModelSpec] = {
    "paddle-official": ModelSpec("paddle", "official", "additive", "classifier", "Fastformer, official formulation"),
    "paddle-lucidrains": ModelSpec(
        "paddle", "lucidrains", "additive", "lm", "Fastformer, lucidrains formulation, rotary, LM head"
    ),
    "paddle-softmax": ModelSpec("paddle", "official", "softmax", "classifier", "softmax-attention Transformer"),
    "paddle-inference": ModelSpec(
        "paddle", "official", "additive", "classifier", "Fastformer, official, exported, Paddle Inference", "inference"
    ),
    "paddle-inference-onednn": ModelSpec(
        "paddle", "official", "additive", "classifier", "the same, Paddle Inference with oneDNN", "inference-onednn"
    ),
    "paddle-inference-fused": ModelSpec(
        "paddle", "official", "additive", "classifier", "the same, fused-kernel graph, Paddle Inference", "inference-fused"
    ),
    "paddle-inference-fused-onednn": ModelSpec(
        "paddle", "official", "additive", "classifier", "the fused-kernel graph, Paddle Inference with oneDNN",
        "inference-fused-onednn",
    ),
    "paddle-onnxruntime": ModelSpec(
        "paddle", "official", "additive", "classifier", "the same, exported to ONNX, onnxruntime", "onnxruntime"
    ),
    "paddle-onnxruntime-int8": ModelSpec(
        "paddle", "official", "additive", "classifier", "the same ONNX graph with int8 weight matmuls, onnxruntime",
        "onnxruntime-int8",
    ),
    "paddle-onnxruntime-packed": ModelSpec(
        "paddle", "official", "additive", "classifier", "the packed graph (texts back to back) in ONNX, onnxruntime",
        "onnxruntime-packed",
    ),
    "paddle-auto": ModelSpec(
        "paddle", "official", "additive", "classifier", "the engine the predictor's default picks at the shape (measured)", "auto"
    ),
    "torch-official": ModelSpec(
        "torch", "official", "additive", "classifier", "PyTorch model of the official equations"
    ),
    "torch-lucidrains": ModelSpec("torch", "lucidrains", "additive", "lm", "fast-transformer-pytorch 0.0.4, rotary"),
}
BASELINE_MODEL = "paddle-softmax"
# The eager model every engine runs an export of, with the same weights (the same seed and sizes).
DYGRAPH_MODEL = "paddle-official"
TORCH_TWIN = {
    "paddle-official": "torch-official",
    "paddle-lucidrains": "torch-lucidrains",
    "paddle-inference": "torch-official",
    "paddle-inference-onednn": "torch-official",
    "paddle-inference-fused": "torch-official",
    "paddle-inference-fused-onednn": "torch-official",
    "paddle-onnxruntime": "torch-official",
    "paddle-onnxruntime-int8": "torch-official",
    "paddle-onnxruntime-packed": "torch-official",
    "paddle-auto": "torch-official",
}


def dygraph_reference(model: str) -> Optional[str]:
    """The dygraph model whose speed and probabilities ``model`` is compared with, if any."""
    return DYGRAPH_MODEL if model == DYGRAPH_MODEL or MODELS[model].exported else None


@dataclass(frozen=True)
class Sizes:
    hidden: int = 256
    heads: int = 16
    layers: int = 2
    intermediate: int = 1024
    vocab: int = 1000
    num_labels: int = 5
    max_length: int = 8192
    dropout: float = 0.0

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads


def batch_for_length(length: int, tokens_per_step: int) -> int:
    """Sequences per step: the token budget divided by the length, at least one."""
    return max(1, tokens_per_step // length)


def flops_per_token(model: str, sizes: Sizes, length: int, mode: str) -> float:
    """Analytic FLOPs per token of one step (see :mod:`benchmarks.speed` for every term)."""
    spec = MODELS[model]
    D, H, L, I, N = sizes.hidden, sizes.heads, sizes.layers, sizes.intermediate, length
    d = sizes.head_size
    if spec.formulation == "official" and spec.attention == "additive":
        attention = 8 * D * D + 4 * D * H + 6 * D
    elif spec.attention == "softmax":
        attention = 8 * D * D + 4 * N * D
    else:  # lucidrains, rotary positions: the key scores and to_r read d/2 summed feature pairs
        r = d // 2
        attention = 8 * D * H * d + 8 * H * d + 2 * H * r + 2 * H * r * d
    feed_forward = 4 * D * I
    if spec.head == "classifier":
        head = 2 * D * D + 4 * D + 2 * D * sizes.num_labels / N
    else:
        head = 2 * D * sizes.vocab
    forward = L * (attention + feed_forward) + head
    return 3.0 * forward if mode == "train" else float(forward)


def attention_matrix_mib(model: str, sizes: Sizes, batch: int, length: int, mode: str) -> float:
    """Estimated memory of the N x N attention matrices (0 for linear-attention models).

    One [B, H, N, N] fp32 tensor is S = 4*B*H*N^2 bytes. Inference holds about two at once (scores and
    weights); training keeps about two per layer for the backward pass plus one temporary: (2L + 1) S.
    ``docs/speed.md`` compares the estimate with measured peaks.
    """
    if MODELS[model].attention != "softmax":
        return 0.0
    one = 4.0 * batch * sizes.heads * length * length / 2**20
    return 2 * one if mode == "infer" else (2 * sizes.layers + 1) * one
