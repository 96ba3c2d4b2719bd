"""Process set-up a run needs: CPU threads, seeds, which data-parallel rank writes, the log file; and how the
ranks of a data-parallel run (processes, on one machine or several) start together and keep in step.

Every exchange between ranks is one whose failure paddle reports as a Python exception, so that a rank
that is lost (killed, or its node) makes the others stop with one line rather than hang or abort:

* gradients are averaged by one explicit all-reduce after ``backward()`` (:func:`average_gradients`);
* where rank 0 works alone (evaluating, saving), the others wait on paddle's TCP store, which rank 0
  serves (:func:`wait_for_main`), not in a gloo collective, which gives up after 30 seconds.
"""
from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import random
import re
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

import numpy as np
import paddle
import paddle.distributed as dist

from ..errors import UserError, one_line

__all__ = [
    "set_cpu_threads",
    "seed_everything",
    "is_main_process",
    "logging_to",
    "PeerLost",
    "join_ranks",
    "start_together",
    "gather",
    "broadcast_parameters",
    "average_gradients",
    "wait_for_main",
]

T = TypeVar("T")

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


# ----------------------------------------------------------------------------------------------
# the ranks of a data-parallel run
# ----------------------------------------------------------------------------------------------
class PeerLost(Exception):
    """Another rank of the run stopped answering (it ended, or its node did): this one cannot go on."""


# As long as paddle's own rendezvous waits for every process to connect (its TCP store's default).
STARTUP_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.05
DONE, FAILED = 1, 2  # what rank 0 leaves at a sync point of wait_for_main
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_sync_points = itertools.count()


def join_ranks() -> int:
    """Connect to the other ranks of a data-parallel run (nothing to do for one process); returns their number."""
    world_size = dist.get_world_size()
    if world_size > 1:
        _end_with_launcher()
        with _lost_peers("connecting to every rank"):  # paddle's rendezvous gives up after 15 minutes
            dist.init_parallel_env()
    return world_size


