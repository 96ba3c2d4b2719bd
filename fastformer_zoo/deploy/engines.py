"""Which engine runs an export fastest on this CPU: measured once per export, CPU and thread count, then kept.

An *engine* is what runs an export's forward pass: a backend (Paddle Inference or onnxruntime), one of the
export's graphs (fused, portable, packed), oneDNN on or off (Paddle Inference), and a precision. Which one is
fastest depends on the CPU (oneDNN and int8 gain most where AVX-512 VNNI is), on the model's sizes and on the
shape of the forward pass (docs/deployment.md has rankings that differ between two CPUs), so it is measured,
not ruled: every engine left open by the user's flags runs the same few shapes (rows x length), and each later
forward pass runs on the engine measured fastest at the nearest of those shapes. The seconds are kept as JSON
under the user's cache directory, keyed by the export's graphs, the CPU, the thread count and the runtimes'
versions; the weights' values do not change speed, so a retrained export of the same sizes reuses them.

A precision is never changed behind the user's back: fp32 measures fp32 engines only, int8 the int8 ones.
bf16, asked for on a CPU with bfloat16 instructions, runs at each shape where it measured faster than fp32
and fp32 elsewhere (bf16 is offered for speed; where it brings none, the exact engine runs and the log says so).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from paddlenlp_fastformer.cpu import cpu_instruction_sets, cpu_model_name, switched_off
from paddlenlp_fastformer.file_utils import cache_directory, write_text_atomically

from ..errors import UserError, one_line
from .export_format import INFERENCE_CONFIG_FILE
from .runners import BACKENDS, GRAPHS, PRECISIONS, check_graph, fused_kernels_load, graph_files, packed_inputs

__all__ = ["MEASURE_SWITCH", "Engine", "EngineChoice", "backend_of_files", "candidate_engines", "cpu_has_bf16", "choose_engines", "measure_engines", "tuning_shapes"]

logger = logging.getLogger("fastformer_zoo")

TUNING_ROWS = (1, 16, 64)  # one text (a service's request), a batch, a large batch
TUNING_LENGTHS = (32, 128, 512)  # a short review, a typical one, a long one (capped at the export's max_seq_len)
# Per engine and shape in the first pass, after one warm-up call: calls back to back until both counts are
# reached, their mean taken. Sustained speed, not the luckiest call: single calls of oneDNN
# engines vary more than onnxruntime's, and the least of a few favoured them by up to a fifth.
TIMED_CALLS, TIMED_SECONDS = 3, 0.2
# An engine whose first timed call is this many times the best time measured at a shape is not timed further
# there: the one call says enough, and it keeps the first measurement of an export to about a minute.
HOPELESS_FACTOR = 1.5
# The first pass times one engine after another, minutes apart, and a machine's speed drifts by more than the
# few percent that separate the best engines. So at each shape the engines within FINALIST_FACTOR of the fastest
# (at most FINALISTS) meet again, loaded side by side and taking turns in FINAL_ROUNDS rounds, their order
# rotated each round; the median turn decides. A turn is one untimed call and then calls for at least
# TURN_CALLS and TURN_SECONDS.
FINALIST_FACTOR, FINALISTS, FINAL_ROUNDS = 1.15, 3, 5
TURN_CALLS, TURN_SECONDS = 2, 0.05
# Where the engine that is best overall runs a shape within this factor of the fastest there, it runs that shape
# too: fewer engines in one process means fewer thread pools taking turns on the cores. Kept small: a default
# meant to be within a few percent of the fastest engine must not spend that margin on convenience.
SAME_ENGINE_TOLERANCE = 1.02
CACHE_FORMAT = 2  # 2: the seconds of close engines come from the side-by-side rounds
MAX_CACHE_BYTES = 1 << 20  # a measurement is a few kilobytes; a larger file is not one
# "0": auto takes the first engine the export offers (paddle's fused graph without oneDNN where it runs) without
# measuring: a start without the measurement's seconds, at the cost of perhaps a slower engine.
MEASURE_SWITCH = "PADDLENLP_FASTFORMER_MEASURE_ENGINES"
BF16_INSTRUCTIONS = ("avx512_bf16", "amx_bf16")
# Graphs by backend, in the order the engines are tried; a graph the export lacks is left out.
BACKEND_GRAPHS = {"paddle": ("fused", "portable", "packed"), "onnxruntime": ("packed", "portable")}


@dataclass(frozen=True)
class Engine:
    """One way to run an export: ``backend``, ``graph``, oneDNN on or off (paddle only), ``precision``."""

    backend: str
    graph: str
    onednn: bool = False
    precision: str = "fp32"

    @property
    def name(self) -> str:
        """e.g. "paddle fused oneDNN", "onnxruntime packed int8"."""
        return " ".join([self.backend, self.graph] + ["oneDNN"] * self.onednn + [self.precision] * (self.precision != "fp32"))


def _engines_of(model_dir: str, precision: str) -> list[Engine]:
    """Every engine of ``precision`` whose graph files the export holds (the fused graph only where its kernels load)."""
    engines = []
    for backend in BACKENDS:
        if precision == "int8" and backend != "onnxruntime" or precision == "bf16" and backend != "paddle":
            continue
        if backend == "onnxruntime" and not _onnxruntime_installed():
            continue
        for graph in BACKEND_GRAPHS[backend]:
            if not all(Path(model_dir, name).is_file() for name in graph_files(backend, graph, precision)):
                continue
            if graph == "fused" and not fused_kernels_load(required=False):
                continue
            # bf16 runs through oneDNN; Paddle Inference's own CPU kernels have no bfloat16 path.
            for onednn in (False, True) if backend == "paddle" and precision == "fp32" else (precision == "bf16",):
                engines.append(Engine(backend, graph, onednn, precision))
    return engines


def _onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX), which precision bf16 needs."""
    return bool(set(BF16_INSTRUCTIONS) & set(cpu_instruction_sets()))


