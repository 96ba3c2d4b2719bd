"""Training and inference speed of Fastformer against the softmax Transformer and PyTorch, and of the
inference engines against dygraph, side by side on this CPU.

    python tools/benchmark.py                           # grid: lengths 128..8192 at 2,048 tokens per step
    python tools/benchmark.py --preset lucidrains-b16   # fast-transformer-pytorch's configuration, B16 x N512
    python tools/benchmark.py --preset paper-b64        # the paper's model, B64 x N256, also on Paddle Inference
    python tools/benchmark.py --preset deploy           # engines vs dygraph, batch 1 16 64 x length 32 128 512
    python tools/benchmark.py --preset deploy-long      # the same engines, 128..8192 tokens at 2,048 per batch
    python tools/benchmark.py --quick                   # a smoke test

Options given explicitly override the preset's. Writes benchmark.csv, .png and .json under
output/benchmark[/PRESET]. Method and FLOP formulas: benchmarks/speed.py; measured figures: docs/speed.md.
"""
import argparse
import os
import shlex
import sys

# Not tools/program.py, as the other tools do: its CPU tuning would set variables in this process's
# environment, which the torch fork server inherits. The paddle fork server tunes itself instead.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Paddle's C++ warnings (glog) about its own internals, unless the user asked for them.
os.environ.setdefault("GLOG_minloglevel", "2")

from benchmarks import speed  # noqa: E402  (after the checkout's root is on sys.path)
from benchmarks.models import MODELS, MODES  # noqa: E402
from benchmarks.report import TABLES  # noqa: E402


def _default(name: str) -> str:
    value = speed.DEFAULTS[name]
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--preset",
        choices=list(speed.PRESETS),
        default="grid",
        help="grid (default), quick, lucidrains-b16, paper-b64, deploy or deploy-long; see benchmarks/speed.py",
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
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = "quick" if args.quick else args.preset
    options = vars(args)
    overrides = {name: options[name] for name in speed.DEFAULTS if name in options}
    try:
        settings, table = speed.settings_for(preset, overrides, torch=args.torch)
    except ValueError as error:
        parser.error(str(error))
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(shlex.quote(part) for part in ["tools/benchmark.py", *arguments])
    output_dir = args.output_dir or speed.default_output_dir(preset)
    return speed.main(settings, table, output_dir, command, log=lambda message: print(message, flush=True))


if __name__ == "__main__":
    main()