def _end_with_launcher() -> None:
    """Have the kernel end this process when the launcher that started it ends.

    The launcher starts each rank in a session of its own: a launcher killed alone (by hand, or by a job
    scheduler) would leave its ranks training on, orphans that the other nodes keep computing with.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # it ended before the signal was armed
        raise UserError("the launcher that started this rank (python -m paddle.distributed.launch) has already ended")


@contextlib.contextmanager
def _lost_peers(doing: str) -> Iterator[None]:
    """Turn the error of an exchange with a rank that is gone into :class:`PeerLost`, saying what was being done."""
    try:
        yield
    except (RuntimeError, ValueError) as error:  # gloo's (RuntimeError) and the TCP store's (ValueError)
        detail = re.sub(r"^\[[^\]]*\]\s*", "", one_line(error))  # gloo starts with its C++ source position
        raise PeerLost(f"{doing}: {detail}") from None


def _store():
    return paddle.base.core.create_or_get_global_tcp_store()


def _sync_key(what: str) -> str:
    # Every rank passes the same sync points in the same order, so their count names each one alike.
    return f"fastformer/{next(_sync_points)}/{what}"


def _wait_for_all(what: str, timeout: float) -> None:
    """Wait until every rank has come to ``what``; rank 0 gives up after ``timeout`` seconds, the others with it.

    On the TCP store rather than with a gloo collective: ranks may come far more than gloo's 30 seconds apart
    (reading the data on a slower node, say)."""
    store, key, world_size = _store(), _sync_key(what), dist.get_world_size()
    deadline = time.monotonic() + timeout
    with _lost_peers(f"waiting for every rank to {what}"):
        store.add(key, 1)
        while (arrived := store.add(key, 0)) < world_size:
            if is_main_process() and time.monotonic() > deadline:
                raise PeerLost(f"{world_size - arrived} of {world_size} ranks did not {what} within {timeout:.0f} s")
            time.sleep(POLL_SECONDS)


def wait_for_main(what: str, failure: Optional[UserError] = None) -> None:
    """Hold the other ranks until rank 0 has done ``what``, work it does alone (evaluating, saving); every rank
    calls this at the same point, rank 0 once it is done, with the error that stopped it if one did (``failure``,
    raised then on every rank).

    Not with a collective, which gloo gives up after 30 seconds, less than evaluating or saving may take: on the
    TCP store, which rank 0 serves, so the others wait as long as rank 0 lives and stop as soon as it ends.
    """
    if dist.get_world_size() < 2:
        if failure is not None:
            raise failure
        return
    store, key = _store(), _sync_key(what)
    with _lost_peers(f"waiting for rank 0 to {what}"):
        if is_main_process():
            if failure is not None:
                store.set(f"{key}/failure", str(failure))
            store.add(key, DONE if failure is None else FAILED)
        else:
            while (outcome := store.add(key, 0)) == 0:
                time.sleep(POLL_SECONDS)
            if outcome == FAILED:
                failure = UserError(f"rank 0 could not {what}: {store.get(f'{key}/failure').decode()}")
    if failure is not None:
        raise failure


def start_together(start: Callable[[], T], facts: Callable[[T], dict], hint: str) -> T:
    """``start()`` on every rank, then check that every rank started the same run.

    A rank whose start fails (a missing file, a bad setting) tells the others, so that all stop with its
    error rather than wait for it. ``facts(result)`` (a description -> a value) must be equal on every rank,
    else every rank stops naming the first difference, followed by ``hint``.
    """
    if dist.get_world_size() < 2:
        return start()
    result, mine = None, {}
    try:
        result = start()
        mine["facts"] = facts(result)
    except (UserError, OSError) as error:  # what the tools report in one line (a file that cannot be read, say)
        mine["error"] = one_line(error)
    _wait_for_all("start", STARTUP_TIMEOUT_SECONDS)
    mine["log"] = _worker_log()
    everyone = gather(mine)
    failed = [rank for rank, theirs in enumerate(everyone) if "error" in theirs]
    if "error" in mine:
        raise UserError(mine["error"])
    if failed:
        raise UserError(f"rank {failed[0]} could not start: {everyone[failed[0]]['error']}")
    _check_same(everyone, hint)
    _warn_shared_logs(everyone)
    return result


def _check_same(everyone: list, hint: str) -> None:
    reference = everyone[0]["facts"]
    for rank, theirs in enumerate(everyone[1:], 1):
        for name in sorted(set(reference) | set(theirs["facts"])):
            value, expected = theirs["facts"].get(name), reference.get(name)
            if value != expected:
                raise UserError(f"rank {rank} has {name}={value!r}, rank 0 {name}={expected!r}: {hint}")


def _worker_log():
    """Which file this rank's output goes to (the launcher's workerlog.N), as (host, device, inode), or None."""
    try:
        status = os.fstat(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no file behind sys.stdout (pytest captures it, for one)
        return None
    return (os.uname().nodename, status.st_dev, status.st_ino) if stat.S_ISREG(status.st_mode) else None


def _warn_shared_logs(everyone: list) -> None:
    """Launchers that share a working directory and a --log_dir write their ranks' logs into each other's."""
    seen = {}
    for rank, theirs in enumerate(everyone):
        if theirs["log"] is not None and theirs["log"] in seen and is_main_process():
            logger.warning(
                "ranks %d and %d write to the same log file: on one machine (or a shared folder), give each "
                "launcher its own --log_dir", seen[theirs["log"]], rank,
            )  # fmt: skip
            return
        seen.setdefault(theirs["log"], rank)


def gather(value) -> list:
    """``value`` of every rank (picklable), in rank order."""
    everyone = []
    with _lost_peers("gathering the ranks' state"):
        dist.all_gather_object(everyone, value)
    return everyone


def broadcast_parameters(parameters) -> None:
    """Give every rank rank 0's parameter values, in one collective.

    Ranks that seed and load alike start alike; this makes sure of it, as paddle.DataParallel would.
    """
    if dist.get_world_size() < 2:
        return
    parameters = list(parameters)
    with paddle.no_grad():
        flat = paddle.concat([parameter.reshape([-1]) for parameter in parameters])
        with _lost_peers("receiving rank 0's parameters"):
            dist.broadcast(flat, src=0)
        for parameter, part in zip(parameters, paddle.split(flat, [parameter.size for parameter in parameters])):
            parameter.set_value(part.reshape(parameter.shape))


def average_gradients(parameters) -> None:
    """Average the gradients over the ranks, in place, in one all-reduce.

    Not paddle.DataParallel's, which all-reduces inside ``backward()``: when a rank is lost there, gloo's
    error cannot be caught and the process aborts (SIGABRT) without a word of why.
    """
    world_size = dist.get_world_size()
    if world_size < 2:
        return
    # Every rank runs the same graph, so the same parameters have gradients on each: the layouts agree.
    gradients = [parameter.grad for parameter in parameters if parameter.grad is not None]
    with paddle.no_grad():
        flat = paddle.concat([gradient.reshape([-1]) for gradient in gradients])
        with _lost_peers("averaging gradients"):
            dist.all_reduce(flat)
        flat = flat / world_size
        for gradient, part in zip(gradients, paddle.split(flat, [gradient.size for gradient in gradients])):
            gradient.set_value(part.reshape(gradient.shape))
