"""CPU milliseconds per training step of the Paddle models at several commits, beside PyTorch.

    python tools/benchmark_commits.py 27df232 a69fe2d 6d485c9 23166bb HEAD [--rounds 2] [--threads 1]

This measures what each change did, as in the README's "What made it fast" table. Each commit is
checked out with ``git worktree`` into a temporary directory. Every measurement then runs in a fresh
process that imports that commit's package (and so its CPU settings and kernels) and times training
steps with this checkout's ``benchmark.py``: the official model at B64 x N256 (intermediate 256) and
the lucidrains model at B16 x N512 (intermediate 1024). Each figure is the median of 5 steps after 2
warm-up steps, in process CPU time, which a busy shared machine disturbs less than wall time.
PyTorch is measured in each round too. ``COMMIT:ENV=VALUE`` runs a commit with an environment variable
set, e.g. ``6d485c9:PADDLENLP_FASTFORMER_FUSED_OPS=0``.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BENCHMARK_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "paddlenlp_fastformer", "benchmark.py")
CONFIGURATIONS = {"official": (64, 256, 256), "lucidrains": (16, 512, 1024)}  # batch, length, intermediate


def measure(repo: str, model: str, batch: int, length: int, intermediate: int, threads: int) -> None:
    """In this process: import ``repo``'s package (Paddle models only), time the steps, print the median."""
    import importlib.util

    sys.path.insert(0, repo)
    if model.startswith("paddle"):
        import paddlenlp_fastformer  # noqa: F401  (applies that commit's CPU settings, if it has any)
    # By path: importing the package for a torch model would import paddle, and torch would then bind
    # to paddle's OpenMP runtime (see benchmark.py).
    spec = importlib.util.spec_from_file_location("_benchmark", BENCHMARK_FILE)
    benchmark = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = benchmark
    spec.loader.exec_module(benchmark)
    benchmark._init_frameworks(threads, benchmark.MODELS[model].framework)
    sizes = benchmark.Sizes(intermediate=intermediate, max_length=max(512, length))
    step = benchmark._make_step(model, sizes, batch, length, "train")
    for _ in range(2):
        step()
    seconds = []
    for _ in range(5):
        started = time.process_time()
        step()
        seconds.append(time.process_time() - started)
    print(f"RESULT {1000 * statistics.median(seconds):.0f}")


def run_in_process(repo: str, model: str, configuration: str, threads: int, environment: dict) -> int:
    batch, length, intermediate = CONFIGURATIONS[configuration]
    command = [sys.executable, __file__, "--measure", repo, model, str(batch), str(length), str(intermediate)]
    command += ["--threads", str(threads)]
    env = {**os.environ, **environment, **({"OMP_WAIT_POLICY": "PASSIVE"} if model.startswith("torch") else {})}
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    return int(next(line for line in output.splitlines() if line.startswith("RESULT")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commits", nargs="*", help="COMMIT or COMMIT:ENV=VALUE, in order")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--measure", nargs=5, metavar=("REPO", "MODEL", "BATCH", "LENGTH", "INTERMEDIATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        repo, model, batch, length, intermediate = args.measure
        measure(repo, model, int(batch), int(length), int(intermediate), args.threads)
        return
    if not args.commits:
        parser.error("name at least one commit")
    with tempfile.TemporaryDirectory(prefix="fastformer-commits-") as work_dir:
        checkouts = {}
        for entry in args.commits:
            commit, _, setting = entry.partition(":")
            if commit not in checkouts:
                checkouts[commit] = os.path.join(work_dir, commit)
                subprocess.run(["git", "worktree", "add", "--detach", checkouts[commit], commit], check=True, capture_output=True)
        try:
            for round_index in range(args.rounds):
                for configuration in CONFIGURATIONS:
                    torch_ms = run_in_process(checkouts[args.commits[-1].partition(":")[0]], f"torch-{configuration}", configuration, args.threads, {})
                    print(f"round {round_index + 1} {configuration:10s} torch {torch_ms:6d} ms", flush=True)
                    for entry in args.commits:
                        commit, _, setting = entry.partition(":")
                        environment = dict([setting.split("=", 1)]) if setting else {}
                        paddle_ms = run_in_process(checkouts[commit], f"paddle-{configuration}", configuration, args.threads, environment)
                        print(
                            f"round {round_index + 1} {configuration:10s} {entry:40s} {paddle_ms:6d} ms  "
                            f"Paddle / PyTorch {torch_ms / paddle_ms:.2f}",
                            flush=True,
                        )
        finally:
            for path in checkouts.values():
                subprocess.run(["git", "worktree", "remove", "--force", path], capture_output=True)


if __name__ == "__main__":
    main()
