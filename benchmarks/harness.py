"""Fork servers and the jobs their forked children run: one measurement per fresh process.

A fork server is a process that imported one framework (and only that one) once; it answers each
request by forking a child that runs one job and reports back, so that every measurement starts in
a fresh process without paying the framework's import each time. Only one framework per server:
with paddle loaded, torch binds to paddle's OpenMP runtime instead of its own and runs several times
slower (``docs/speed.md``). A server starts as
``python -c "import benchmarks.harness as harness; harness.serve(...)"`` with this checkout's root on
``sys.path`` (:func:`python_command`); this module and what it imports at the top import no framework.

The paddle server applies :func:`paddlenlp_fastformer.tune_cpu` before it imports paddle, as the
tools do; the torch server runs with the caller's environment as it is (plus ``OMP_WAIT_POLICY``,
see :func:`wait_policy_for`).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from .models import MODELS, Sizes
from .workloads import class_probabilities, export_official, init_framework, make_step, time_steps

__all__ = ["ROOT", "CaseRequest", "ForkServer", "python_command", "framework_environment", "wait_policy_for", "serve"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class CaseRequest:
    """One measurement: ``warmup`` untimed steps, then ``steps`` timed ones (or more: ``least_seconds``), in a fresh child."""

    model: str
    mode: str
    batch: int
    length: int
    sizes: Sizes
    threads: int
    warmup: int
    steps: int
    export_dir: Optional[str] = None  # the exported official model, for the engines
    least_seconds: float = 0.0  # timed steps go on past ``steps`` until they took this long in all


# ----------------------------------------------------------------------------------------------
# starting processes
# ----------------------------------------------------------------------------------------------
def python_command(statement: str) -> List[str]:
    """``python -c statement`` with this checkout's root (then this process's path) on ``sys.path``."""
    paths = [ROOT] + [path for path in sys.path if path and path != ROOT]
    return [sys.executable, "-c", f"import sys; sys.path[:0] = {paths!r}; {statement}"]


def wait_policy_for(framework: str, omp_wait_policy: Optional[str]) -> Optional[str]:
    """OMP_WAIT_POLICY for a framework's processes; None leaves the environment as it is.

    "auto": passive for torch, unchanged for paddle. Torch's libgomp threads spin between parallel
    regions, so on a CPU shared with other jobs every region waits for a scheduler slice; Paddle's
    runtime (libiomp5) does not suffer from the default, and passive slows it down. ``docs/speed.md``
    has the measurements.
    """
    if omp_wait_policy in (None, "default"):
        return None
    if omp_wait_policy == "auto":
        return "passive" if framework == "torch" else None
    return omp_wait_policy


def framework_environment(framework: str, omp_wait_policy: Optional[str]) -> Dict[str, str]:
    """The environment of a process that runs ``framework``: this one's, with the wait policy set."""
    environment = dict(os.environ)
    policy = wait_policy_for(framework, omp_wait_policy)
    if policy:
        environment["OMP_WAIT_POLICY"] = policy.upper()
    return environment


def _die_with_parent(signal_number: int) -> None:
    """Linux: have the kernel send ``signal_number`` to this process when its parent exits (best effort)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal_number)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# ----------------------------------------------------------------------------------------------
# the jobs a forked child runs
# ----------------------------------------------------------------------------------------------
def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Set the kernel's peak-RSS mark (ru_maxrss, VmHWM) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def measure_case(request: CaseRequest) -> dict:
    """Baseline RSS, build, warm up, time, peak RSS above the baseline, and the last output's probabilities."""
    import gc
    import resource

    started = time.perf_counter()
    init_framework(request.threads, MODELS[request.model].framework)
    gc.collect()
    baseline_kib = _rss_kib()
    if not _reset_peak_rss():  # then the peak cannot be below the fork server's own peak
        baseline_kib = max(baseline_kib, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    step = make_step(
        request.model, request.sizes, request.batch, request.length, request.mode, request.threads, request.export_dir
    )
    for _ in range(request.warmup):
        step()
    seconds, output = time_steps(step, request.steps, least_seconds=request.least_seconds)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "ok": True,
        "seconds": seconds,
        "peak_mib": (peak_kib - baseline_kib) / 1024.0,
        "baseline_mib": baseline_kib / 1024.0,
        "wall": time.perf_counter() - started,
        "probabilities": class_probabilities(request.model, output),
    }


