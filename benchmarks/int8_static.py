"""Calibrated (static) int8 against the dynamic int8 an export ships, on onnxruntime: speed and accuracy.

    python -m benchmarks.int8_static --model_dir output/marc_en/inference --train data/marc_en/train.jsonl \
        --test data/marc_en/test.jsonl [--calibration_texts 256] [--test_texts 2000] [--threads 2]

Static quantization fixes every activation's scale from calibration texts (real training reviews, run through
the fp32 graph) instead of measuring it per forward pass. Two of onnxruntime's formats are built from the
export's ``inference.onnx``: QDQ (quantize/dequantize pairs around each weight product, which the runtime fuses)
and QOperator (QLinearMatMul); both with int8 weights per output channel and uint8 activations, as
onnxruntime advises for x86. Speed: batch 16 and 64 of 128 real tokens, the graphs taking turns, the least of
``--rounds`` rounds; accuracy: ``--test_texts`` texts of the test file, batch 64, truncated as the export says.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddlenlp_fastformer import tune_cpu  # noqa: E402

tune_cpu()


def _padded(tokenizer, texts, max_length):
    import numpy as np

    ids = tokenizer.texts_to_ids(list(texts), max_length=max_length)
    width = max(map(len, ids))
    input_ids = np.zeros((len(ids), width), dtype="int64")
    mask = np.zeros_like(input_ids)
    for row, tokens in enumerate(ids):
        input_ids[row, : len(tokens)], mask[row, : len(tokens)] = tokens, 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _static_graphs(model_dir, calibration_batches, scratch):
    """{name: path} of the QDQ and QOperator graphs calibrated on ``calibration_batches``."""
    import onnx
    import onnxoptimizer
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.left = list(calibration_batches)

        def get_next(self):
            return self.left.pop() if self.left else None

    float_path = os.path.join(scratch, "float.onnx")
    graph = onnxoptimizer.optimize(onnx.load(os.path.join(model_dir, "inference.onnx")), ["extract_constant_to_initializer", "eliminate_identity"])
    onnx.save(graph, float_path)
    paths = {}
    for name, quant_format in (("static QDQ", QuantFormat.QDQ), ("static QOperator", QuantFormat.QOperator)):
        paths[name] = os.path.join(scratch, name.replace(" ", "_") + ".onnx")
        quantize_static(float_path, paths[name], Batches(), quant_format=quant_format, op_types_to_quantize=["MatMul"], per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})  # fmt: skip
    return paths


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="an export made with --quantize int8")
    parser.add_argument("--train", required=True, help="a prepared train.jsonl: the calibration texts")
    parser.add_argument("--test", required=True, help="a prepared test.jsonl: the accuracy texts")
    parser.add_argument("--calibration_texts", type=int, default=256)
    parser.add_argument("--test_texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    import logging

    from fastformer_zoo.deploy.infer import read_labelled_texts
    from paddlenlp_fastformer.cpu import cpu_instruction_sets, cpu_model_name
    from paddlenlp_fastformer.tokenizer import FastformerTokenizer

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process
    settings = json.loads(Path(args.model_dir, "inference_config.json").read_text(encoding="utf-8"))
    tokenizer, max_length = FastformerTokenizer.from_pretrained(args.model_dir), settings["max_seq_len"]
    train_texts = read_labelled_texts(args.train, settings["label_names"])[0][: args.calibration_texts]
    test_texts, test_labels = (part[: args.test_texts] for part in read_labelled_texts(args.test, settings["label_names"]))
    calibration = [_padded(tokenizer, train_texts[start : start + 32], max_length) for start in range(0, len(train_texts), 32)]
    with tempfile.TemporaryDirectory(prefix="int8-static-") as scratch:
        started = time.perf_counter()
        graphs = {"fp32": "inference.onnx", "dynamic int8": "inference_int8.onnx", **_static_graphs(args.model_dir, calibration, scratch)}
        calibrated_in = time.perf_counter() - started
        runners = {name: _session_runner(os.path.join(args.model_dir, path), args.threads) for name, path in graphs.items()}
        accuracy = {name: _accuracy(runner, tokenizer, test_texts, test_labels, max_length) for name, runner in runners.items()}
        speed = {rows: _seconds(runners, tokenizer, train_texts, rows, args.rounds) for rows in (16, 64)}
    print(f"{cpu_model_name()} ({' '.join(cpu_instruction_sets())}); onnxruntime, {args.threads} threads; calibration on "
          f"{len(train_texts)} texts of {args.train} ({calibrated_in:.0f} s for both formats); accuracy on {len(test_texts)} texts of {args.test}")
    print("| graph | batch 16 x 128: speed-up over fp32 | batch 64 x 128 | accuracy |\n|---|---:|---:|---:|")
    for name in runners:
        print(f"| {name} | {speed[16]['fp32'] / speed[16][name]:.2f}x | {speed[64]['fp32'] / speed[64][name]:.2f}x | {100 * accuracy[name]:.2f} |")
    return {"accuracy": accuracy, "seconds": speed}


def _session_runner(path, threads):
    import onnxruntime

    from fastformer_zoo.deploy.runners import ONNXRUNTIME_DISABLED_OPTIMIZERS

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"], disabled_optimizers=list(ONNXRUNTIME_DISABLED_OPTIMIZERS)
    )  # the optimisations the export's runners run with
    return lambda input_ids, mask: session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]


def _accuracy(runner, tokenizer, texts, labels, max_length) -> float:
    import numpy as np

    predictions = []
    for start in range(0, len(texts), 64):
        batch = _padded(tokenizer, texts[start : start + 64], max_length)
        predictions += runner(batch["input_ids"], batch["attention_mask"]).argmax(axis=-1).tolist()
    return float(np.mean(np.array(predictions) == np.array(labels)))


def _seconds(runners, tokenizer, texts, rows, rounds) -> dict:
    """The least seconds per forward pass of ``rows`` real texts cut to 128 tokens, the runners taking turns."""
    batch = _padded(tokenizer, (texts * (rows // max(len(texts), 1) + 1))[:rows], 128)
    inputs = batch["input_ids"], batch["attention_mask"]
    best = {name: float("inf") for name in runners}
    for runner in runners.values():
        runner(*inputs)
    for _ in range(rounds):
        for name, runner in runners.items():
            started = time.perf_counter()
            runner(*inputs)
            best[name] = min(best[name], time.perf_counter() - started)
    return best


if __name__ == "__main__":
    main()
