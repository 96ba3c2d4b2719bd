"""What ``GET /metrics`` reports: requests and errors by route and status, batch sizes, latency quantiles, memory.

Kept in fixed-size structures (a window of the latest latencies), so that a long-running service
does not grow with the number of requests it has answered.
"""
from __future__ import annotations

import collections
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

    def snapshot(self, queued: int) -> dict:
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
            }
