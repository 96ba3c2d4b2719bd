"""Classify texts with an exported model (``tools/export_model.py``) on Paddle Inference or onnxruntime.

:class:`Predictor` loads an export directory once and classifies lists of texts. Texts are sorted by length and
grouped into forward passes that weigh the padding a pass computes against the cost of one more pass
(:func:`plan_forward_passes`); where only the packed graph runs, a pass takes up to ``batch_size`` texts back to
back with no padding. Each pass runs on the engine :mod:`.engines` measured fastest at its shape on this CPU.
Results come back in the input order.
With ``record_timings=True`` it keeps the time spent per batch in pre-processing (tokenizing and
padding), inference and post-processing, which ``tools/infer.py --benchmark True`` reports.

Nothing here imports training code: an export directory and the tokenizer are all it needs.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..data.readers import check_texts
from ..errors import UserError, one_line
from .engines import Engine, backend_of_files, candidate_engines, choose_engines, cpu_has_bf16
from .export_format import INFERENCE_CONFIG_FILE, ONNX_FILE, ONNX_INT8_FILE
from .runners import BACKENDS, GRAPHS, check_graph, check_model_dir, create_runner, packed_inputs

__all__ = [
    "BACKENDS", "GRAPHS", "PASS_COST_TOKENS", "TIMED_STAGES", "BatchTiming", "Predictor", "check_export",
    "measure_export", "plan_forward_passes", "serving_backend", "summarize_timings", "texts_per_second",
]  # fmt: skip

logger = logging.getLogger("fastformer_zoo")

MAX_THREADS = 1024  # far beyond any CPU this runs on; larger values overflow the runtimes' own types
# What starting one more forward pass costs, counted in tokens of work (a padded position of one row):
# the planner weighs it against the padding that fewer, longer-padded passes compute. Small passes
# also multiply small matrices, which runs well below the machine's speed, so the best value is larger
# than a pass's fixed overhead alone; docs/deployment.md ("Forward passes") has the sweep behind it.
PASS_COST_TOKENS = 150


# The stages of a batch that BatchTiming times, in order.
TIMED_STAGES = ("preprocess", "inference", "postprocess")


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
# the export's checks
# ----------------------------------------------------------------------------------------------
def _read_inference_config(path: Path) -> tuple:
    """Label names, truncation length and vocabulary size (None in older exports) from ``inference_config.json``."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        labels, length = settings["label_names"], settings["max_seq_len"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not a valid inference config ({type(error).__name__}: {one_line(error)})") from None
    if not (isinstance(labels, list) and labels and all(isinstance(name, str) for name in labels)):
        raise UserError(f"{path}: 'label_names' must be a non-empty list of strings")
    if type(length) is not int or length < 1:
        raise UserError(f"{path}: 'max_seq_len' must be a positive integer, got {length!r}")
    if len(set(labels)) != len(labels):
        raise UserError(f"{path}: 'label_names' must be distinct; got {labels}")
    positions = settings.get("max_position_embeddings", length)
    if type(positions) is not int or length > positions:
        raise UserError(f"{path}: 'max_seq_len' {length} exceeds the model's {positions!r} positions")
    vocab_size = settings.get("vocab_size")
    if vocab_size is not None and (type(vocab_size) is not int or vocab_size < 1):
        raise UserError(f"{path}: 'vocab_size' must be a positive integer, got {vocab_size!r}")
    return labels, length, vocab_size


def check_export(model_dir: str, backend: str = "auto", precision: str = "fp32", graph: str = "auto") -> None:
    """What :class:`Predictor` checks before loading anything: the export's files (those of ``graph`` too) and
    its inference_config.json."""
    _check_export_files(model_dir, backend, precision)
    _read_inference_config(Path(model_dir, INFERENCE_CONFIG_FILE))
    if graph != "auto":
        check_graph(model_dir, backend_of_files(backend, precision), graph, precision)


def _check_export_files(model_dir: str, backend: str, precision: str) -> None:
    if backend not in ("auto", *BACKENDS):
        raise UserError(f"backend {backend!r} is not supported; choose auto or one of {', '.join(BACKENDS)}")
    check_model_dir(model_dir, backend_of_files(backend, precision), precision)


