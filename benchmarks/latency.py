"""Batch-1 latency of an export on every backend: p50 and p99 for one text of 32, 128 and 512 tokens.

    python -m benchmarks.latency --model_dir <export> [--threads 2] [--lengths 32 128 512] [--runs 300]

The export must hold every graph (``tools/export_model.py ... --quantize int8`` where the fused kernels
build). Each backend runs one text of random in-vocabulary ids per call: ``--warmup`` calls, then
``--runs`` timed ones; the backends take turns per length, so a drift of the machine's speed shows in
all of them. Prints a Markdown table of p50 / p99 milliseconds.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlenlp_fastformer import tune_cpu  # noqa: E402

tune_cpu()  # before paddle is imported, as the tools do

# (label, backend, graph, oneDNN, precision)
BACKENDS = (
    ("Paddle Inference, portable", "paddle", "portable", False, "fp32"),
    ("Paddle Inference, portable + oneDNN", "paddle", "portable", True, "fp32"),
    ("Paddle Inference, fused", "paddle", "fused", False, "fp32"),
    ("Paddle Inference, fused + oneDNN", "paddle", "fused", True, "fp32"),
    ("onnxruntime fp32", "onnxruntime", "portable", False, "fp32"),
    ("onnxruntime int8", "onnxruntime", "portable", False, "int8"),
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import json
    import time

    import numpy as np

    from fastformer_zoo.deploy.runners import create_runner

    vocab_size = json.loads(Path(args.model_dir, "inference_config.json").read_text(encoding="utf-8"))["vocab_size"]
    runners = {
        label: create_runner(args.model_dir, backend, args.threads, onednn, precision, graph)
        for label, backend, graph, onednn, precision in BACKENDS
    }
    rng = np.random.default_rng(args.seed)
    latencies = {}
    for length in args.lengths:
        ids = rng.integers(5, vocab_size, size=(1, length), dtype=np.int64)
        mask = np.ones_like(ids)
        for label, runner in runners.items():
            for _ in range(args.warmup):
                runner(ids, mask)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                runner(ids, mask)
                times.append(time.perf_counter() - started)
            latencies[label, length] = np.percentile(np.array(times) * 1000, (50, 99))
    print(f"batch 1, {args.threads} threads, {args.runs} runs after {args.warmup} warm-up; p50 / p99 ms")
    print("| backend | " + " | ".join(f"{length} tokens" for length in args.lengths) + " |")
    print("|---|" + "---:|" * len(args.lengths))
    for label in runners:
        cells = [f"{latencies[label, length][0]:.2f} / {latencies[label, length][1]:.2f}" for length in args.lengths]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