def backend_of_files(backend: str, precision: str) -> str:
    """The backend whose files ``backend`` "auto" needs at least: onnxruntime's for int8, Paddle Inference's else."""
    if backend != "auto":
        return backend
    return "onnxruntime" if precision == "int8" else "paddle"


def candidate_engines(
    model_dir: str, precision: str = "fp32", backend: str = "auto", graph: str = "auto", enable_mkldnn: Optional[bool] = None
) -> list[Engine]:
    """The engines the export offers here at ``precision`` that agree with the flags the user fixed (``auto``/None:
    open); bf16 adds the fp32 engines it is compared with. Raises UserError naming the flag when none is left."""
    if backend not in ("auto", *BACKENDS):
        raise UserError(f"backend {backend!r} is not supported; choose auto or one of {', '.join(BACKENDS)}")
    if graph not in GRAPHS:
        raise UserError(f"graph {graph!r} is not offered; choose one of {', '.join(GRAPHS)}")
    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r} is not supported on this CPU build; choose one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and not cpu_has_bf16():
        raise UserError(f"precision 'bf16' needs a CPU with AVX512-BF16 or AMX; this one ({cpu_model_name()}) has neither; use fp32")
    if graph != "auto":  # a graph asked for by name: say why it cannot run, if it cannot
        check_graph(model_dir, backend_of_files(backend, precision), graph, precision)
    if precision == "bf16" and enable_mkldnn is False:
        raise UserError("precision 'bf16' runs through oneDNN; leave --enable_mkldnn out or set it True")
    engines = _engines_of(model_dir, precision) + (_engines_of(model_dir, "fp32") if precision == "bf16" else [])
    kept = [
        engine for engine in engines
        if backend in ("auto", engine.backend) and graph in ("auto", engine.graph)
        and (enable_mkldnn is None or engine.onednn == enable_mkldnn or engine.precision == "bf16")
    ]  # fmt: skip
    if not kept:
        offered = ", ".join(engine.name for engine in engines) or "none"
        raise UserError(
            f"{model_dir}: no engine runs precision {precision} with backend {backend}, graph {graph}"
            f"{'' if enable_mkldnn is None else f', oneDNN {enable_mkldnn}'} here; the export offers: {offered}"
        )
    return kept


