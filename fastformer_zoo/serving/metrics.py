"""What ``GET /metrics`` reports: requests and errors by route and status, batch sizes, latency quantiles, memory
and CPU time by thread.

Kept in fixed-size structures (a window of the latest latencies), so that a long-running service
does not grow with the number of requests it has answered.
"""
from __future__ import annotations

import collections
import os
import threading
import time

import numpy as np

__all__ = ["ServiceMetrics"]

LATENCY_WINDOW = 10_000  # the latest requests the quantiles describe
QUANTILES = (0.5, 0.9, 0.99)


def resident_memory_mb() -> float:
    """This process's resident memory (Linux: /proc/self/status), or NaN where that file is absent."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds_by_thread(inference_thread_ids=()) -> dict:
    """CPU seconds (user + system) this process has spent, split into the event loop (the main thread), the
    inference threads (``inference_thread_ids``, native thread ids) and every other thread (the inference
    engines' workers, the thread pool); Linux only (/proc/self/task), else only the process's total.

    Written by hand: psutil is not installed with paddlenlp, and ``os.times`` has no per-thread split."""
    main_id = threading.main_thread().native_id
    split = {"event_loop": 0.0, "inference_threads": 0.0, "other_threads": 0.0}
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        task_ids = os.listdir("/proc/self/task")
    except OSError:
        task_ids = []
    for task_id in task_ids:
        try:
            with open(f"/proc/self/task/{task_id}/stat", encoding="ascii") as stat:
                fields = stat.read().rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
        except OSError:  # the thread ended meanwhile
            continue
        seconds = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: fields 14 and 15 of stat(5)
        role = "event_loop" if int(task_id) == main_id else "inference_threads" if int(task_id) in inference_thread_ids else "other_threads"
        split[role] += seconds
    times = os.times()
    return {"process": round(times.user + times.system, 3), **({k: round(v, 3) for k, v in split.items()} if task_ids else {})}


class ServiceMetrics:
    """Counters of the service; safe to update from the event loop and the inference thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests = collections.Counter()  # (path, status) -> count
        self.batch_sizes = collections.Counter()  # texts per batch -> batches
        self.forward_passes = 0
        self.texts = 0
        self.in_flight = 0  # requests received and not yet answered
        self._latencies = {}  # path -> deque of seconds

    def request_started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def record_request(self, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.requests[(path, status)] += 1
            self._latencies.setdefault(path, collections.deque(maxlen=LATENCY_WINDOW)).append(seconds)

    def record_batch(self, num_texts: int, forward_passes: int) -> None:
        with self._lock:
            self.batch_sizes[num_texts] += 1
            self.forward_passes += forward_passes
            self.texts += num_texts

    def snapshot(self, queued: int, inference_thread_ids=()) -> dict:
        with self._lock:
            by_route = collections.defaultdict(lambda: {"requests": 0, "errors": 0, "by_status": {}})
            for (path, status), count in sorted(self.requests.items()):
                route = by_route[path]
                route["requests"] += count
                route["errors"] += count if status >= 400 else 0
                route["by_status"][str(status)] = count
            for path, latencies in self._latencies.items():
                values = np.fromiter(latencies, dtype=np.float64)
                by_route[path]["latency_ms"] = {f"p{round(q * 100)}": round(1000 * float(np.quantile(values, q)), 3) for q in QUANTILES}
            batches = sum(self.batch_sizes.values())
            return {
                "uptime_s": round(time.time() - self.started, 1),
                "routes": dict(by_route),
                "texts": self.texts,
                "batches": batches,
                "forward_passes": self.forward_passes,
                "mean_batch_size": round(self.texts / batches, 3) if batches else None,
                "batch_sizes": {str(size): count for size, count in sorted(self.batch_sizes.items())},
                "queued_requests": queued,
                "in_flight_requests": self.in_flight,
                "resident_memory_mb": round(resident_memory_mb(), 1),
                "cpu_seconds": cpu_seconds_by_thread(inference_thread_ids),
            }
