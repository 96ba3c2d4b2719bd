"""What ``tools/infer.py`` does once its flags are read: predict, print, score labelled data, report speed."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ...file_utils import write_text_atomically
from ..engine.metrics import classification_metrics
from ..errors import UserError
from .predictor import TIMED_STAGES, Predictor, read_labelled_texts, summarize_timings

__all__ = ["InferenceSettings", "run_inference"]

logger = logging.getLogger("paddlenlp_fastformer")


@dataclass
class InferenceSettings:
    """How to predict: the export, backend and batching, and whether to time it (TIPC's inference flags)."""

    model_dir: str
    backend: str = "paddle"
    graph: str = "auto"  # paddle backend: the fused graph where it can run, else the portable one
    cpu_threads: Optional[int] = None
    enable_mkldnn: bool = False
    precision: str = "fp32"
    batch_size: int = 16
    use_gpu: bool = False
    use_tensorrt: bool = False
    benchmark: bool = False
    save_log_path: Optional[str] = None


def run_inference(
    settings: InferenceSettings,
    texts: Optional[Sequence[str]] = None,
    data_path: Optional[str] = None,
    emit: Callable[[str], None] = print,
) -> None:
    """Emit one JSON line per text (``texts``, or those of ``data_path``), then accuracy and macro-F1 if
    the data is labelled, then the benchmark report if asked."""
    for flag in ("use_gpu", "use_tensorrt"):
        if getattr(settings, flag):
            raise UserError(f"--{flag} True is not supported on this CPU build; use --{flag} False")
    if settings.save_log_path and os.path.isdir(settings.save_log_path):
        raise UserError(f"--save_log_path {settings.save_log_path} is a directory; expected a file path")
    predictor = Predictor(
        settings.model_dir,
        backend=settings.backend,
        graph=settings.graph,
        cpu_threads=settings.cpu_threads,
        enable_mkldnn=settings.enable_mkldnn,
        precision=settings.precision,
        batch_size=settings.batch_size,
        record_timings=settings.benchmark,
    )
    logger.info("predicting with %s, %s graph", settings.backend, predictor.graph)
    labels = None
    if texts is None:
        texts, labels = read_labelled_texts(data_path, predictor.label_names)
    results = predictor.predict(texts)
    for text, result in zip(texts, results):
        rounded = {"score": round(result["score"], 6), "probabilities": {k: round(p, 6) for k, p in result["probabilities"].items()}}
        emit(json.dumps({"text": text, **result, **rounded}, ensure_ascii=False))
    if labels is not None:
        names = predictor.label_names
        predictions = [names.index(result["label"]) for result in results]
        metrics = classification_metrics(labels, predictions, len(names), names)
        emit(f"accuracy: {metrics['accuracy']:.4f}  macro-F1: {metrics['macro_f1']:.4f}  ({len(labels)} texts)")
    if settings.benchmark:
        report = _benchmark_report(summarize_timings(predictor.timings), settings, predictor.graph)
        emit(report)
        if settings.save_log_path:
            write_text_atomically(settings.save_log_path, report + "\n")


def _benchmark_report(summary: dict, settings: InferenceSettings, graph: str) -> str:
    onednn = "on" if settings.enable_mkldnn and settings.backend == "paddle" else "off"
    return "\n".join(
        [
            f"benchmark: backend {settings.backend} ({graph} graph), oneDNN {onednn}, {settings.cpu_threads} CPU thread(s), precision "
            f"{settings.precision}, batch size {settings.batch_size}",
            f"data: {summary['texts']} texts, {summary['tokens']} tokens, {summary['batches']} batches",
            *(f"{stage}_time(ms/batch): {summary[f'{stage}_ms_per_batch']:.3f}" for stage in TIMED_STAGES),
            f"throughput: {summary['texts_per_s']:.1f} texts/s, {summary['tokens_per_s']:.0f} tokens/s",
        ]
    )