def tuning_shapes(max_seq_len: int) -> list[tuple[int, int]]:
    """The (rows, length) shapes engines are measured on, lengths capped at what the export truncates to."""
    lengths = sorted({min(length, max_seq_len) for length in TUNING_LENGTHS})
    return [(rows, length) for rows in TUNING_ROWS for length in lengths]


@dataclass
class EngineChoice:
    """The engine each measured shape runs on, and how a forward pass of any shape finds its engine."""

    shapes: list  # [(rows, length)]
    engines: list  # the Engine of each shape
    reason: str  # one line for the log: measured (where kept) or the only engine left open

    @classmethod
    def only(cls, engine: Engine, reason: str) -> "EngineChoice":
        return cls([(1, 1)], [engine], reason)

    def engine_for(self, rows: int, length: int) -> Engine:
        """The engine of the measured shape nearest to ``rows`` x ``length`` (by ratio: 2 rows is nearer 1 than 16)."""
        def distance(shape):
            return abs(math.log(max(rows, 1) / shape[0])) + abs(math.log(max(length, 1) / shape[1]))

        return self.engines[min(range(len(self.shapes)), key=lambda index: distance(self.shapes[index]))]

    @property
    def distinct(self) -> list[Engine]:
        return list(dict.fromkeys(self.engines))

    def describe(self) -> str:
        """e.g. "onnxruntime packed (1x32..1x512, 16x32); paddle fused oneDNN (16x128..64x512)"."""
        if len(self.distinct) == 1:
            return self.distinct[0].name
        groups = {engine: [f"{rows}x{length}" for (rows, length), chosen in zip(self.shapes, self.engines) if chosen == engine]
                  for engine in self.distinct}  # fmt: skip
        return "; ".join(f"{engine.name} ({', '.join(shapes)})" for engine, shapes in groups.items())


def choose_engines(
    model_dir: str,
    engines: Sequence[Engine],
    cpu_threads: int,
    max_seq_len: int,
    vocab_size: int,
    make_runner: Callable[[Engine], Callable],
    remeasure: bool = False,
) -> EngineChoice:
    """The fastest of ``engines`` at each tuning shape: from the cache, else measured now (and kept)."""
    if len(engines) == 1:
        return EngineChoice.only(engines[0], "the only engine the flags leave open")
    if switched_off(MEASURE_SWITCH) and not remeasure:
        return EngineChoice.only(engines[0], f"the first engine the export offers; not measured, as {MEASURE_SWITCH}=0")
    shapes = tuning_shapes(max_seq_len)
    path = _cache_file(model_dir, engines, cpu_threads, shapes)
    seconds = None if remeasure else _read_cache(path, engines, shapes)
    if seconds is None:
        logger.info("measuring %d engines on %d shapes to run %s fastest on this CPU (%s, %d thread(s)); kept in %s",
                    len(engines), len(shapes), model_dir, _cpu_summary(), cpu_threads, path)  # fmt: skip
        seconds = measure_engines(engines, shapes, make_runner, vocab_size)
        failed = [name for name, values in seconds.items() if None in values]
        if failed:  # a damaged file or a passing fault: measured again next time rather than ruled out for good
            logger.warning("not keeping the measurement: %s failed (the warnings above say why)", ", ".join(failed))
        else:
            _write_cache(path, model_dir, engines, shapes, seconds, cpu_threads)
        where = "measured now"
    else:
        where = f"measured earlier on this CPU, kept in {path}"
    chosen = _fastest_with_few_engines(engines, seconds, len(shapes), model_dir, shapes)
    choice = EngineChoice(shapes, chosen, where)
    if any(engine.precision == "bf16" for engine in engines) and not any(engine.precision == "bf16" for engine in chosen):
        logger.warning("bf16 measured no faster than fp32 at any shape on this CPU: the fp32 engines run (exact results)")
    return choice


def _seconds_per_call(runner: Callable, inputs: tuple, least_calls: int, least_seconds: float, hopeless_after: float = math.inf) -> float:
    """Seconds per call of ``runner`` on ``inputs``: one untimed call (oneDNN compiles its kernels per shape there;
    it also takes another engine's idle spinning threads and cold caches), then calls back to back for at least
    ``least_calls`` calls and ``least_seconds``, their mean; only the first when it alone took ``hopeless_after``."""
    runner(*inputs)
    calls, started = 0, time.perf_counter()
    while True:
        runner(*inputs)
        calls, elapsed = calls + 1, time.perf_counter() - started
        if calls == 1 and elapsed > hopeless_after or calls >= least_calls and elapsed >= least_seconds:
            return elapsed / calls


