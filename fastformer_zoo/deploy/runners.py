"""The engines that run an export's forward pass: Paddle Inference (oneDNN on or off, fp32 or bf16) and onnxruntime
(fp32 or int8), on one of the export's graphs.

A runner is a callable ``(input_ids, attention_mask or segment_ids) -> probabilities``, numpy in and out.
:func:`create_runner` builds one; :mod:`.engines` measures which is fastest; :mod:`.predictor` feeds them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from .export_format import (
    FUSED_MODEL_FILES,
    INFERENCE_CONFIG_FILE,
    INPUT_NAMES,
    MODEL_FILES,
    ONNX_FILE,
    ONNX_INT8_FILE,
    PACKED_INPUT_NAMES,
    PACKED_MODEL_FILES,
    PACKED_ONNX_FILE,
    PACKED_ONNX_INT8_FILE,
    TOKENIZER_FILES,
)  # fmt: skip

__all__ = ["BACKENDS", "GRAPHS", "PRECISIONS", "check_graph", "check_model_dir", "create_runner", "fused_kernels_load", "graph_files", "packed_inputs"]

BACKENDS = ("paddle", "onnxruntime")
GRAPHS = ("auto", "fused", "portable", "packed")  # which exported graph runs (see choose_graph)
# int8: the dynamically quantized ONNX graph, on onnxruntime; bf16: Paddle Inference's oneDNN bfloat16 mode,
# where the CPU has bfloat16 instructions.
PRECISIONS = ("fp32", "int8", "bf16")
# oneDNN keeps compiled kernels per input shape; batches of varying length would grow that cache
# without bound, so keep the most recent shapes only (Paddle's advice for variable-shape inputs).
ONEDNN_CACHE_CAPACITY = 32
# onnxruntime's graph optimisations that make an export slower: SkipLayerNormFusion folds the residual sum and the
# bias into the layer norm, and its CPU kernel ran the int8 graph 1.25x slower than the separate operators
# (docs/deployment.md has the figures); the float32 graphs are unchanged by it.
ONNXRUNTIME_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


class _PaddleInferenceRunner:
    """A static graph on Paddle Inference (CPU), oneDNN on or off, fp32 or (through oneDNN) bf16; the fused graph
    needs the kernels' library loaded (:func:`fused_kernels_load`) before the predictor is created."""

    def __init__(self, model_dir: str, cpu_threads: int, enable_mkldnn: bool, graph: str = "portable", bfloat16: bool = False):
        from paddle import inference

        self.graph = graph
        files = graph_files("paddle", graph)
        config = inference.Config(*(os.path.join(model_dir, name) for name in files))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cpu_threads)
        if enable_mkldnn or bfloat16:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(ONEDNN_CACHE_CAPACITY)
            if bfloat16:
                config.enable_mkldnn_bfloat16()
        else:
            config.disable_mkldnn()
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.inputs = [self.predictor.get_input_handle(name) for name in _input_names(graph)]
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, input_ids: np.ndarray, second_input: np.ndarray) -> np.ndarray:
        for handle, array in zip(self.inputs, (input_ids, second_input)):
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        self.predictor.run()
        return self.output.copy_to_cpu()


class _OnnxRuntimeRunner:
    """``inference.onnx`` (or its int8 twin, or the packed graph's) on onnxruntime's CPU execution provider."""

    def __init__(self, model_dir: str, cpu_threads: int, model_file: str = ONNX_FILE, graph: str = "portable"):
        import onnxruntime

        self.graph, self.input_names = graph, _input_names(graph)

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.inter_op_num_threads = 1  # one request at a time: parallelism inside operators only
        # onnxruntime's worker threads spin between operators (its default): small forward passes, as a
        # service's micro-batches make, ran 1.3x faster than with spinning off (docs/deployment.md).
        options.log_severity_level = 3  # errors only: not a warning per unused constant paddle2onnx leaves
        self.session = onnxruntime.InferenceSession(
            os.path.join(model_dir, model_file), options, providers=["CPUExecutionProvider"],
            disabled_optimizers=list(ONNXRUNTIME_DISABLED_OPTIMIZERS),
        )  # fmt: skip

    def __call__(self, input_ids: np.ndarray, second_input: np.ndarray) -> np.ndarray:
        return self.session.run(None, dict(zip(self.input_names, (input_ids, second_input))))[0]


def _input_names(graph: str) -> tuple:
    """A graph's inputs: (input_ids, attention_mask) [batch, length], or for the packed one (input_ids, segment_ids) [1, T]."""
    return PACKED_INPUT_NAMES if graph == "packed" else INPUT_NAMES