def serving_backend(model_dir: str) -> str:
    """The backend a service should run: onnxruntime where the export has its ONNX graph, else paddle.

    Paddle Inference holds Python's GIL for a whole forward pass, which stalls a service's event loop
    (accepting, parsing and tokenizing the next requests) for as long; onnxruntime releases it.
    """
    if Path(model_dir, ONNX_FILE).is_file():
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "paddle"
        return "onnxruntime"
    return "paddle"


def plan_forward_passes(lengths: Sequence[int], max_rows: int, pass_cost_tokens: float) -> list[list[int]]:
    """Indices of ``lengths`` grouped into forward passes of at most ``max_rows`` texts, in length order.

    Minimises the estimated cost, ``pass_cost_tokens`` per pass plus rows x longest length for the padded
    batch, exactly: in length order the best grouping is contiguous, so a dynamic programme over the
    sorted texts finds it (``best[j]``: the cheapest way to run the ``j`` shortest texts). A large
    ``pass_cost_tokens`` gives full passes of ``max_rows``; 0 gives one pass per distinct length.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    sorted_lengths = np.array([lengths[index] for index in order], dtype=np.float64)
    best = np.zeros(len(order) + 1)
    start_of_last = np.zeros(len(order) + 1, dtype=np.int64)
    for end in range(1, len(order) + 1):
        starts = np.arange(max(0, end - max_rows), end)
        costs = best[starts] + pass_cost_tokens + (end - starts) * sorted_lengths[end - 1]
        cheapest = int(np.argmin(costs))
        best[end], start_of_last[end] = costs[cheapest], starts[cheapest]
    passes, end = [], len(order)
    while end:
        passes.append(order[start_of_last[end] : end])
        end = int(start_of_last[end])
    return passes[::-1]


# ----------------------------------------------------------------------------------------------
# the predictor
# ----------------------------------------------------------------------------------------------
class Predictor:
    """Classify review texts with an exported model.

    Each forward pass runs on the engine (backend, graph, oneDNN setting) measured fastest on this CPU for a
    pass of its shape, among those the flags leave open (:mod:`.engines`: measured once per export and CPU,
    then kept); fixing ``backend``, ``graph`` and ``enable_mkldnn`` leaves one engine, run as asked.

    Args:
        model_dir: a directory written by ``tools/export_model.py``.
        backend: "auto" (measured), "paddle" (Paddle Inference) or "onnxruntime" (an export made with ``--onnx``).
        cpu_threads: threads for the math library; None uses every core.
        enable_mkldnn: None (measured), or oneDNN kernels on or off for Paddle Inference.
        precision: "fp32"; "int8" for the quantized graph of ``--quantize int8`` (onnxruntime); "bf16" on a CPU
            with bfloat16 instructions (Paddle Inference with oneDNN, where measured faster than fp32).
        batch_size: texts per forward pass at most.
        graph: "auto" (measured), "fused", "portable" or "packed"; ``self.graph`` says which run.
        pass_cost_tokens: padded graphs: what one more forward pass costs, in padded tokens; texts are
            grouped into passes that minimise the total (default ``PASS_COST_TOKENS``).
        record_timings: append a :class:`BatchTiming` per batch to ``self.timings``.
        remeasure: measure the engines again even if this export was measured on this CPU before.

    Example:
        >>> predictor = Predictor("output/amazon/inference", cpu_threads=2)
        >>> predictor.predict(["Works great.", "Broke after two days."])[0]["label"]
        '5 stars'
    """

    def __init__(
        self,
        model_dir: str,
        backend: str = "auto",
        cpu_threads: Optional[int] = None,
        enable_mkldnn: Optional[bool] = None,
        precision: str = "fp32",
        batch_size: int = 16,
        record_timings: bool = False,
        pass_cost_tokens: Optional[float] = None,
        graph: str = "auto",
        remeasure: bool = False,
    ):
        from paddlenlp_fastformer.tokenizer import FastformerTokenizer

        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        if cpu_threads is not None and not 1 <= cpu_threads <= MAX_THREADS:
            raise UserError(f"cpu_threads must be between 1 and {MAX_THREADS}, got {cpu_threads}")
        self.model_dir, self.precision = model_dir, precision
        _check_export_files(model_dir, backend, precision)
        config_path = Path(model_dir, INFERENCE_CONFIG_FILE)
        self.label_names, self.max_seq_len, vocab_size = _read_inference_config(config_path)
        threads = cpu_threads or os.cpu_count() or 1
        try:
            self.tokenizer = FastformerTokenizer.from_pretrained(model_dir)
            engines = candidate_engines(model_dir, precision, backend, graph, enable_mkldnn)

            def make_runner(engine: Engine):
                return create_runner(model_dir, engine.backend, threads, engine.onednn, engine.precision, engine.graph)

            self.engine_choice = choose_engines(model_dir, engines, threads, self.max_seq_len, len(self.tokenizer), make_runner, remeasure)
            self._runners = {engine: make_runner(engine) for engine in self.engine_choice.distinct}
        except UserError:
            raise
        # A damaged graph, weights, ONNX or tokenizer file: each library raises its own types for those.
        except Exception as error:  # noqa: BLE001
            raise UserError(f"{model_dir}: cannot be loaded ({type(error).__name__}: {one_line(error)[:300]})") from None
        if vocab_size is not None and len(self.tokenizer) != vocab_size:
            raise UserError(
                f"{Path(model_dir, 'vocab.txt')}: holds {len(self.tokenizer)} tokens but the exported model has "
                f"{vocab_size} ({config_path}); the vocabulary and the model must come from the same export"
            )
        logger.info("%s runs on %s (%s)", model_dir, self.engine_choice.describe(), self.engine_choice.reason)
        distinct = self.engine_choice.distinct
        self.backend = "/".join(dict.fromkeys(engine.backend for engine in distinct))
        self.graph = "/".join(dict.fromkeys(engine.graph for engine in distinct))
        self.batch_size = batch_size
        self.pass_cost_tokens = PASS_COST_TOKENS if pass_cost_tokens is None else pass_cost_tokens
        self.forward_passes = 0
        self.timings: Optional[list[BatchTiming]] = [] if record_timings else None

    def runner_for(self, rows: int, length: int) -> tuple:
        """The engine a forward pass of ``rows`` texts of up to ``length`` tokens runs on, and its runner."""
        engine = self.engine_choice.engine_for(rows, length)
        return engine, self._runners[engine]

    def _padded_inputs(self, token_ids: list[list[int]]) -> tuple:
        """input_ids and attention_mask [texts, longest] of texts padded to the longest."""
        padded = self.tokenizer.pad({"input_ids": token_ids}, padding=True, return_attention_mask=True, return_tensors="np")
        return padded["input_ids"].astype("int64"), padded["attention_mask"].astype("int64")

    def predict(self, texts: Sequence[str], max_lengths: Optional[Sequence[int]] = None) -> list[dict]:
        """The predicted label of each text, its probability, and the probability of every label.

        Texts are truncated at ``max_seq_len`` tokens, where training truncated, or earlier at the
        text's own ``max_lengths`` entry.

        Returns:
            One ``{"label": str, "score": float, "probabilities": {label name: float}, "truncated": bool}``
            per text, in the order of ``texts``; the probabilities are listed in class-id order
            (``self.label_names``); ``truncated`` says whether the text's end was cut off.

        Raises:
            UserError: a text is not a string or is empty (whitespace only).
        """
        started = time.perf_counter()
        token_ids, truncated = self.encode(texts, max_lengths)
        return self.predict_encoded(token_ids, truncated, tokenize_seconds=time.perf_counter() - started)

    def encode(self, texts: Sequence[str], max_lengths: Optional[Sequence[int]] = None) -> tuple[list, list]:
        """Token ids of each text, cut at ``max_seq_len`` (or its ``max_lengths`` entry), and whether it was cut.

        The first half of :meth:`predict`; the service runs it as requests arrive, off the inference thread,
        which then only pads and runs the model (:meth:`predict_encoded`).
        """
        check_texts(texts)
        if max_lengths is not None and (len(max_lengths) != len(texts) or any(type(n) is not int or n < 1 for n in max_lengths)):
            raise UserError(f"max_lengths must hold one positive integer per text ({len(texts)}), got {max_lengths!r}"[:300])
        if not texts:
            return [], []
        # One token more than kept tells whether a text was cut (the tokenizer adds no special tokens).
        token_ids = self.tokenizer.texts_to_ids(list(texts), max_length=self.max_seq_len + 1)
        limits = [min(limit, self.max_seq_len) for limit in max_lengths] if max_lengths else [self.max_seq_len] * len(texts)
        truncated = [len(ids) > limit for ids, limit in zip(token_ids, limits)]
        return [ids[:limit] for ids, limit in zip(token_ids, limits)], truncated

    def predict_encoded(self, token_ids: Sequence[list], truncated: Sequence[bool], tokenize_seconds: float = 0.0) -> list[dict]:
        """:meth:`predict` from :meth:`encode`'s output: where only packed graphs run, ``batch_size`` texts per forward
        pass taken in order of length; else texts grouped into forward passes by length (each pass runs on the
        engine measured fastest at its shape). Results come in the
        texts' own order.

        ``tokenize_seconds`` (the time :meth:`encode` took) is shared out to the batches' timings.
        """
        seconds_per_text = tokenize_seconds / max(len(token_ids), 1)
        results: list[Optional[dict]] = [None] * len(token_ids)
        if self.graph == "packed":  # no padding to save, yet length order: int8 then scales each pass as on padded graphs
            order = sorted(range(len(token_ids)), key=lambda index: len(token_ids[index]))
            passes = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        else:
            passes = plan_forward_passes([len(ids) for ids in token_ids], self.batch_size, self.pass_cost_tokens)
        for indices in passes:
            batch = self._predict_batch([token_ids[index] for index in indices], seconds_per_text * len(indices))
            for index, result in zip(indices, batch):
                results[index] = {**result, "truncated": truncated[index]}
        return results

    def _predict_batch(self, token_ids: list[list[int]], tokenize_seconds: float) -> list[dict]:
        started = time.perf_counter()
        self.forward_passes += 1
        engine, runner = self.runner_for(len(token_ids), max(map(len, token_ids)))
        inputs = packed_inputs(token_ids) if engine.graph == "packed" else self._padded_inputs(token_ids)
        preprocessed = time.perf_counter()
        probabilities = runner(*inputs)
        inferred = time.perf_counter()
        if not np.isfinite(probabilities).all():  # nothing non-finite is ever served
            raise UserError(f"{self.model_dir}: the model returned NaN or inf probabilities; its weights are damaged")
        if probabilities.shape[-1] != len(self.label_names):
            raise UserError(
                f"{self.model_dir}: the model predicts {probabilities.shape[-1]} classes but {INFERENCE_CONFIG_FILE} "
                f"names {len(self.label_names)}"
            )
        results = [
            {
                "label": self.label_names[class_id],
                "score": float(row[class_id]),
                "probabilities": dict(zip(self.label_names, row.tolist())),
            }
            for class_id, row in zip(probabilities.argmax(axis=-1).tolist(), probabilities)
        ]
        if self.timings is not None:
            self.timings.append(
                BatchTiming(
                    num_texts=len(token_ids),
                    num_tokens=sum(map(len, token_ids)),
                    preprocess=tokenize_seconds + preprocessed - started,
                    inference=inferred - preprocessed,
                    postprocess=time.perf_counter() - inferred,
                )
            )
        return results


def measure_export(model_dir: str, cpu_threads: Optional[int] = None) -> dict:
    """Measure the engines of every precision the export offers on this CPU (fp32; int8 where it holds the int8
    graphs; bf16 where the CPU has bfloat16 instructions) and keep the choices; returns each precision's choice."""
    precisions = ["fp32"] + ["int8"] * Path(model_dir, ONNX_INT8_FILE).is_file() + ["bf16"] * cpu_has_bf16()
    choices = {}
    for precision in precisions:
        choices[precision] = Predictor(model_dir, cpu_threads=cpu_threads, precision=precision, remeasure=True).engine_choice.describe()
    return choices


def texts_per_second(predictor: Predictor, texts: Sequence[str], per_call: Optional[int] = None) -> float:
    """Texts/s of ``predictor.predict`` on ``texts``, given ``per_call`` of them at a time in their order
    (by default all in one call, as ``tools/infer.py`` runs a file)."""
    per_call = per_call or len(texts)
    started = time.perf_counter()
    for start in range(0, len(texts), per_call):
        predictor.predict(texts[start : start + per_call])
    return len(texts) / (time.perf_counter() - started)


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