def _fastest_with_few_engines(engines, seconds: dict, count: int, model_dir: str, shapes) -> list:
    """The engine of each shape: the fastest there, or the engine best over all shapes where it is within
    ``SAME_ENGINE_TOLERANCE`` of the fastest (best overall: the least of its worst ratio to each shape's fastest)."""
    fastest = []
    for index in range(count):
        timed = {engine: seconds[engine.name][index] for engine in engines if seconds[engine.name][index] is not None}
        if not timed:
            raise UserError(f"{model_dir}: no engine ran at {shapes[index][0]}x{shapes[index][1]} on this machine (the warnings above "
                            "say why); export again or fix the runtime")  # fmt: skip
        fastest.append(timed)
    complete = [engine for engine in engines if None not in seconds[engine.name]]
    overall = min(complete, key=lambda engine: max(seconds[engine.name][i] / min(fastest[i].values()) for i in range(count)), default=None)
    chosen = []
    for timed in fastest:
        best = min(timed, key=timed.get)
        chosen.append(overall if overall in timed and timed[overall] <= SAME_ENGINE_TOLERANCE * timed[best] else best)
    return chosen


def measure_engines(engines: Sequence[Engine], shapes: Sequence[tuple], make_runner: Callable, vocab_size: int) -> dict:
    """Seconds per forward pass of each engine at each shape; None where it failed.

    A first pass loads one engine at a time (an export's weights once in memory, not once per engine) and times it
    at every shape (:func:`_seconds_per_call`); then the close engines of each shape meet in side-by-side rounds
    (:func:`_final_rounds`). Random token ids stand for text, as speed does not depend on their values.
    """
    rng = np.random.default_rng(0)
    token_ids = [rng.integers(1, max(vocab_size, 2), size=shape).astype("int64") for shape in shapes]
    best = [math.inf] * len(shapes)
    seconds = {}
    for engine in engines:
        seconds[engine.name] = [None] * len(shapes)
        runner = _runner_or_none(make_runner, engine)
        if runner is None:
            continue
        for index, shape in enumerate(shapes):
            try:
                seconds[engine.name][index] = _seconds_per_call(
                    runner, _inputs_of(engine, token_ids[index]), TIMED_CALLS, TIMED_SECONDS, HOPELESS_FACTOR * best[index]
                )
            except Exception as error:  # noqa: BLE001  each runtime raises its own types
                logger.warning("engine %s failed at %dx%d (%s); left out there", engine.name, *shape, one_line(error)[:200])
                continue
            best[index] = min(best[index], seconds[engine.name][index])
        del runner
    _final_rounds(engines, shapes, make_runner, token_ids, seconds)
    return seconds


def _runner_or_none(make_runner: Callable, engine: Engine):
    try:
        return make_runner(engine)
    except Exception as error:  # noqa: BLE001  each runtime raises its own types for an engine it cannot build
        logger.warning("engine %s cannot run here (%s); left out", engine.name, one_line(error)[:200])
        return None


def _inputs_of(engine: Engine, ids: np.ndarray) -> tuple:
    return packed_inputs(list(ids)) if engine.graph == "packed" else (ids, np.ones_like(ids))


def _finalists(engines: Sequence[Engine], seconds: dict, index: int) -> list[Engine]:
    """The engines within ``FINALIST_FACTOR`` of the fastest at shape ``index`` in the first pass, fastest first."""
    timed = sorted((engine for engine in engines if seconds[engine.name][index] is not None), key=lambda engine: seconds[engine.name][index])
    if not timed:
        return []
    fastest = seconds[timed[0].name][index]
    return [engine for engine in timed if seconds[engine.name][index] <= FINALIST_FACTOR * fastest][:FINALISTS]