def check_model_dir(model_dir: str, backend: str, precision: str = "fp32") -> None:
    if backend not in BACKENDS:
        raise UserError(f"backend {backend!r} is not supported; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r} is not supported on this CPU build; choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and backend != "onnxruntime":
        raise UserError("precision 'int8' runs on onnxruntime; use --backend onnxruntime (export with --quantize int8)")
    if precision == "bf16" and backend != "paddle":
        raise UserError("precision 'bf16' runs on Paddle Inference (oneDNN); use --backend paddle")
    path = Path(model_dir)
    if not path.is_dir():
        raise UserError(f"model directory {model_dir!r} not found; expected the output of tools/export_model.py")
    required = graph_files(backend, "portable", precision) + TOKENIZER_FILES + (INFERENCE_CONFIG_FILE,)
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        hint = " (export with --onnx)" if ONNX_FILE in missing else " (export with --quantize int8)" if ONNX_INT8_FILE in missing else ""
        raise UserError(
            f"model directory {model_dir!r} is incomplete: missing {', '.join(missing)}{hint}; "
            "expected the output of tools/export_model.py"
        )


def create_runner(
    model_dir: str, backend: str = "paddle", cpu_threads: int = 1, enable_mkldnn: bool = False, precision: str = "fp32",
    graph: str = "portable",
):  # fmt: skip
    """A callable ``(input_ids, attention_mask or segment_ids) -> probabilities`` running ``graph`` on ``backend``
    (numpy in and out); :mod:`.engines` decides which engine to ask for.

    ``enable_mkldnn`` applies to the paddle backend (bf16 implies it); onnxruntime's pip build has no oneDNN provider.
    """
    check_model_dir(model_dir, backend, precision)
    check_graph(model_dir, backend, graph, precision)
    if backend == "paddle":
        return _PaddleInferenceRunner(model_dir, cpu_threads, enable_mkldnn, graph, bfloat16=precision == "bf16")
    return _OnnxRuntimeRunner(model_dir, cpu_threads, graph_files(backend, graph, precision)[0], graph)


def check_graph(model_dir: str, backend: str, graph: str, precision: str = "fp32") -> None:
    """Refuse a graph the export lacks, or one ``backend`` cannot run here (the fused graph where its kernels do
    not load), naming what to do instead."""
    if graph not in GRAPHS or graph == "auto":
        raise UserError(f"graph {graph!r} is not offered; choose one of {', '.join(name for name in GRAPHS if name != 'auto')}")
    if graph == "fused" and precision == "int8":
        raise UserError("precision 'int8' runs the portable or packed graph on onnxruntime; the fused graph has no int8 form; "
                        "use --graph auto, portable or packed")  # fmt: skip
    if graph == "fused" and backend != "paddle":
        raise UserError("the fused graph runs on Paddle Inference only; use --backend paddle, or graph auto, packed or portable")
    files = graph_files(backend, graph, precision)
    if not all(Path(model_dir, name).is_file() for name in files):
        hints = {
            "fused": "export where the fused kernels build",
            "packed": "export with this version (adding --onnx for onnxruntime, --quantize int8 for int8); "
                      "models with softmax attention have none",
        }  # fmt: skip
        raise UserError(f"{model_dir}: holds no {graph} graph ({files[0]}); {hints.get(graph, 'export again')}, or run another graph")
    if graph == "fused":
        fused_kernels_load(required=True)


def graph_files(backend: str, graph: str, precision: str = "fp32") -> tuple:
    """The files of one graph of an export, on ``backend``, in ``precision``."""
    if backend == "paddle":
        return {"fused": FUSED_MODEL_FILES, "packed": PACKED_MODEL_FILES}.get(graph, MODEL_FILES)
    if graph == "packed":
        return (PACKED_ONNX_INT8_FILE,) if precision == "int8" else (PACKED_ONNX_FILE,)
    return (ONNX_INT8_FILE,) if precision == "int8" else (ONNX_FILE,)


def fused_kernels_load(required: bool) -> bool:
    from paddlenlp_fastformer.kernels import library

    if library.load() is None:  # it logged why
        if required:
            raise UserError("the fused kernels cannot be built on this machine (the log says why); run the portable graph")
        return False
    return True


def packed_inputs(token_ids: list[list[int]]) -> tuple:
    """input_ids and segment_ids [1, T] of texts packed back to back."""
    lengths = [len(ids) for ids in token_ids]
    if min(lengths) < 1:  # a text without tokens has no place in a pack (encode never makes one: an unknown character is [UNK])
        raise UserError(f"text {lengths.index(0) + 1} of a packed pass has no tokens; expected at least one")
    input_ids = np.fromiter((token for ids in token_ids for token in ids), dtype=np.int64, count=sum(lengths))
    return input_ids[None], np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)[None]
