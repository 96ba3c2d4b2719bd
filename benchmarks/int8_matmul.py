"""The most int8 can give on this CPU: one weight matrix product on onnxruntime, float32 against the dynamic int8
quantization that ``tools/export_model.py --quantize int8`` applies (int8 weights per output channel,
activations quantized per call); with ``--model_dir``, also a whole export's int8 graph against its float32 one
at the same rows, and what share of the product's speed-up the model keeps.

    python -m benchmarks.int8_matmul [--rows 128 2048] [--hidden 256] [--intermediate 256] [--threads 2]
    python -m benchmarks.int8_matmul --model_dir EXPORT [--batch_sizes 16 64] [--length 128] [--threads 2]

A model's int8 speed-up cannot exceed its matrix products' own: everything else in the graph stays float32.
Each shape is one of a Fastformer layer's products ([rows, hidden] x [hidden, hidden], x [hidden,
intermediate], [rows, intermediate] x [intermediate, hidden]); ``--rows`` are tokens per forward pass
(128: one review at batch 1; 2048: a batch of 16-64 reviews); with ``--model_dir`` the rows are batch x length
and the sizes the export's. Float32 and int8 take three turns of two rounds of 50 calls each (whole models: of
at least half a second), the product's and the model's turns interleaved; the median round is printed, with
GFLOP/s (int8: operations per second, counted alike).
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlenlp_fastformer import tune_cpu  # noqa: E402

tune_cpu()


def _weight_product_graph(path: str, inner: int, outer: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.05, (inner, outer)).astype(np.float32), "weight")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["y"])], "weight_product",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", inner])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", outer])],
        [weight],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _session(path: str, threads: int):
    import onnxruntime

    from fastformer_zoo.deploy.runners import ONNXRUNTIME_DISABLED_OPTIMIZERS

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"], disabled_optimizers=list(ONNXRUNTIME_DISABLED_OPTIMIZERS)
    )
    return lambda x: session.run(None, {"x": x})


TURNS, ROUNDS_PER_TURN, CALLS_PER_ROUND, LEAST_ROUND_SECONDS = 3, 2, 50, 0.5


def _seconds_per_call(run: Callable, inputs: tuple, calls: int = CALLS_PER_ROUND, least_seconds: float = 0.0) -> list:
    """One turn: ``ROUNDS_PER_TURN`` rounds of ``calls`` calls (or more, to last ``least_seconds``), each round's
    seconds per call."""
    run(*inputs)
    times = []
    for _ in range(ROUNDS_PER_TURN):
        done, started = 0, time.perf_counter()
        while done < calls or time.perf_counter() - started < least_seconds:
            run(*inputs)
            done += 1
        times.append((time.perf_counter() - started) / done)
    return times


def _medians(runners: dict, inputs: dict, **turn) -> dict:
    """The median round of each runner, the runners taking ``TURNS`` turns so that a drift of the machine's speed hits all."""
    times = {name: [] for name in runners}
    for _ in range(TURNS):
        for name, run in runners.items():
            times[name] += _seconds_per_call(run, inputs[name], **turn)
    return {name: statistics.median(values) for name, values in times.items()}


def _product_row(rows: int, inner: int, outer: int, sessions: dict) -> tuple:
    """The markdown row of one product shape, and its int8 speed-up."""
    x = np.random.default_rng(1).standard_normal((rows, inner)).astype(np.float32)
    seconds = _medians(sessions, {name: (x,) for name in sessions})
    fp32, int8 = seconds["fp32"], seconds["int8"]
    operations = 2 * rows * inner * outer
    row = f"| {rows} x {inner} x {outer} | {fp32 * 1e6:,.0f} | {operations / fp32 / 1e9:.0f} | {int8 * 1e6:,.0f} | {operations / int8 / 1e9:.0f} | {fp32 / int8:.2f}x |"
    return row, fp32 / int8


def _product_sessions(scratch: str, inner: int, outer: int, threads: int) -> dict:
    from fastformer_zoo.deploy.onnx_graphs import quantize_onnx_int8

    float_path, int8_path = f"{scratch}/fp32.onnx", f"{scratch}/int8.onnx"
    _weight_product_graph(float_path, inner, outer)
    quantize_onnx_int8(scratch, "fp32.onnx", "int8.onnx")  # what tools/export_model.py --quantize int8 runs
    return {"fp32": _session(float_path, threads), "int8": _session(int8_path, threads)}


