"""The rounds over all cases of a run, and the summary rows (one per model, mode, batch and length).

The method is described in :mod:`benchmarks.speed`; this module carries it out.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

from .harness import CaseRequest, ForkServer, wait_policy_for
from .models import (
    BASELINE_MODEL,
    MODELS,
    MODES,
    TORCH_TWIN,
    Sizes,
    attention_matrix_mib,
    batch_for_length,
    dygraph_reference,
    flops_per_token,
)

__all__ = ["Settings", "run_benchmark", "summarise"]

Log = Callable[[str], None]
FRAMEWORKS = ("paddle", "torch")
_NAME_WIDTH = max(len(name) for name in MODELS)


@dataclass(frozen=True)
class Settings:
    """Everything that decides what a run measures and how."""

    models: Tuple[str, ...]
    lengths: Tuple[int, ...]
    modes: Tuple[str, ...] = MODES
    # An explicit batch grid (every batch size at every length); None: the token budget decides.
    batch_sizes: Optional[Tuple[int, ...]] = None
    tokens_per_step: int = 2048
    sizes: Sizes = Sizes()
    threads: int = 0  # 0: every core this process may run on
    repeats: int = 2  # rounds over all cases; a case's figure is the median over them
    warmup: int = 3  # untimed steps before the timed ones, in every case
    steps: int = 1  # timed steps per case and round
    least_seconds: float = 0.0  # ...or more steps, until they took this long: short steps are noisy one by one
    max_seconds_per_case: float = 30.0
    max_memory_mib: float = 6144.0  # budget of a softmax case's estimated N^2 attention matrices
    matmul_size: int = 2048
    omp_wait_policy: str = "auto"

    def shapes(self) -> List[Tuple[int, int]]:
        """(batch, length) in measuring order: lengths ascending (within each batch size)."""
        if self.batch_sizes is None:
            return [(batch_for_length(length, self.tokens_per_step), length) for length in self.lengths]
        return [(batch, length) for batch in self.batch_sizes for length in self.lengths]

    def frameworks(self) -> List[str]:
        return [framework for framework in FRAMEWORKS if any(MODELS[m].framework == framework for m in self.models)]


@dataclass
class Case:
    model: str
    mode: str
    batch: int
    length: int
    status: str = "ok"
    seconds: List[float] = field(default_factory=list)
    peaks: List[float] = field(default_factory=list)
    walls: List[float] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    probabilities: object = None  # class probabilities of the first run (classifiers, inference)

    @property
    def key(self) -> tuple:
        return (self.model, self.mode, self.batch, self.length)

    def tokens_per_s(self) -> Optional[float]:
        return self.batch * self.length / statistics.median(self.seconds) if self.seconds else None

    def label(self) -> str:
        """The case in a progress line."""
        return f"  {self.model:{_NAME_WIDTH}s} {self.mode:5s} B={self.batch:<4d} N={self.length:<6d}"


# ----------------------------------------------------------------------------------------------
# set-up: servers, the export the engines run
# ----------------------------------------------------------------------------------------------
def _start_servers(settings: Settings, servers: Dict[str, ForkServer], log: Log) -> Tuple[Settings, dict]:
    """Start one fork server per framework; leave out torch models if torch does not import."""
    environment: Dict[str, object] = {}
    for framework in settings.frameworks():
        server = ForkServer(framework, settings.omp_wait_policy)
        info = server.run("probe", {"framework": framework}, timeout=600)
        if info.get("ok"):
            servers[framework] = server
            environment.update(info["versions"])
            environment[f"{framework}_process_imports"] = info["imports"]
            if info["cpu_tuning"] is not None:
                environment[f"{framework}_cpu_tuning"] = info["cpu_tuning"]
            continue
        server.close()
        if framework == "paddle":
            raise RuntimeError(f"paddle does not import: {info.get('error')}")
        left_out = [m for m in settings.models if MODELS[m].framework == framework]
        log(f"torch models left out ({', '.join(left_out)}): {info.get('error')}")
        settings = replace(settings, models=tuple(m for m in settings.models if m not in left_out))
    return settings, environment


def _export(settings: Settings, servers: Dict[str, ForkServer], work_dir: str, log: Log) -> dict:
    """Export the official model once for every engine case; ``{"ok": False}`` when no engine runs."""
    engines = [MODELS[m].engine for m in settings.models if MODELS[m].exported]
    if not engines or "infer" not in settings.modes:
        return {"ok": False, "error": "no engine"}
    log("exporting the official model for " + ", ".join(engines))
    arguments = {"sizes": settings.sizes, "directory": work_dir, "onnx": any(e.startswith("onnxruntime") or e == "auto" for e in engines),
                 "measure_threads": settings.threads if "auto" in engines else None}  # fmt: skip
    export = servers["paddle"].run("export", arguments, timeout=max(600.0, settings.max_seconds_per_case))
    if not export["ok"]:
        log(f"  export failed: {export['error']}")
    elif export["onnx_error"]:
        log(f"  no ONNX model: {export['onnx_error']}")
    return export


def _plan(settings: Settings, export: dict) -> Dict[tuple, Case]:
    """Every case of the run; engine cases that cannot run are marked skipped or failed up front."""
    cases = {}
    for batch, length in settings.shapes():
        for mode in settings.modes:
            for model in settings.models:
                spec = MODELS[model]
                if mode == "train" and spec.exported:
                    continue  # an exported graph only infers
                case = Case(model, mode, batch, length)
                if spec.exported and not export["ok"]:
                    case.status = f"failed: export: {export['error']}"
                elif spec.engine.startswith("onnxruntime") and export["onnx_error"]:
                    case.status = f"skipped: {export['onnx_error']}"
                cases[case.key] = case
    return cases


# ----------------------------------------------------------------------------------------------
# the rounds
# ----------------------------------------------------------------------------------------------
class _Rounds:
    """The state of a run's rounds: cases, matmul samples, and each series' last measured case."""

    def __init__(self, settings: Settings, servers: Dict[str, ForkServer], export: dict, log: Log):
        self.settings, self.servers, self.log = settings, servers, log
        self.export_dir = export.get("directory")
        self.cases = _plan(settings, export)
        self.matmul_samples: Dict[str, List[float]] = {framework: [] for framework in settings.frameworks()}
        self.last_measured: Dict[tuple, Case] = {}  # series -> its last case of round 1 (for predictions)

    def series(self, case: Case) -> tuple:
        """The cases one skip decision carries over to: the same model and mode (and batch, on a batch grid)."""
        return (case.model, case.mode) + ((case.batch,) if self.settings.batch_sizes else ())

    def run_round(self, index: int) -> None:
        settings = self.settings
        self.log(f"round {index + 1}/{settings.repeats}")
        for framework in settings.frameworks():
            request = {"framework": framework, "size": settings.matmul_size, "threads": settings.threads, "repeats": 3}
            result = self.servers[framework].run("matmul", request, timeout=600)
            if result["ok"]:
                self.matmul_samples[framework].append(result["gflops"])
        # the model order reversed every other round: a slow spell of a shared machine hits all models alike
        order = list(settings.models) if index % 2 == 0 else list(reversed(settings.models))
        for batch, length in settings.shapes():
            for mode in settings.modes:
                for model in order:
                    case = self.cases.get((model, mode, batch, length))
                    if case is not None:
                        self.run_case(case, index)

    def run_case(self, case: Case, index: int) -> None:
        if case.status != "ok" and not case.seconds:  # skipped or failed in an earlier round, or up front
            if index == 0:
                self.last_measured[self.series(case)] = case
                self.log(f"{case.label()} {case.status}")
            return
        reason = self.skip_reason(case) if index == 0 else None
        if reason:
            case.status = reason
            self.log(f"{case.label()} {reason}")
        else:
            self.measure(case)
        if index == 0:
            self.last_measured[self.series(case)] = case

    def skip_reason(self, case: Case) -> Optional[str]:
        """Why ``case`` should not run: over the memory budget, or predicted (or known) to be over time."""
        settings = self.settings
        estimate = attention_matrix_mib(case.model, settings.sizes, case.batch, case.length, case.mode)
        if estimate > settings.max_memory_mib:
            return f"skipped: over memory budget (N^2 attention ~{estimate:,.0f} MiB > {settings.max_memory_mib:g})"
        previous = self.last_measured.get(self.series(case))
        if previous is None:
            return None
        if previous.status != "ok":
            return f"skipped: already over budget/time at length {previous.length}"
        work = flops_per_token(case.model, settings.sizes, case.length, case.mode) * case.batch * case.length
        previous_flops = flops_per_token(previous.model, settings.sizes, previous.length, previous.mode)
        # x1.5: the softmax Transformer's FLOP/s fall as N grows (memory-bound N^2 matrices)
        predicted = 1.5 * statistics.median(previous.walls) * work / (previous_flops * previous.batch * previous.length)
        if predicted > settings.max_seconds_per_case:
            return f"skipped: over time (predicted ~{predicted:.0f} s > {settings.max_seconds_per_case:g} s)"
        return None

    def measure(self, case: Case) -> None:
        settings = self.settings
        request = CaseRequest(
            model=case.model,
            mode=case.mode,
            batch=case.batch,
            length=case.length,
            sizes=settings.sizes,
            threads=settings.threads,
            warmup=settings.warmup,
            steps=settings.steps,
            least_seconds=settings.least_seconds,
            export_dir=self.export_dir if MODELS[case.model].exported else None,
        )
        # Later rounds repeat a case that already ran within the limit: allow twice its first time,
        # so that a slow spell of the shared machine costs a sample less often than a killed run.
        timeout = max(settings.max_seconds_per_case, 2 * case.walls[0]) if case.walls else settings.max_seconds_per_case
        result = self.servers[MODELS[case.model].framework].run("case", {"request": request}, timeout=timeout)
        if not result["ok"]:
            case.errors.append(result["error"])
            if not case.seconds:
                case.status = ("skipped: " if result.get("timeout") else "failed: ") + result["error"]
            self.log(f"{case.label()} {result['error']}")
            return
        case.seconds.extend(result["seconds"])
        case.peaks.append(result["peak_mib"])
        case.walls.append(result["wall"])
        if case.probabilities is None:
            case.probabilities = result["probabilities"]
        tokens_per_s = case.batch * case.length / statistics.median(result["seconds"])
        self.log(f"{case.label()} {tokens_per_s:10,.0f} tokens/s  peak {result['peak_mib']:8,.0f} MiB")

    def matmul_gflops(self) -> Dict[str, Optional[float]]:
        """The best round's matmul throughput per framework: the peak each model's FLOP/s is divided by."""
        return {framework: max(samples) if samples else None for framework, samples in self.matmul_samples.items()}


# ----------------------------------------------------------------------------------------------
# the run and its rows
# ----------------------------------------------------------------------------------------------
def _normalised(settings: Settings) -> Settings:
    """Threads resolved, lengths sorted and unique, positions up to the longest length."""
    lengths = tuple(sorted(set(int(length) for length in settings.lengths)))
    return replace(
        settings,
        models=tuple(dict.fromkeys(settings.models)),
        lengths=lengths,
        threads=settings.threads or len(os.sched_getaffinity(0)),
        sizes=replace(settings.sizes, max_length=max(max(lengths), 1)),
    )


def run_benchmark(settings: Settings, log: Log = print) -> dict:
    """Measure every case in rounds; return the rows, matmul throughput, environment and settings.

    ``settings`` in the result is the one the run used: threads resolved, lengths sorted, and the
    torch models left out when torch does not import.
    """
    from paddlenlp_fastformer.cpu import cpu_instruction_sets, cpu_model_name

    started = time.perf_counter()
    settings = _normalised(settings)
    servers: Dict[str, ForkServer] = {}
    try:
        settings, environment = _start_servers(settings, servers, log)
        with tempfile.TemporaryDirectory(prefix="fastformer-benchmark-") as work_dir:
            rounds = _Rounds(settings, servers, _export(settings, servers, work_dir, log), log)
            for index in range(settings.repeats):
                rounds.run_round(index)
    finally:
        for server in servers.values():
            server.close()
    matmul = rounds.matmul_gflops()
    environment.update(
        threads=settings.threads,
        cpu_count=os.cpu_count(),
        cpu=cpu_model_name(),
        cpu_instruction_sets=cpu_instruction_sets(),
        load_average_end=os.getloadavg(),
        omp_wait_policy={
            framework: wait_policy_for(framework, settings.omp_wait_policy)
            or os.environ.get("OMP_WAIT_POLICY", "unset")
            for framework in settings.frameworks()
        },
    )
    return {
        "rows": summarise(rounds.cases, settings, matmul),
        "matmul_gflops": matmul,
        "matmul_samples": rounds.matmul_samples,
        "environment": environment,
        "settings": settings,
        "wall_seconds": time.perf_counter() - started,
    }


def _ratio(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    return value / reference if value is not None and reference else None


def _max_abs_difference(case: Case, reference: Optional[Case]) -> Optional[float]:
    if reference is None or case.probabilities is None or reference.probabilities is None:
        return None
    import numpy as np

    return float(np.abs(np.asarray(case.probabilities) - np.asarray(reference.probabilities)).max())


def _row(case: Case, cases: Dict[tuple, Case], settings: Settings, matmul: dict) -> dict:
    spec, sizes = MODELS[case.model], settings.sizes
    tokens_per_s = case.tokens_per_s()

    def tokens_per_s_of(model: Optional[str]) -> Optional[float]:
        other = cases.get((model, case.mode, case.batch, case.length))
        return other.tokens_per_s() if other else None

    seconds = statistics.median(case.seconds) if case.seconds else None
    flops = flops_per_token(case.model, sizes, case.length, case.mode)
    model_gflops = flops * tokens_per_s / 1e9 if tokens_per_s is not None else None
    dygraph = dygraph_reference(case.model)
    return {
        "model": case.model,
        "framework": spec.framework,
        "engine": spec.engine,
        "description": spec.description,
        "mode": case.mode,
        "length": case.length,
        "batch": case.batch,
        "status": "ok" if tokens_per_s is not None else case.status,
        "tokens_per_s": tokens_per_s,
        "texts_per_s": case.batch / seconds if seconds else None,
        "seconds_per_step": seconds,
        "timed_steps": len(case.seconds),
        "ratio_vs_softmax": _ratio(tokens_per_s, tokens_per_s_of(BASELINE_MODEL)),
        "ratio_paddle_vs_torch": _ratio(tokens_per_s, tokens_per_s_of(TORCH_TWIN.get(case.model))),
        "ratio_vs_dygraph": _ratio(tokens_per_s, tokens_per_s_of(dygraph)),
        "max_abs_diff_vs_dygraph": _max_abs_difference(case, cases.get((dygraph, case.mode, case.batch, case.length))),
        "peak_mib": max(case.peaks) if case.peaks else None,
        "flops_per_token": flops,
        "model_gflops": model_gflops,
        "matmul_gflops": matmul.get(spec.framework),
        "fraction_of_matmul_peak": _ratio(model_gflops, matmul.get(spec.framework)),
        "hidden": sizes.hidden,
        "heads": sizes.heads,
        "layers": sizes.layers,
        "intermediate": sizes.intermediate,
        "vocab": sizes.vocab,
        "threads": settings.threads,
        "tokens_per_step": settings.tokens_per_step if settings.batch_sizes is None else None,
    }


def summarise(cases: Dict[tuple, Case], settings: Settings, matmul: dict) -> List[dict]:
    """One row per case: by mode, then shape, then model in the order asked for."""
    rows = []
    for mode in settings.modes:
        for batch, length in settings.shapes():
            for model in settings.models:
                case = cases.get((model, mode, batch, length))
                if case is not None:
                    rows.append(_row(case, cases, settings, matmul))
    return rows