def _final_rounds(engines: Sequence[Engine], shapes: Sequence[tuple], make_runner: Callable, token_ids: list, seconds: dict) -> None:
    """Replace, at each shape with more than one finalist, the finalists' first-pass seconds by the median of
    ``FINAL_ROUNDS`` turns taken side by side (order rotated each round); a failure keeps the first pass's."""
    finalists = {index: close for index in range(len(shapes)) if len(close := _finalists(engines, seconds, index)) > 1}
    runners = {}
    for engine in dict.fromkeys(engine for close in finalists.values() for engine in close):
        runner = _runner_or_none(make_runner, engine)
        if runner is not None:
            runners[engine] = runner
    for index, close in finalists.items():
        close = [engine for engine in close if engine in runners]
        if len(close) < 2:
            continue
        feeds = {engine: _inputs_of(engine, token_ids[index]) for engine in close}
        turns = {engine: [] for engine in close}
        try:
            for round_index in range(FINAL_ROUNDS):
                for engine in close[round_index % len(close):] + close[: round_index % len(close)]:
                    turns[engine].append(_seconds_per_call(runners[engine], feeds[engine], TURN_CALLS, TURN_SECONDS))
        except Exception as error:  # noqa: BLE001
            logger.warning("side-by-side rounds failed at %dx%d (%s); the first pass decides there", *shapes[index], one_line(error)[:200])
            continue
        for engine, values in turns.items():
            seconds[engine.name][index] = statistics.median(values)
    runners.clear()


# ----------------------------------------------------------------------------------------------
# the cache
# ----------------------------------------------------------------------------------------------
def _cpu_summary() -> str:
    flags = [flag for flag in cpu_instruction_sets() if flag != "sse4_2"]
    return f"{cpu_model_name()}; {' '.join(flags) or 'no AVX'}"


def _export_signature(model_dir: str) -> str:
    """What the export's speed depends on: its inference config, graph structures and file sizes (not weight values)."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).iterdir()):
        if not path.is_file():
            continue
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        if path.name == INFERENCE_CONFIG_FILE or path.suffix == ".json":  # small: the PIR graphs and the settings
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _runtime_versions() -> dict:
    import paddle

    versions = {"paddle": paddle.__version__}
    if _onnxruntime_installed():
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return versions


def _cache_file(model_dir: str, engines: Sequence[Engine], cpu_threads: int, shapes: Sequence[tuple]) -> Path:
    key = {
        "export": _export_signature(model_dir),
        "cpu": [cpu_model_name(), cpu_instruction_sets(), os.cpu_count(), os.environ.get("MKL_DEBUG_CPU_TYPE")],
        "threads": cpu_threads,
        "engines": [engine.name for engine in engines],
        "shapes": [list(shape) for shape in shapes],
        "versions": _runtime_versions(),
        "format": CACHE_FORMAT,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_directory() / "engines" / f"{digest}.json"


def _read_cache(path: Path, engines: Sequence[Engine], shapes: Sequence[tuple]) -> Optional[dict]:
    """The kept seconds per engine name, or None when there are none (or they are damaged: measured again)."""
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            raise ValueError(f"{path.stat().st_size} bytes, more than a measurement ever takes")
        seconds = json.loads(path.read_text(encoding="utf-8"))["seconds"]
        for engine in engines:
            values = seconds[engine.name]
            if len(values) != len(shapes) or not all(isinstance(value, float) and math.isfinite(value) and value > 0 for value in values):
                raise ValueError(f"bad seconds for {engine.name}")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        logger.warning("%s: damaged engine measurements (%s); measuring again", path, one_line(error)[:200])
        return None
    return seconds


def _write_cache(path: Path, model_dir: str, engines, shapes, seconds: dict, cpu_threads: int) -> None:
    record = {
        "format": CACHE_FORMAT,
        "export": str(Path(model_dir).resolve()),
        "cpu": _cpu_summary(),
        "threads": cpu_threads,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "shapes": [list(shape) for shape in shapes],
        "seconds": {engine.name: seconds[engine.name] for engine in engines},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps(record, indent=1) + "\n")
    except OSError as error:  # a read-only home: the choice still holds for this process
        logger.warning("cannot keep the engine measurements in %s (%s); they hold for this run only", path, one_line(error))
