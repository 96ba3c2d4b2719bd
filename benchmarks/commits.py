"""CPU milliseconds per training step of the Paddle models at several commits, beside PyTorch.

``python -m benchmarks.commits`` runs it; this is the procedure of docs/speed.md's "What made it fast"
table. Each commit is checked out with ``git worktree`` into a temporary directory. Every measurement
then runs in a fresh process that imports that commit's model package (and so its CPU settings and
kernels) and times training steps with this checkout's :mod:`benchmarks.workloads`: the official
model at B64 x N256 (intermediate 256) and the lucidrains model at B16 x N512 (intermediate 1024).
Each figure is the median of 5 steps after 2 warm-up steps, in process CPU time, which a busy shared
machine disturbs less than wall time. PyTorch is measured in each round too. ``COMMIT:ENV=VALUE`` runs
a commit with an environment variable set, e.g. ``6d485c9:PADDLENLP_FASTFORMER_FUSED_OPS=0``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, Sequence

from .harness import ROOT, framework_environment, python_command
from .models import MODELS, Sizes
from .workloads import init_framework, make_step, time_steps

__all__ = ["CONFIGURATIONS", "Measurement", "measure", "run_commits"]

CONFIGURATIONS = {"official": (64, 256, 256), "lucidrains": (16, 512, 1024)}  # batch, length, intermediate
WARMUP_STEPS, TIMED_STEPS = 2, 5


@dataclass(frozen=True)
class Measurement:
    """One process's work: ``model`` at ``configuration``, with the model package of checkout ``repo``."""

    repo: str
    model: str
    configuration: str
    threads: int


def _import_model_package(repo: str) -> None:
    """Import ``repo``'s ``paddlenlp_fastformer`` and apply its CPU tuning, as that commit's tools did.

    Later commits tune only when asked (``tune_cpu``); earlier ones did it on import.
    """
    sys.path.insert(0, repo)
    import paddlenlp_fastformer

    if os.path.dirname(os.path.dirname(os.path.realpath(paddlenlp_fastformer.__file__))) != os.path.realpath(repo):
        raise RuntimeError(f"paddlenlp_fastformer was imported from {paddlenlp_fastformer.__file__}, not {repo}")
    tune_cpu = getattr(paddlenlp_fastformer, "tune_cpu", None)
    if tune_cpu is not None:
        tune_cpu()


def measure(measurement: Measurement) -> float:
    """In this process: milliseconds of CPU time per training step (the median of the timed steps)."""
    framework = MODELS[measurement.model].framework
    if framework == "paddle":  # a torch process must not import paddle (see benchmarks.harness)
        _import_model_package(measurement.repo)
    init_framework(measurement.threads, framework)
    batch, length, intermediate = CONFIGURATIONS[measurement.configuration]
    sizes = Sizes(intermediate=intermediate, max_length=max(512, length))
    step = make_step(measurement.model, sizes, batch, length, "train")
    for _ in range(WARMUP_STEPS):
        step()
    seconds, _ = time_steps(step, TIMED_STEPS, clock=time.process_time)
    return 1000 * statistics.median(seconds)


def print_measurement(measurement: Measurement) -> None:
    """The entry point of a measuring process: one ``RESULT <ms>`` line on stdout."""
    print(f"RESULT {measure(measurement):.0f}")


def _run_in_process(measurement: Measurement, environment: Dict[str, str]) -> int:
    statement = f"import benchmarks.commits as c; c.print_measurement(c.{measurement!r})"
    env = {**framework_environment(MODELS[measurement.model].framework, "auto"), **environment}
    output = subprocess.run(python_command(statement), capture_output=True, text=True, env=env, check=True).stdout
    return int(next(line for line in output.splitlines() if line.startswith("RESULT")).split()[1])


def _parse(entry: str) -> tuple:
    """``COMMIT`` or ``COMMIT:ENV=VALUE`` -> (commit, {ENV: VALUE})."""
    commit, _, setting = entry.partition(":")
    return commit, dict([setting.split("=", 1)]) if setting else {}


def _run_rounds(checkouts: Dict[str, str], entries: Sequence[str], rounds: int, threads: int, log: Callable) -> None:
    for round_index in range(rounds):
        for configuration in CONFIGURATIONS:
            newest = checkouts[_parse(entries[-1])[0]]
            torch_ms = _run_in_process(Measurement(newest, f"torch-{configuration}", configuration, threads), {})
            log(f"round {round_index + 1} {configuration:10s} torch {torch_ms:6d} ms")
            for entry in entries:
                commit, environment = _parse(entry)
                measurement = Measurement(checkouts[commit], f"paddle-{configuration}", configuration, threads)
                paddle_ms = _run_in_process(measurement, environment)
                log(
                    f"round {round_index + 1} {configuration:10s} {entry:40s} {paddle_ms:6d} ms  "
                    f"Paddle / PyTorch {torch_ms / paddle_ms:.2f}"
                )


def run_commits(entries: Sequence[str], rounds: int = 2, threads: int = 1, log: Callable = print) -> None:
    """Check out every commit of ``entries`` and time each in ``rounds`` rounds (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="fastformer-commits-") as work_dir:
        checkouts: Dict[str, str] = {}
        try:
            for commit in dict.fromkeys(_parse(entry)[0] for entry in entries):
                checkouts[commit] = os.path.join(work_dir, commit)
                command = ["git", "worktree", "add", "--detach", checkouts[commit], commit]
                subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
            _run_rounds(checkouts, entries, rounds, threads, log)
        finally:
            for path in checkouts.values():
                subprocess.run(["git", "worktree", "remove", "--force", path], cwd=ROOT, capture_output=True)


USAGE = """CPU milliseconds per training step of the Paddle models at several commits, beside PyTorch.

    python -m benchmarks.commits 27df232 a69fe2d 6d485c9:PADDLENLP_FASTFORMER_FUSED_OPS=0 HEAD \\
        [--rounds 2] [--threads 1]

The procedure (worktrees, configurations, CPU time): this module's docstring; measured figures: docs/speed.md.
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commits", nargs="+", help="COMMIT or COMMIT:ENV=VALUE, in order")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every commit and configuration (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both frameworks (default 1)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        parser.error("--rounds and --threads must be positive")
    run_commits(args.commits, args.rounds, args.threads, log=lambda message: print(message, flush=True))


if __name__ == "__main__":
    main()
