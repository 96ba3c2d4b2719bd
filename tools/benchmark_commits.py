"""CPU milliseconds per training step of the Paddle models at several commits, beside PyTorch.

    python tools/benchmark_commits.py 27df232 a69fe2d 6d485c9:PADDLENLP_FASTFORMER_FUSED_OPS=0 HEAD \
        [--rounds 2] [--threads 1]

The procedure (worktrees, configurations, CPU time): benchmarks/commits.py; measured figures: docs/speed.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.commits import run_commits  # noqa: E402  (after the checkout's root is on sys.path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commits", nargs="+", help="COMMIT or COMMIT:ENV=VALUE, in order")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every commit and configuration (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both frameworks (default 1)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        parser.error("--rounds and --threads must be positive")
    run_commits(args.commits, args.rounds, args.threads, log=lambda message: print(message, flush=True))


if __name__ == "__main__":
    main()