def _model_table(model_dir: str, batch_sizes: list, length: int, hidden: int, threads: int, scratch: str) -> list:
    """Per batch size: the export's int8 speed-up on onnxruntime (portable graph) against the product's at the same
    rows ([rows, hidden] x [hidden, hidden], ``hidden`` being the export's hidden size)."""
    import json

    from fastformer_zoo.deploy.export_format import INFERENCE_CONFIG_FILE
    from fastformer_zoo.deploy.runners import create_runner

    vocab = json.loads(Path(model_dir, INFERENCE_CONFIG_FILE).read_text(encoding="utf-8"))["vocab_size"]
    models = {precision: create_runner(model_dir, "onnxruntime", threads, precision=precision) for precision in ("fp32", "int8")}
    products = _product_sessions(scratch, hidden, hidden, threads)
    lines = [f"whole model: {model_dir} (onnxruntime, portable graph), batch x {length} tokens; product: [rows, {hidden}] x [{hidden}, {hidden}]",
             "| batch x length | rows | product int8 speed-up | model fp32 ms | model int8 ms | model int8 speed-up | of the product's |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for batch in batch_sizes:
        ids = np.random.default_rng(2).integers(1, vocab, size=(batch, length)).astype("int64")
        x = np.random.default_rng(1).standard_normal((batch * length, hidden)).astype(np.float32)
        runners = {"model fp32": models["fp32"], "model int8": models["int8"], "product fp32": products["fp32"], "product int8": products["int8"]}
        inputs = {"model fp32": (ids, np.ones_like(ids)), "model int8": (ids, np.ones_like(ids)), "product fp32": (x,), "product int8": (x,)}
        seconds = _medians(runners, inputs, calls=3, least_seconds=LEAST_ROUND_SECONDS)
        product, model = seconds["product fp32"] / seconds["product int8"], seconds["model fp32"] / seconds["model int8"]
        lines.append(f"| {batch} x {length} | {batch * length:,} | {product:.2f}x | {seconds['model fp32'] * 1e3:.2f} | "
                     f"{seconds['model int8'] * 1e3:.2f} | {model:.2f}x | {model / product:.0%} |")  # fmt: skip
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[128, 2048])
    parser.add_argument("--hidden", type=int, default=256, help="with --model_dir: the export's hidden size")
    parser.add_argument("--intermediate", type=int, default=256, help="default: the paper's (configs/amazon.yaml)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model_dir", help="an export with --onnx --quantize int8: its int8 speed-up beside the product's")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 64], help="with --model_dir")
    parser.add_argument("--length", type=int, default=128, help="with --model_dir: tokens per text")
    args = parser.parse_args(argv)

    import logging

    from paddlenlp_fastformer.cpu import cpu_instruction_sets, cpu_model_name

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process a one-node graph
    rounds = TURNS * ROUNDS_PER_TURN
    print(f"{cpu_model_name()} ({' '.join(cpu_instruction_sets()) or 'no AVX2'}); onnxruntime, {args.threads} threads; "
          f"median of {rounds} rounds, the sessions taking turns")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="int8-matmul-") as scratch:
        if args.model_dir:
            print("\n".join(_model_table(args.model_dir, args.batch_sizes, args.length, args.hidden, args.threads, scratch)))
            return
        print(f"{CALLS_PER_ROUND} calls per round")
        print("| rows x inner x outer | fp32 us | fp32 GFLOP/s | int8 us | int8 GOP/s | int8 speed-up |")
        print("|---|---:|---:|---:|---:|---:|")
        hidden, intermediate = args.hidden, args.intermediate
        for inner, outer in dict.fromkeys([(hidden, hidden), (hidden, intermediate), (intermediate, hidden)]):
            sessions = _product_sessions(scratch, inner, outer, args.threads)
            for rows in args.rows:
                print(_product_row(rows, inner, outer, sessions)[0])


if __name__ == "__main__":
    main()
