"""What ``tools/infer.py`` does once its flags are read: predict, print, score labelled data, report speed; with a
text writer's export, write a summary of each text (and score it by ROUGE against references)."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from paddlenlp_fastformer.file_utils import write_text_atomically

from ..data.labels import dataset_labels
from ..data.prepare import dataset_files_beside
from ..data.readers import iter_reviews, read_split
from ..directories import check_output_files
from ..errors import UserError
from ..scoring import classification_metrics, rouge_scores
from .export_format import INFERENCE_CONFIG_FILE
from .predictor import TIMED_STAGES, Predictor, summarize_timings

__all__ = ["InferenceSettings", "run_inference", "read_labelled_texts"]

logger = logging.getLogger("fastformer_zoo")
# Where a prepared data directory (tools/prepare_data.py) keeps the split that is predicted.
DEFAULT_SPLIT_FILE = "test.jsonl"


@dataclass
class InferenceSettings:
    """How to predict: the export, backend and batching, and whether to time it (TIPC's inference flags)."""

    model_dir: str
    backend: str = "auto"  # auto, graph auto and enable_mkldnn None: the engine measured fastest here (engines.py)
    graph: str = "auto"
    cpu_threads: Optional[int] = None
    enable_mkldnn: Optional[bool] = None
    precision: str = "fp32"
    batch_size: int = 16
    use_gpu: bool = False
    use_tensorrt: bool = False
    benchmark: bool = False
    save_log_path: Optional[str] = None
    num_beams: int = 1  # a text writer's export: beam search with this many beams (1: greedy)
    remeasure: bool = False  # measure the engines again instead of using what was kept


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
    _check_outputs(settings, data_path)
    if _export_task(settings.model_dir) == "seq2seq":
        _write_summaries(settings, texts, data_path, emit)
        return
    if settings.num_beams != 1:
        raise UserError(f"--num_beams {settings.num_beams}: beam search is for a text writer's export; {settings.model_dir} holds a classifier")
    predictor = Predictor(
        settings.model_dir,
        backend=settings.backend,
        graph=settings.graph,
        cpu_threads=settings.cpu_threads,
        enable_mkldnn=settings.enable_mkldnn,
        precision=settings.precision,
        batch_size=settings.batch_size,
        record_timings=settings.benchmark,
        remeasure=settings.remeasure,
    )
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
        report = _benchmark_report(summarize_timings(predictor.timings), settings, predictor.engine_choice.describe())
        emit(report)
        if settings.save_log_path:
            write_text_atomically(settings.save_log_path, report + "\n")


def _check_outputs(settings: InferenceSettings, data_path: Optional[str]) -> None:
    """Refuse, before any work, a --save_log_path that is a directory or would write over what is read: a file
    of the export, the data (a whole directory given as --data_dir, or a file and its folder's label names)."""
    read = [("--model_dir", settings.model_dir), ("--data_dir", data_path)]
    if data_path and not os.path.isdir(data_path):
        read += [("the dataset file", path) for path in dataset_files_beside(data_path)]
    check_output_files({"--save_log_path": settings.save_log_path}, read)


def _benchmark_report(summary: dict, settings: InferenceSettings, engines: str) -> str:
    return "\n".join(
        [
            f"benchmark: {engines}; {settings.cpu_threads} CPU thread(s), precision {settings.precision}, batch size {settings.batch_size}",
            f"data: {summary['texts']} texts, {summary['tokens']} tokens, {summary['batches']} batches",
            *(f"{stage}_time(ms/batch): {summary[f'{stage}_ms_per_batch']:.3f}" for stage in TIMED_STAGES),
            f"throughput: {summary['texts_per_s']:.1f} texts/s, {summary['tokens_per_s']:.0f} tokens/s",
        ]
    )


def _export_task(model_dir: str) -> str:
    """``seq2seq`` for a text writer's export, else ``classification`` (the predictor checks the rest)."""
    try:
        with open(os.path.join(model_dir, INFERENCE_CONFIG_FILE), encoding="utf-8") as handle:
            task = json.load(handle).get("task", "classification")
    except (OSError, ValueError, AttributeError):
        return "classification"  # a missing or damaged export: the classifier's checks name what is wrong
    return task


def _write_summaries(settings: InferenceSettings, texts: Optional[Sequence[str]], data_path: Optional[str], emit) -> None:
    """A text writer's export: one JSON line per text with its summary, then ROUGE if the data has references
    (a file of tools/prepare_pairs.py, or a folder of them standing for its test.jsonl)."""
    from ..data.pairs import read_pairs
    from .generation import GenerationPredictor

    offered = {"backend": ("auto", "paddle"), "precision": ("fp32",), "enable_mkldnn": (None, False), "graph": ("auto",),
               "benchmark": (False,), "save_log_path": (None,), "remeasure": (False,)}  # fmt: skip
    for flag, values in offered.items():
        if getattr(settings, flag) not in values:
            raise UserError(f"--{flag} {getattr(settings, flag)}: not offered for a text writer's export (Paddle Inference, fp32, "
                            "standard operators, no benchmark report); leave it out")  # fmt: skip
    predictor = GenerationPredictor(settings.model_dir, settings.cpu_threads, settings.batch_size)
    references = None
    if texts is None:
        path = os.path.join(data_path, DEFAULT_SPLIT_FILE) if os.path.isdir(data_path) else data_path
        pairs = read_pairs(path, "data file")
        texts, references = [pair["text"] for pair in pairs], [pair["summary"] for pair in pairs]
    logger.info("writing summaries with Paddle Inference, %s", f"beam search of {settings.num_beams}" if settings.num_beams > 1 else "greedy")
    summaries = predictor.generate(texts, settings.num_beams)
    for text, summary in zip(texts, summaries):
        emit(json.dumps({"text": text, "summary": summary}, ensure_ascii=False))
    if references is not None:
        scores = rouge_scores(summaries, references)
        emit(" ".join(f"{name}: {value:.4f}" for name, value in scores.items()) + f"  ({len(references)} texts)")


def read_labelled_texts(path: str, label_names: Sequence[str]) -> tuple[list[str], list[int]]:
    """Texts and class ids (in the order of ``label_names``, the model's) of a data file training reads.

    A prepared split (``{"text", "label": class id}`` JSON lines in a folder tools/prepare_data.py wrote,
    its ids translated by the names of the folder's label.txt) or a raw file (JSON lines, CSV, TSV with
    the default fields; gzip or plain; unusable rows skipped as in training; a label the model does not
    know is an error naming its line). The folder tells the two apart: ``{"text", "label": 3}``
    outside a dataset folder is raw data whose label is named "3". A directory stands for its
    prepared ``test.jsonl``.
    """
    if Path(path).is_dir():
        path = str(Path(path) / DEFAULT_SPLIT_FILE)
    if not Path(path).is_file():
        raise UserError("file not found; expected a prepared split or a raw labelled text file", path)
    examples = None
    if dataset_labels(Path(path).parent) is not None:
        try:
            examples = read_split(path, label_names, "data file")
        except UserError as error:
            # A file of a dataset folder that fails on its first line is raw data kept there (a CSV, an input
            # file); a later failure is a damaged prepared split, and its own error is the useful one.
            if error.line != 1:
                raise
    if examples is None:
        class_ids = {name: index for index, name in enumerate(label_names)}
        raw = iter_reviews(path, labels=label_names, labels_from=f"the model's labels ({INFERENCE_CONFIG_FILE})")
        examples = [{"text": example["text"], "label": class_ids[example["label"]]} for example in raw]
    if not examples:
        raise UserError("holds no texts to predict", path)
    return [example["text"] for example in examples], [example["label"] for example in examples]
