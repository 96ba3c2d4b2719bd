"""Process set-up a run needs: CPU threads, seeds, which data-parallel rank writes, the log file."""
from __future__ import annotations

import contextlib
import logging
import os
import random
from pathlib import Path
from typing import Iterator

import numpy as np
import paddle
import paddle.distributed as dist

__all__ = ["set_cpu_threads", "seed_everything", "is_main_process", "logging_to"]

logger = logging.getLogger("fastformer_zoo")


def set_cpu_threads(num_threads: int) -> int:
    """Paddle's CPU math runs on one thread unless told; 0 means all cores shared among ranks."""
    if num_threads == 0:
        num_threads = max(1, (os.cpu_count() or 1) // max(1, dist.get_world_size()))
    paddle.base.core.set_num_threads(num_threads)
    return num_threads


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def is_main_process() -> bool:
    """Rank 0 of a data-parallel run (or the only process): the one that writes and reports."""
    return dist.get_rank() == 0


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """Also write the package's log records to ``path`` while the block runs.

    Nested blocks for one path share one handler, which the outermost removes: runs made one after
    another in a process (tools/run_experiment.py) each log to their own file only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()) for h in logger.handlers):
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
