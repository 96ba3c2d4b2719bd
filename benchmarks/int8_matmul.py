"""The most int8 can give on this CPU: one weight matrix product on onnxruntime, float32 against the dynamic int8
quantization that ``tools/export_model.py --quantize int8`` applies (int8 weights per output channel,
activations quantized per call).

    python -m benchmarks.int8_matmul [--rows 128 2048] [--hidden 256] [--intermediate 256] [--threads 2]

A model's int8 speed-up cannot exceed its matrix products' own: everything else in the graph stays float32.
Each shape is one of a Fastformer layer's products ([rows, hidden] x [hidden, hidden], x [hidden,
intermediate], [rows, intermediate] x [intermediate, hidden]); ``--rows`` are tokens per forward pass
(128: one review at batch 1; 2048: a batch of 16-64 reviews). The two sessions take three turns of two
rounds of 50 calls each; the median round is printed, with GFLOP/s (int8: operations per second, counted alike).
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlenlp_fastformer import tune_cpu  # noqa: E402

tune_cpu()


def _weight_product_graph(path: str, inner: int, outer: int) -> None:
    import numpy as np
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

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


TURNS, ROUNDS_PER_TURN, CALLS_PER_ROUND = 3, 2, 50


def _seconds_per_call(session, x) -> list:
    """One turn: ``ROUNDS_PER_TURN`` rounds of ``CALLS_PER_ROUND`` calls, each round's seconds per call."""
    session.run(None, {"x": x})
    times = []
    for _ in range(ROUNDS_PER_TURN):
        started = time.perf_counter()
        for _ in range(CALLS_PER_ROUND):
            session.run(None, {"x": x})
        times.append((time.perf_counter() - started) / CALLS_PER_ROUND)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[128, 2048])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--intermediate", type=int, default=256, help="default: the paper's (configs/amazon.yaml)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import logging

    import numpy as np

    from fastformer_zoo.deploy.onnx_graphs import quantize_onnx_int8

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process a one-node graph
    hidden, intermediate = args.hidden, args.intermediate
    shapes = list(dict.fromkeys([(hidden, hidden), (hidden, intermediate), (intermediate, hidden)]))
    rounds = TURNS * ROUNDS_PER_TURN
    print(f"onnxruntime, {args.threads} threads; median of {rounds} rounds x {CALLS_PER_ROUND} calls, the sessions taking turns")
    print("| rows x inner x outer | fp32 us | fp32 GFLOP/s | int8 us | int8 GOP/s | int8 speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="int8-matmul-") as scratch:
        float_path, int8_path = f"{scratch}/fp32.onnx", f"{scratch}/int8.onnx"
        for inner, outer in shapes:
            _weight_product_graph(float_path, inner, outer)
            quantize_onnx_int8(scratch, "fp32.onnx", "int8.onnx")  # what tools/export_model.py --quantize int8 runs
            sessions = {"fp32": _session(float_path, args.threads), "int8": _session(int8_path, args.threads)}
            for rows in args.rows:
                x = np.random.default_rng(1).standard_normal((rows, inner)).astype(np.float32)
                times = {name: [] for name in sessions}
                for _ in range(TURNS):  # so that a drift of the machine's speed hits both
                    for name, session in sessions.items():
                        times[name] += _seconds_per_call(session, x)
                fp32, int8 = (statistics.median(times[name]) for name in ("fp32", "int8"))
                operations = 2 * rows * inner * outer
                print(
                    f"| {rows} x {inner} x {outer} | {fp32 * 1e6:,.0f} | {operations / fp32 / 1e9:.0f} | {int8 * 1e6:,.0f} "
                    f"| {operations / int8 / 1e9:.0f} | {fp32 / int8:.2f}x |"
                )


if __name__ == "__main__":
    main()
