"""Predict review ratings with an exported model (``tools/export_model.py``) on Paddle Inference or onnxruntime.

:class:`Predictor` loads an export directory once and classifies lists of texts: texts are sorted by
length and batched so that little padding is computed, and the results come back in the input order.
With ``record_timings=True`` it keeps the time spent per batch in pre-processing (tokenizing and
padding), inference and post-processing, which ``tools/infer.py --benchmark True`` reports.

:func:`benchmark_backends` (``tools/benchmark_inference.py``) compares dygraph, Paddle Inference with
oneDNN on and off, and onnxruntime on the same inputs.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .data import DataError, iter_reviews, read_prepared
from .cli import exit_on_user_errors, quiet_paddlenlp_logging
from .export import INFERENCE_CONFIG_FILE, INPUT_NAMES, MODEL_FILES, ONNX_FILE, export_inference_model
from .file_utils import write_text_atomically

__all__ = [
    "InferenceError",
    "BACKENDS",
    "BatchTiming",
    "Predictor",
    "create_runner",
    "read_labelled_texts",
    "summarize_timings",
    "benchmark_backends",
    "format_benchmark_table",
    "write_benchmark_csv",
    "main",
    "benchmark_main",
]

logger = logging.getLogger("paddlenlp_fastformer")

BACKENDS = ("paddle", "onnxruntime")
PRECISIONS = ("fp32",)
# oneDNN keeps compiled kernels per input shape; batches of varying length would grow that cache
# without bound, so keep the most recent shapes only (Paddle's advice for variable-shape inputs).
ONEDNN_CACHE_CAPACITY = 32
# Where a prepared data directory (tools/prepare_data.py) keeps the split that is predicted.
DEFAULT_SPLIT_FILE = "test.jsonl"


# The stages of a batch that BatchTiming times, in order.
TIMED_STAGES = ("preprocess", "inference", "postprocess")


class InferenceError(ValueError):
    """An export directory, input or option that cannot be used, said in one line."""


@dataclass
class BatchTiming:
    """Seconds spent on one batch, and its size (``num_tokens`` counts real tokens, not padding).

    ``preprocess`` is the batch's share of tokenizing (done for all texts at once, to sort them by
    length) plus its padding.
    """

    num_texts: int
    num_tokens: int
    preprocess: float
    inference: float
    postprocess: float


# ----------------------------------------------------------------------------------------------
# backends: a callable (input_ids, attention_mask) -> probabilities, all numpy
# ----------------------------------------------------------------------------------------------
class _PaddleInferenceRunner:
    """The static graph on Paddle Inference (CPU), oneDNN on or off."""

    def __init__(self, model_dir: str, cpu_threads: int, enable_mkldnn: bool):
        from paddle import inference

        config = inference.Config(*(os.path.join(model_dir, name) for name in MODEL_FILES))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cpu_threads)
        if enable_mkldnn:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(ONEDNN_CACHE_CAPACITY)
        else:
            config.disable_mkldnn()
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.inputs = [self.predictor.get_input_handle(name) for name in INPUT_NAMES]
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        for handle, array in zip(self.inputs, (input_ids, attention_mask)):
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        self.predictor.run()
        return self.output.copy_to_cpu()


class _OnnxRuntimeRunner:
    """``inference.onnx`` on onnxruntime's CPU execution provider."""

    def __init__(self, model_dir: str, cpu_threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.inter_op_num_threads = 1  # one request at a time: parallelism inside operators only
        # Idle worker threads would otherwise spin for a while after each run, taking the cores from
        # the tokenizer between batches (and from any other runtime in the process).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: not a warning per unused constant paddle2onnx leaves
        self.session = onnxruntime.InferenceSession(
            os.path.join(model_dir, ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, dict(zip(INPUT_NAMES, (input_ids, attention_mask))))[0]


def _required_files(backend: str) -> tuple:
    model_files = MODEL_FILES if backend == "paddle" else (ONNX_FILE,)
    return model_files + ("vocab.txt", "tokenizer_config.json", INFERENCE_CONFIG_FILE)


def _check_model_dir(model_dir: str, backend: str) -> None:
    if backend not in BACKENDS:
        raise InferenceError(f"backend {backend!r} is not supported; choose one of {', '.join(BACKENDS)}")
    path = Path(model_dir)
    if not path.is_dir():
        raise InferenceError(f"model directory {model_dir!r} not found; expected the output of tools/export_model.py")
    missing = [name for name in _required_files(backend) if not (path / name).is_file()]
    if missing:
        hint = " (export with --onnx)" if ONNX_FILE in missing else ""
        raise InferenceError(
            f"model directory {model_dir!r} is incomplete: missing {', '.join(missing)}{hint}; "
            "expected the output of tools/export_model.py"
        )


def create_runner(model_dir: str, backend: str = "paddle", cpu_threads: int = 1, enable_mkldnn: bool = False):
    """A callable ``(input_ids, attention_mask) -> probabilities`` on ``backend`` (numpy in and out).

    ``enable_mkldnn`` applies to the paddle backend; onnxruntime's pip build has no oneDNN provider.
    """
    _check_model_dir(model_dir, backend)
    if backend == "paddle":
        return _PaddleInferenceRunner(model_dir, cpu_threads, enable_mkldnn)
    return _OnnxRuntimeRunner(model_dir, cpu_threads)


# ----------------------------------------------------------------------------------------------
# the predictor
# ----------------------------------------------------------------------------------------------
class Predictor:
    """Classify review texts with an exported model.

    Args:
        model_dir: a directory written by ``tools/export_model.py``.
        backend: "paddle" (Paddle Inference) or "onnxruntime" (needs an export made with ``--onnx``).
        cpu_threads: threads for the math library; None uses every core.
        enable_mkldnn: run Paddle Inference with oneDNN kernels (paddle backend only).
        precision: "fp32", the only precision of this CPU deployment.
        batch_size: texts per forward pass.
        record_timings: append a :class:`BatchTiming` per batch to ``self.timings``.

    Example:
        >>> predictor = Predictor("output/amazon/inference", cpu_threads=2)
        >>> predictor.predict(["Works great.", "Broke after two days."])[0]["label"]
        '5 stars'
    """

    def __init__(
        self,
        model_dir: str,
        backend: str = "paddle",
        cpu_threads: Optional[int] = None,
        enable_mkldnn: bool = False,
        precision: str = "fp32",
        batch_size: int = 16,
        record_timings: bool = False,
    ):
        from .tokenizer import FastformerTokenizer

        if precision not in PRECISIONS:
            raise InferenceError(f"precision {precision!r} is not supported on this CPU build; use fp32")
        if batch_size < 1:
            raise InferenceError(f"batch_size must be at least 1, got {batch_size}")
        self.runner = create_runner(model_dir, backend, cpu_threads or os.cpu_count() or 1, enable_mkldnn)
        settings = json.loads(Path(model_dir, INFERENCE_CONFIG_FILE).read_text(encoding="utf-8"))
        self.label_names: list[str] = settings["label_names"]
        self.max_seq_len: int = settings["max_seq_len"]
        self.tokenizer = FastformerTokenizer.from_pretrained(model_dir)
        self.batch_size = batch_size
        self.timings: Optional[list[BatchTiming]] = [] if record_timings else None

    def predict(self, texts: Sequence[str]) -> list[dict]:
        """Label name, rating (class id + 1, i.e. 1..5 stars) and class probabilities of each text.

        Returns:
            One ``{"label": str, "rating": int, "probabilities": list[float]}`` per text, in the order
            of ``texts``; probabilities are in class-id order (``self.label_names``).

        Raises:
            InferenceError: a text is not a string or is empty (whitespace only).
        """
        for number, text in enumerate(texts, start=1):
            if not isinstance(text, str) or not text.strip():
                raise InferenceError(f"text {number} is empty; expected a review text")
        if not texts:
            return []
        started = time.perf_counter()
        token_ids = self.tokenizer(
            list(texts),
            max_length=self.max_seq_len,
            truncation=True,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        # Tokenizing is one call for all texts; each batch is charged its share of that time.
        seconds_per_text = (time.perf_counter() - started) / len(texts)
        # Batches of neighbours in length order carry little padding (on real reviews, 2-7% extra
        # tokens at batch 16-64 against 12-20% when sorting by character count).
        order = sorted(range(len(texts)), key=lambda index: len(token_ids[index]))
        results: list[Optional[dict]] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            batch = self._predict_batch([token_ids[index] for index in indices], seconds_per_text * len(indices))
            for index, result in zip(indices, batch):
                results[index] = result
        return results

    def _predict_batch(self, token_ids: list[list[int]], tokenize_seconds: float) -> list[dict]:
        started = time.perf_counter()
        padded = self.tokenizer.pad(
            {"input_ids": token_ids}, padding=True, return_attention_mask=True, return_tensors="np"
        )
        input_ids, attention_mask = padded["input_ids"].astype("int64"), padded["attention_mask"].astype("int64")
        preprocessed = time.perf_counter()
        probabilities = self.runner(input_ids, attention_mask)
        inferred = time.perf_counter()
        results = [
            {"label": self.label_names[class_id], "rating": class_id + 1, "probabilities": row.tolist()}
            for class_id, row in zip(probabilities.argmax(axis=-1).tolist(), probabilities)
        ]
        if self.timings is not None:
            self.timings.append(
                BatchTiming(
                    num_texts=len(token_ids),
                    num_tokens=int(attention_mask.sum()),
                    preprocess=tokenize_seconds + preprocessed - started,
                    inference=inferred - preprocessed,
                    postprocess=time.perf_counter() - inferred,
                )
            )
        return results


def summarize_timings(timings: Sequence[BatchTiming]) -> dict:
    """Mean milliseconds per batch of each stage, and end-to-end throughput in texts/s and tokens/s."""
    summary = {
        "batches": len(timings),
        "texts": sum(t.num_texts for t in timings),
        "tokens": sum(t.num_tokens for t in timings),
    }
    for stage in TIMED_STAGES:
        summary[f"{stage}_ms_per_batch"] = 1000 * statistics.fmean(getattr(t, stage) for t in timings)
    total_seconds = sum(getattr(t, stage) for t in timings for stage in TIMED_STAGES)
    summary["texts_per_s"] = summary["texts"] / total_seconds
    summary["tokens_per_s"] = summary["tokens"] / total_seconds
    return summary


# ----------------------------------------------------------------------------------------------
# input files
# ----------------------------------------------------------------------------------------------
def read_labelled_texts(path: str) -> tuple[list[str], list[int]]:
    """Texts and class ids of a data file in any format training reads.

    A prepared split (``{"text", "label"}`` JSON lines from tools/prepare_data.py) or a raw review file
    (McAuley/MARC JSON lines, CSV, TSV; gzip or plain; unusable rows skipped as in training). A
    directory stands for its prepared ``test.jsonl``.
    """
    if Path(path).is_dir():
        path = str(Path(path) / DEFAULT_SPLIT_FILE)
    if not Path(path).is_file():
        raise DataError("file not found; expected a prepared split or a raw review file", path)
    try:
        examples = read_prepared(path)
    except DataError as error:
        # A file that fails on its first line is not a prepared split: read it as raw reviews. A later
        # failure is a damaged prepared split, and its own error is the useful one.
        if error.line != 1:
            raise
        examples = list(iter_reviews(path))
    if not examples:
        raise DataError("holds no texts to predict", path)
    return [example["text"] for example in examples], [example["label"] for example in examples]


# ----------------------------------------------------------------------------------------------
# tools/infer.py
# ----------------------------------------------------------------------------------------------
def _str2bool(value: str) -> bool:
    """TIPC passes booleans as the strings True/False."""
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def build_infer_parser() -> argparse.ArgumentParser:
    """The TIPC inference flags (test_tipc/configs/*/train_infer_python.txt), plus text and backend choice."""
    parser = argparse.ArgumentParser(description="Predict review ratings with an exported Fastformer model.")
    parser.add_argument("--model_dir", required=True, help="directory written by tools/export_model.py")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a review to classify; may repeat")
    source.add_argument("--data_dir", help="a data file (prepared split or raw reviews) or a prepared data directory")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--cpu_threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--enable_mkldnn", type=_str2bool, default=False, help="oneDNN kernels (paddle backend)")
    parser.add_argument("--use_gpu", type=_str2bool, default=False)
    parser.add_argument("--use_tensorrt", type=_str2bool, default=False)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--backend", choices=BACKENDS, default="paddle")
    parser.add_argument("--benchmark", type=_str2bool, default=False, help="report time per stage and throughput")
    parser.add_argument("--save_log_path", help="also write the benchmark report here")
    return parser


def _format_benchmark(summary: dict, args: argparse.Namespace) -> str:
    onednn = "on" if args.enable_mkldnn and args.backend == "paddle" else "off"
    return "\n".join(
        [
            f"benchmark: backend {args.backend}, oneDNN {onednn}, {args.cpu_threads} CPU thread(s), precision "
            f"{args.precision}, batch size {args.batch_size}",
            f"data: {summary['texts']} texts, {summary['tokens']} tokens, {summary['batches']} batches",
            *(f"{stage}_time(ms/batch): {summary[f'{stage}_ms_per_batch']:.3f}" for stage in TIMED_STAGES),
            f"throughput: {summary['texts_per_s']:.1f} texts/s, {summary['tokens_per_s']:.0f} tokens/s",
        ]
    )


def infer(args: argparse.Namespace) -> None:
    """Print one JSON line per text, then accuracy/macro-F1 for labelled data and the benchmark report."""
    from .metrics import classification_metrics

    for flag in ("use_gpu", "use_tensorrt"):
        if getattr(args, flag):
            raise InferenceError(f"--{flag} True is not supported on this CPU build; use --{flag} False")
    texts, labels = (args.text, None) if args.text is not None else read_labelled_texts(args.data_dir)
    predictor = Predictor(
        args.model_dir,
        backend=args.backend,
        cpu_threads=args.cpu_threads,
        enable_mkldnn=args.enable_mkldnn,
        precision=args.precision,
        batch_size=args.batch_size,
        record_timings=args.benchmark,
    )
    results = predictor.predict(texts)
    for text, result in zip(texts, results):
        probabilities = [round(p, 6) for p in result["probabilities"]]
        print(json.dumps({"text": text, **result, "probabilities": probabilities}, ensure_ascii=False))
    if labels is not None:
        predictions = [result["rating"] - 1 for result in results]
        names = predictor.label_names
        metrics = classification_metrics(labels, predictions, len(names), names)
        print(f"accuracy: {metrics['accuracy']:.4f}  macro-F1: {metrics['macro_f1']:.4f}  ({len(labels)} texts)")
    if args.benchmark:
        report = _format_benchmark(summarize_timings(predictor.timings), args)
        print(report)
        if args.save_log_path:
            write_text_atomically(args.save_log_path, report + "\n")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``tools/infer.py``; user errors end as one ``error: ...`` line and exit code 2."""
    args = build_infer_parser().parse_args(argv)
    quiet_paddlenlp_logging()
    with exit_on_user_errors(InferenceError):
        infer(args)


# ----------------------------------------------------------------------------------------------
# tools/benchmark_inference.py
# ----------------------------------------------------------------------------------------------
def write_random_classifier(directory: str, vocab_size: int, max_seq_len: int, model=None) -> None:
    """Save ``model`` (default: a paper-size classifier with random weights) and a matching tokenizer."""
    from .configuration import FastformerConfig
    from .modeling import FastformerForSequenceClassification
    from .tokenizer import FastformerTokenizer

    tokenizer = FastformerTokenizer(
        vocab=["[PAD]", "[UNK]"] + [f"w{index}" for index in range(2, vocab_size)], model_max_length=max_seq_len
    )
    if model is None:
        model = FastformerForSequenceClassification(
            FastformerConfig(vocab_size=vocab_size, max_position_embeddings=max_seq_len)
        )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _dygraph_runner(pretrained_dir: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The eager model + softmax, the graph that the export saves, for comparison."""
    import paddle

    from .training import load_checkpoint

    model, _ = load_checkpoint(pretrained_dir)

    @paddle.no_grad()
    def run(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        logits = model(paddle.to_tensor(input_ids), attention_mask=paddle.to_tensor(attention_mask))
        return paddle.nn.functional.softmax(logits, axis=-1).numpy()

    return run


def _time_side_by_side(runners: dict, inputs: tuple, repeats: int) -> tuple[dict, dict]:
    """Outputs of each runner, and its median seconds per call over ``repeats`` interleaved rounds.

    Two warm-up calls first (oneDNN builds its kernels per input shape). Interleaving the runners
    round by round makes background load hit all of them alike.
    """
    outputs = {name: run(*inputs) for name, run in runners.items()}
    for run in runners.values():
        run(*inputs)
    seconds = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            started = time.perf_counter()
            run(*inputs)
            seconds[name].append(time.perf_counter() - started)
    return outputs, {name: statistics.median(values) for name, values in seconds.items()}


def benchmark_backends(
    batch_sizes: Sequence[int] = (1, 16, 64),
    lengths: Sequence[int] = (32, 128, 512),
    cpu_threads: Optional[int] = None,
    repeats: int = 5,
    vocab_size: int = 50000,
    seed: int = 0,
) -> list[dict]:
    """Forward-pass throughput of dygraph, Paddle Inference (oneDNN on/off) and onnxruntime, side by side.

    A paper-size model with random weights is exported once; every backend then runs the same random
    full-length batches (no padding, so tokens = batch x length), timed by :func:`_time_side_by_side`.
    ``cpu_threads`` None or 0 uses every core.

    Returns:
        One row per (batch size, length, backend): milliseconds per batch, texts/s, tokens/s, the
        speed-up over dygraph, and the largest probability difference from dygraph.
    """
    from .training import set_cpu_threads

    threads = set_cpu_threads(cpu_threads or 0)
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        pretrained_dir, export_dir = os.path.join(work_dir, "pretrained"), os.path.join(work_dir, "inference")
        write_random_classifier(pretrained_dir, vocab_size, max(lengths))
        export_inference_model(pretrained_dir, export_dir, onnx=True)
        runners = {
            "dygraph": _dygraph_runner(pretrained_dir),
            "paddle_inference_onednn": create_runner(export_dir, "paddle", threads, enable_mkldnn=True),
            "paddle_inference": create_runner(export_dir, "paddle", threads, enable_mkldnn=False),
            "onnxruntime": create_runner(export_dir, "onnxruntime", threads),
        }
        rng = np.random.default_rng(seed)
        for batch_size in batch_sizes:
            for length in lengths:
                input_ids = rng.integers(2, vocab_size, size=(batch_size, length), dtype=np.int64)
                outputs, seconds = _time_side_by_side(runners, (input_ids, np.ones_like(input_ids)), repeats)
                for name in runners:
                    rows.append(
                        {
                            "backend": name,
                            "batch_size": batch_size,
                            "seq_len": length,
                            "cpu_threads": threads,
                            "ms_per_batch": 1000 * seconds[name],
                            "texts_per_s": batch_size / seconds[name],
                            "tokens_per_s": batch_size * length / seconds[name],
                            "speedup_vs_dygraph": seconds["dygraph"] / seconds[name],
                            "max_abs_diff_vs_dygraph": float(np.abs(outputs[name] - outputs["dygraph"]).max()),
                        }
                    )
                logger.info("batch %d x length %d done", batch_size, length)
    return rows


def format_benchmark_table(rows: Sequence[dict]) -> str:
    """A markdown table of :func:`benchmark_backends` rows."""
    header = "| batch | length | backend | ms/batch | texts/s | tokens/s | vs dygraph | max abs diff |"
    lines = [header, "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {row['batch_size']} | {row['seq_len']} | {row['backend']} | {row['ms_per_batch']:.1f} | "
            f"{row['texts_per_s']:.1f} | {row['tokens_per_s']:.0f} | {row['speedup_vs_dygraph']:.2f}x | "
            f"{row['max_abs_diff_vs_dygraph']:.1e} |"
        )
    return "\n".join(lines)


def write_benchmark_csv(rows: Sequence[dict], path: str) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, buffer.getvalue())


def benchmark_main(argv: Optional[Sequence[str]] = None) -> None:
    """``tools/benchmark_inference.py``: print the markdown table and write the CSV."""
    parser = argparse.ArgumentParser(description="Compare dygraph, Paddle Inference and onnxruntime throughput.")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--cpu_threads", type=int, default=0, help="0 uses every core")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per backend and shape (median counts)")
    parser.add_argument("--output", default="output/benchmark_inference.csv", help="CSV file of all measurements")
    args = parser.parse_args(argv)
    quiet_paddlenlp_logging()
    rows = benchmark_backends(args.batch_sizes, args.lengths, args.cpu_threads, args.repeats)
    print(format_benchmark_table(rows))
    write_benchmark_csv(rows, args.output)
    print(f"\nwritten to {args.output}")