def measure_matmul(framework: str, size: int, threads: int, repeats: int) -> dict:
    """fp32 size^3 matmul GFLOP/s: the median of ``repeats`` products after one warm-up product."""
    init_framework(threads, framework)
    if framework == "paddle":
        import paddle

        a, b = paddle.randn([size, size]), paddle.randn([size, size])
        matmul = paddle.matmul
    else:
        import torch

        a, b = torch.randn(size, size), torch.randn(size, size)
        matmul = torch.matmul

    def product():
        float(matmul(a, b)[0, 0])

    product()
    seconds, _ = time_steps(product, repeats)
    return {"ok": True, "gflops": statistics.median(2.0 * size**3 / s / 1e9 for s in seconds)}


def export_model(sizes: Sizes, directory: str, onnx: bool, measure_threads: Optional[int] = None) -> dict:
    """The official classifier exported once per run, for every engine case to load; with ``measure_threads``, its
    engines measured afresh at that many threads for the ``auto`` cases (before any case is timed)."""
    exported, onnx_error = export_official(sizes, directory, onnx)
    if measure_threads:
        from fastformer_zoo.deploy.predictor import Predictor

        Predictor(exported, cpu_threads=measure_threads, remeasure=True)
    return {"ok": True, "directory": exported, "onnx_error": onnx_error}


# What each fork server imports once, after the paddle server's CPU tuning.
_PRELOAD = {
    "paddle": ["numpy", "paddle", "paddlenlp_fastformer.modeling"],
    "torch": ["numpy", "torch", "fast_transformer_pytorch", "rotary_embedding_torch", "benchmarks.torch_reference"],
}
_VERSIONS = {  # version key -> distribution, per framework; the framework itself reports __version__
    "paddle": {"paddlenlp": "paddlenlp", "paddle2onnx": "paddle2onnx", "onnxruntime": "onnxruntime"},
    "torch": {
        "fast_transformer_pytorch": "fast-transformer-pytorch",
        "rotary_embedding_torch": "rotary-embedding-torch",
    },
}
_SERVER_STATE: Dict[str, object] = {"errors": [], "cpu_tuning": None}


def probe(framework: str) -> dict:
    """Whether the server's imports worked, the versions, the CPU tuning, and which frameworks it holds."""
    from importlib import metadata

    errors = list(_SERVER_STATE["errors"])
    versions = {}
    if framework in sys.modules:
        versions[framework] = sys.modules[framework].__version__
    for key, distribution in _VERSIONS[framework].items():
        try:
            versions[key] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            pass
    return {
        "ok": not errors,
        "error": "; ".join(errors),
        "versions": versions,
        "cpu_tuning": _SERVER_STATE["cpu_tuning"],
        "imports": sorted(name for name in ("paddle", "torch") if name in sys.modules),
    }


JOBS: Dict[str, Callable[..., dict]] = {
    "case": measure_case,
    "matmul": measure_matmul,
    "probe": probe,
    "export": export_model,
}


