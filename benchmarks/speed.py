"""What users get: training and inference throughput, peak memory and achieved FLOP/s on this CPU.

``python -m benchmarks.speed`` runs it (its command line is at the end of this file). Measured side by side in one run, for every sequence length (and, on a
batch grid, every batch size):

* ``paddle-official``: Fastformer, official formulation (``FastformerForSequenceClassification``),
  dygraph;
* ``paddle-lucidrains``: Fastformer, fast-transformer-pytorch formulation with rotary positions
  (``FastformerForMaskedLM``, the same computation as that package's ``FastTransformer``);
* ``paddle-softmax``: the softmax-attention Transformer of the same width, heads and depth
  (``attention_type="softmax"``: same embeddings, blocks, pooler and classifier);
* ``paddle-inference``, ``paddle-inference-onednn``, ``paddle-onnxruntime`` and ``paddle-onnxruntime-int8``:
  the engines, running ``paddle-official`` (its very weights) exported as ``tools/export_model.py
  --quantize int8`` does: Paddle Inference with oneDNN off and on, onnxruntime on the ONNX conversion,
  and onnxruntime on its int8 twin (inference only; the int8 probabilities differ from dygraph's by
  quantization error, not float noise);
* ``torch-official``: the PyTorch model of the official equations (:mod:`benchmarks.torch_reference`);
* ``torch-lucidrains``: fast-transformer-pytorch 0.0.4 ``FastTransformer`` (rotary, ``ff_mult = I / D``).

The torch models are the twins of the first two Paddle models (the same layers, sizes and heads), so
"Paddle vs torch" compares two implementations of one computation. The lucidrains twins end in the
package's per-token vocabulary head (LayerNorm + Linear(D, V)); the others in the additive-attention
pooler and a classifier. Their FLOP counts include these heads, which is why ``--vocab-size`` is small
by default (1000: the LM head is 2*D*V = 0.5 MFLOP/token against ~3.2 MFLOP/token for the encoder).
Every engine is also compared with dygraph: its speed-up, and the largest difference between its
class probabilities and dygraph's on the same batch.

Presets (:data:`PRESETS`; options given explicitly override them):

* ``grid`` (default): lengths 128..8192 at 2,048 tokens per step, every model but the onnxruntime ones;
* ``quick``: a smoke test of the same models at a tiny size;
* ``lucidrains-b16``: fast-transformer-pytorch's configuration, batch 16 x 512, against its twin;
* ``paper-b64``: the paper's official model (``configs/amazon.yaml``), batch 64 x 256, dygraph and
  Paddle Inference against PyTorch eager;
* ``deploy``: the paper-size classifier (50k vocabulary) on batch sizes 1, 16, 64 x lengths 32, 128,
  512, inference only: dygraph, Paddle Inference on the portable and the fused-kernel graph (oneDNN
  off and on), onnxruntime fp32 and int8, and PyTorch eager;
* ``deploy-long``: the same engines on lengths 128..8192 at 2,048 tokens per step.

Method
------
* Every measurement (one model, mode, shape and round) runs in a fresh process forked from a fork
  server (:mod:`benchmarks.harness`): one per framework, a process that imported that framework (and
  only that one) once. The paddle server applies the package's CPU tuning
  (:func:`paddlenlp_fastformer.tune_cpu`) before paddle loads, as the tools do; the torch server keeps
  the environment it was given. The child sets the framework's thread count (the same number for
  both), runs one tiny operation to initialise the framework, records its RSS (the baseline), resets
  the kernel's peak-RSS mark (``/proc/self/clear_refs``), builds the model and the data, runs
  ``warmup`` untimed steps and ``steps`` timed ones (the deploy presets: more, to last at least half a second), and reports ``ru_maxrss - baseline``: the peak
  memory of that model, its optimizer state and its activations, isolated from every other measurement.
* The engines load one export made at the start of the run, so a case builds no dygraph model.
* OMP_WAIT_POLICY (``--omp-wait-policy``, see :func:`benchmarks.harness.wait_policy_for`): by default
  passive for torch and unchanged for paddle, each framework's better setting on a shared CPU.
* A training step is forward + loss + backward + Adam step (lr 1e-3); an inference step is a forward in
  eval mode without gradients (the engines: one call of the exported graph, which ends in a softmax).
* Batch = max(1, tokens_per_step // length), so every length does about the same work per step (lengths
  above the budget run one sequence); or, with ``--batch-sizes``, every batch size at every length.
* Rounds: the whole grid (shape -> mode -> model; the model order reversed every other round) is run
  ``repeats`` times, so slow spells of a shared machine spread over all models; a case's time is the
  median of its timed steps over the rounds.
* The softmax Transformer's N^2 attention matrices are estimated before each case
  (:func:`benchmarks.models.attention_matrix_mib`); a case whose estimate exceeds ``max_memory_mib``,
  whose predicted time (1.5 x the previous length's time scaled by the FLOP ratio) exceeds
  ``max_seconds_per_case``, or that follows a skipped length of the same model and mode is marked
  skipped instead of run. A running case is killed at ``max_seconds_per_case`` (in later rounds, at
  twice its first round's time if that is longer).
* Matmul throughput: the median of several fp32 ``size^3`` products per framework, in fresh processes,
  once per round; the best round is the "matmul peak" each model's achieved FLOP/s is divided by.

FLOP counting (:func:`benchmarks.models.flops_per_token`): analytic, per token, from the layer sizes.
Notation: D hidden, H heads, d features per head, I intermediate, L layers, N length, V vocabulary,
C labels.

* A dense layer in -> out costs 2*in*out FLOPs per token (one multiply and one add per weight).
* A weighted sum over tokens costs 2 FLOPs per summed feature and token; an element-wise product 1 FLOP
  per feature.
* Official additive attention: query, key, transform, output (4 x 2D^2), query_att and key_att
  (2 x 2DH), global query and global key sums (2 x 2D), p = q_g*k and u = k_g*q (2 x D):
  ``8D^2 + 4DH + 6D``.
* Softmax attention: q, k, v, output projections (8D^2), scores QK^T (2ND) and weights x V (2ND):
  ``8D^2 + 4ND``.
* lucidrains additive attention (inner width Hd, r = d/2 with rotary, d without): to_qkv (6DHd),
  to_out (2HdD), q and k score vectors (2Hd + 2Hr), global q and k sums (2 x 2Hd), k*q_g and v*k_g
  (2 x Hd), to_r (2Hrd): ``8DHd + 8Hd + 2Hr + 2Hrd``.
* Feed-forward: ``4DI``. Pooler + classifier: ``2D^2 + 4D + 2DC/N``. LM head: ``2DV``.
* Not counted: embeddings (lookups), LayerNorm, softmax, GELU, tanh, exp, rotary rotations, bias and
  residual additions, pair reductions: O(D) each, a few percent at most.
* Training = 3 x forward (the backward pass computes, for every product, the gradients with respect to
  both of its operands, each as costly as the forward product); the Adam update is not counted.

Achieved FLOP/s = flops_per_token x tokens/s; "of matmul peak" divides it by the same framework's fp32
matmul throughput measured in this run. Measured figures of this project's machine: ``docs/speed.md``.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Callable, Optional, Tuple

from . import report
from .report import TABLES
from .models import MODELS, MODES, Sizes
from .run import Settings, run_benchmark

__all__ = ["DEFAULTS", "PRESETS", "GRID_MODELS", "settings_for", "default_output_dir", "main"]

# Every model but the onnxruntime engines, which need paddle2onnx and the ONNX export, and the measured choice.
GRID_MODELS = [name for name, spec in MODELS.items() if not spec.engine.startswith("onnxruntime") and spec.engine != "auto"]

# The grid preset; every other preset starts from it. Keys are the option names of its command line (below).
DEFAULTS = {
    "models": GRID_MODELS,
    "modes": list(MODES),
    "lengths": [128, 512, 1024, 2048, 4096, 8192],
    "batch_sizes": None,
    "tokens_per_step": 2048,
    "threads": 0,
    "repeats": 2,
    # With fewer, Paddle's training was still growing its heap in the timed step (docs/speed.md).
    "warmup": 3,
    "steps": 1,
    "least_seconds": 0.0,
    "hidden": 256,
    "heads": 16,
    "layers": 2,
    "intermediate": 1024,
    "vocab_size": 1000,
    "dropout": 0.0,
    "max_seconds_per_case": 30.0,
    "max_memory_mib": 6144.0,
    "matmul_size": 2048,
    "omp_wait_policy": "auto",
    "table": "speed",
}
QUICK = {
    **DEFAULTS,
    "lengths": [32, 64],
    "tokens_per_step": 128,
    "repeats": 1,
    "hidden": 32,
    "heads": 4,
    "layers": 1,
    "intermediate": 128,
    "vocab_size": 100,
    "max_seconds_per_case": 120.0,
    "matmul_size": 256,
}
# The configurations the speed targets name: fast-transformer-pytorch's (hidden 256, 16 heads of 16,
# 2 layers, batch 16, length 512) and the paper's official one (configs/amazon.yaml: intermediate 256,
# batch 64, length 256), the latter also exported and run by Paddle Inference against PyTorch eager.
# "deploy" is the batch x length grid on which the inference engines are compared with dygraph.
DEPLOY_MODELS = [
    "paddle-official",
    "paddle-inference",
    "paddle-inference-onednn",
    "paddle-inference-fused",
    "paddle-inference-fused-onednn",
    "paddle-onnxruntime",
    "paddle-onnxruntime-int8",
    "paddle-onnxruntime-packed",
    "paddle-auto",
    "torch-official",
]
PRESETS = {
    "grid": DEFAULTS,
    "quick": QUICK,
    "lucidrains-b16": {
        **DEFAULTS,
        "lengths": [512],
        "tokens_per_step": 16 * 512,
        "repeats": 3,
        "models": ["paddle-lucidrains", "torch-lucidrains"],
    },
    "paper-b64": {
        **DEFAULTS,
        "lengths": [256],
        "tokens_per_step": 64 * 256,
        "intermediate": 256,
        "repeats": 3,
        "models": ["paddle-official", "paddle-inference", "paddle-inference-onednn", "paddle-inference-fused", "torch-official"],
    },
    "deploy": {
        **DEFAULTS,
        "models": DEPLOY_MODELS,
        "modes": ["infer"],
        "batch_sizes": [1, 16, 64],
        "lengths": [32, 128, 512],
        "intermediate": 256,
        "vocab_size": 50000,
        "steps": 5,
        # The default (auto) is judged against the fastest engine within 5%, finer than a shared machine's drift
        # between two cases of one engine: more rounds, and at least half a second of timed steps per case.
        "repeats": 4,
        "least_seconds": 0.5,
        "max_seconds_per_case": 120.0,
        "table": "deploy",
    },
    # The engines on the long-sequence grid: 128 to 8,192 tokens at 2,048 tokens per batch.
    "deploy-long": {
        **DEFAULTS,
        "models": DEPLOY_MODELS,
        "modes": ["infer"],
        "intermediate": 256,
        "vocab_size": 50000,
        "steps": 5,
        "least_seconds": 0.5,
        "max_seconds_per_case": 120.0,
        "table": "deploy",
    },
}


# Options that are Settings fields of the same name and meaning.
_COPIED_OPTIONS = (
    "threads",
    "repeats",
    "warmup",
    "steps",
    "least_seconds",
    "max_seconds_per_case",
    "max_memory_mib",
    "matmul_size",
    "omp_wait_policy",
)


def _check(settings: Settings) -> None:
    sizes = settings.sizes
    counts = [settings.tokens_per_step, settings.repeats, settings.steps, *settings.lengths]
    if min(counts) < 1 or min(settings.batch_sizes or [1]) < 1 or settings.warmup < 0 or not settings.least_seconds >= 0:
        raise ValueError("--tokens-per-step, --repeats, --steps, --lengths and --batch-sizes must be positive, --warmup and --least-seconds not negative")
    if sizes.hidden % sizes.heads or sizes.head_size % 4:
        raise ValueError("hidden must be a multiple of heads, with a head size that is a multiple of 4 (rotary)")
    if not settings.models or not settings.modes:
        raise ValueError("no model or no mode left to measure")


def settings_for(preset: str, overrides: dict, torch: Optional[bool] = None) -> Tuple[Settings, str]:
    """The settings and table of ``preset`` with ``overrides`` (option name -> value; None keeps the preset's).

    ``torch=False`` leaves the PyTorch twins out. Raises ValueError on settings that cannot run.
    """
    options = {**PRESETS[preset], **{key: value for key, value in overrides.items() if value is not None}}
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown options: {', '.join(unknown)}")
    models = [model for model in options["models"] if torch is not False or MODELS[model].framework != "torch"]
    sizes = Sizes(
        hidden=options["hidden"],
        heads=options["heads"],
        layers=options["layers"],
        intermediate=options["intermediate"],
        vocab=options["vocab_size"],
        dropout=options["dropout"],
    )
    batch_sizes = options["batch_sizes"]
    settings = Settings(
        models=tuple(models),
        lengths=tuple(options["lengths"]),
        modes=tuple(options["modes"]),
        batch_sizes=tuple(batch_sizes) if batch_sizes else None,
        tokens_per_step=options["tokens_per_step"],
        sizes=sizes,
        **{key: options[key] for key in _COPIED_OPTIONS},
    )
    _check(settings)
    return settings, options["table"]


def default_output_dir(preset: str) -> str:
    return os.path.join("output", "benchmark", *([preset] if preset != "grid" else []))


def run(settings: Settings, table: str, output_dir: str, command: str, log: Callable[[str], None] = print) -> dict:
    """Run ``settings``, write the CSV, PNG and JSON to ``output_dir``, and log the summary and table."""
    log(report.describe(settings))
    result = run_benchmark(settings, log)
    paths = report.write_outputs(result, output_dir, command)
    log(report.summary(result, paths, table))
    return result


# ----------------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------------
USAGE = """Training and inference speed of Fastformer against the softmax Transformer and PyTorch, and of the
inference engines against dygraph, side by side on this CPU.

    python -m benchmarks.speed                           # grid: lengths 128..8192 at 2,048 tokens per step
    python -m benchmarks.speed --preset lucidrains-b16   # fast-transformer-pytorch's configuration, B16 x N512
    python -m benchmarks.speed --preset paper-b64        # the paper's model, B64 x N256, also on Paddle Inference
    python -m benchmarks.speed --preset deploy           # engines vs dygraph, batch 1 16 64 x length 32 128 512
    python -m benchmarks.speed --preset deploy-long      # the same engines, 128..8192 tokens at 2,048 per batch
    python -m benchmarks.speed --quick                   # a smoke test

Options given explicitly override the preset's. Writes benchmark.csv, .png and .json under
output/benchmark[/PRESET]. Method and FLOP formulas: this module's docstring; measured figures: docs/speed.md.
"""


def _default(name: str) -> str:
    value = DEFAULTS[name]
    shown = " ".join(map(str, value)) if isinstance(value, list) else value
    return f"default: the preset's; grid: {shown}"


def _add_size_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=int, help=f"hidden size ({_default('hidden')})")
    parser.add_argument("--heads", type=int, help=f"attention heads ({_default('heads')})")
    parser.add_argument("--layers", type=int, help=f"blocks ({_default('layers')})")
    parser.add_argument("--intermediate", type=int, help=f"feed-forward width ({_default('intermediate')})")
    parser.add_argument("--vocab-size", type=int, help=f"vocabulary; sizes the LM head ({_default('vocab_size')})")
    parser.add_argument("--dropout", type=float, help=f"hidden dropout of the official models ({_default('dropout')})")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lengths", type=int, nargs="+", help=_default("lengths"))
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", help="measure every batch size at every length instead of a token budget"
    )
    parser.add_argument(
        "--tokens-per-step", type=int, help=f"batch = max(1, this // length) ({_default('tokens_per_step')})"
    )
    parser.add_argument("--threads", type=int, help="CPU threads of every framework; 0 = all cores (the default)")
    parser.add_argument(
        "--repeats", type=int, help=f"rounds over all cases, each in fresh processes ({_default('repeats')})"
    )
    parser.add_argument("--warmup", type=int, help=f"untimed steps before the timed ones ({_default('warmup')})")
    parser.add_argument("--steps", type=int, help=f"timed steps per case and round ({_default('steps')})")
    parser.add_argument(
        "--least-seconds", type=float, help=f"or more timed steps, until they took this long ({_default('least_seconds')}; deploy: 0.5)"
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, help="default: the preset's; grid: train infer")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=list(MODELS),
        metavar="MODEL",
        help=f"any of {', '.join(MODELS)} (default: every model of the preset)",
    )
    parser.add_argument(
        "--torch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the PyTorch twins (default: when torch and fast-transformer-pytorch import)",
    )
    parser.add_argument(
        "--max-seconds-per-case",
        type=float,
        help=f"kill or skip a case beyond this ({_default('max_seconds_per_case')})",
    )
    parser.add_argument(
        "--max-memory-mib",
        type=float,
        help=f"skip a softmax case whose estimated N^2 attention memory exceeds this ({_default('max_memory_mib')})",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=["auto", "passive", "active", "default"],
        help=(
            "OMP_WAIT_POLICY of the frameworks' processes. 'auto' (default): passive for torch, unchanged "
            "for paddle, each one's better setting on a shared CPU (docs/speed.md); 'passive'/'active': "
            "both; 'default': leave the environment"
        ),
    )
    parser.add_argument(
        "--matmul-size", type=int, help=f"size of the fp32 matmul peak test ({_default('matmul_size')})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="grid",
        help="grid (default), quick, lucidrains-b16, paper-b64, deploy or deploy-long; see the presets above",
    )
    parser.add_argument("--quick", action="store_true", help="the same as --preset quick")
    _add_run_options(parser)
    _add_size_options(parser)
    parser.add_argument("--table", choices=list(TABLES), help="columns of the printed table (default: the preset's)")
    parser.add_argument(
        "--output-dir", help="CSV, PNG and JSON go here (default output/benchmark, or output/benchmark/PRESET)"
    )
    return parser


def main(argv=None) -> dict:
    # Paddle's C++ warnings (glog) about its own internals, unless the user asked for them; the fork servers
    # that import paddle inherit it.
    os.environ.setdefault("GLOG_minloglevel", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = "quick" if args.quick else args.preset
    options = vars(args)
    overrides = {name: options[name] for name in DEFAULTS if name in options}
    try:
        settings, table = settings_for(preset, overrides, torch=args.torch)
    except ValueError as error:
        parser.error(str(error))
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(shlex.quote(part) for part in ["python", "-m", "benchmarks.speed", *arguments])
    output_dir = args.output_dir or default_output_dir(preset)
    return run(settings, table, output_dir, command, log=lambda message: print(message, flush=True))


if __name__ == "__main__":
    main()