# ----------------------------------------------------------------------------------------------
# forked children
# ----------------------------------------------------------------------------------------------
def _child(function: Callable[..., dict], kwargs: dict, read_end: int, write_end: int) -> None:
    """In the forked child: run, send the pickled result, leave without running any exit handler."""
    import pickle
    import signal

    code = 0
    try:
        _die_with_parent(signal.SIGKILL)
        os.close(read_end)
        try:
            result = function(**kwargs)
        except BaseException as error:
            result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        view = memoryview(pickle.dumps(result))
        while view:
            view = view[os.write(write_end, view) :]
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _read_until(read_end: int, deadline: float) -> Optional[bytes]:
    """Everything the child writes until it closes the pipe; None if ``deadline`` passes first."""
    import select

    chunks = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([read_end], [], [], remaining)
        if ready:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _outcome(data: Optional[bytes], status: int, timeout: float) -> dict:
    import pickle
    import signal

    if data is None:
        return {"ok": False, "timeout": True, "error": f"over time (> {timeout:g} s)"}
    if data:
        try:
            return pickle.loads(data)
        except Exception as error:  # a child killed while writing
            return {"ok": False, "error": f"unreadable result ({error})"}
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return {"ok": False, "error": f"child killed by signal {number}{hint}"}
    return {"ok": False, "error": f"child exited with code {os.WEXITSTATUS(status)} and no result"}


def run_forked(function: Callable[..., dict], kwargs: dict, timeout: float) -> dict:
    """Run ``function(**kwargs)`` in a child forked from this process; kill it after ``timeout`` s."""
    import signal

    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(function, kwargs, read_end, write_end)
    os.close(write_end)
    data = None
    try:
        data = _read_until(read_end, time.monotonic() + timeout)
    finally:
        os.close(read_end)
        if data is None:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    return _outcome(data, status, timeout)


# ----------------------------------------------------------------------------------------------
# the servers
# ----------------------------------------------------------------------------------------------
def _prepare_server(framework: str) -> None:
    """Tune the CPU (paddle only, before paddle loads) and import the framework once."""
    import importlib

    if framework == "paddle":
        try:
            from paddlenlp_fastformer import tune_cpu

            _SERVER_STATE["cpu_tuning"] = tune_cpu()
        except BaseException as error:
            _SERVER_STATE["errors"].append(f"tune_cpu: {type(error).__name__}: {error}")
    for name in _PRELOAD[framework]:
        try:
            importlib.import_module(name)
        except BaseException as error:
            _SERVER_STATE["errors"].append(f"import {name}: {type(error).__name__}: {error}")
    if "paddlenlp" in sys.modules:  # its per-file "saved in" lines and random-weight notices bury the progress
        from paddlenlp.utils.log import logger

        logger.set_level("ERROR")


def serve(framework: str, fd: int) -> None:
    """Fork-server loop: prepare once, then run each request in a freshly forked child."""
    import warnings
    from multiprocessing.connection import Connection

    warnings.filterwarnings("ignore")
    _die_with_parent(15)  # SIGTERM: an interrupted benchmark leaves no server behind
    _prepare_server(framework)
    connection = Connection(fd)
    while True:
        try:
            request = connection.recv()
        except EOFError:
            break
        if request is None:
            break
        name, kwargs, timeout = request
        connection.send(run_forked(JOBS[name], kwargs, timeout))
    connection.close()


class ForkServer:
    """The parent's handle on one fork server (see the module docstring)."""

    def __init__(self, framework: str, omp_wait_policy: Optional[str] = None):
        self.framework = framework
        parent_end, child_end = mp.Pipe(duplex=True)
        statement = f"import benchmarks.harness as harness; harness.serve({framework!r}, {child_end.fileno()})"
        self.process = subprocess.Popen(
            python_command(statement),
            pass_fds=(child_end.fileno(),),
            stdout=sys.stderr.fileno(),
            env=framework_environment(framework, omp_wait_policy),
        )
        child_end.close()
        self.connection = parent_end

    def run(self, name: str, kwargs: dict, timeout: float) -> dict:
        """Run job ``name`` in a fresh child; a result dict with ``ok`` (and ``error`` when not ok)."""
        try:
            self.connection.send((name, kwargs, timeout))
            if not self.connection.poll(timeout + 600):
                raise RuntimeError("no answer")
            return self.connection.recv()
        except (EOFError, OSError, RuntimeError) as error:
            return {"ok": False, "error": f"{self.framework} fork server failed: {type(error).__name__} {error}"}

    def close(self) -> None:
        try:
            self.connection.send(None)
            self.connection.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()
            self.process.wait()
