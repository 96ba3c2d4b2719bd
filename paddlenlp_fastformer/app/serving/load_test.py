"""Load-testing the prediction service: latency and throughput at several concurrencies, memory under a soak.

Each request carries one text to ``POST /predict``. The client speaks HTTP/1.1 over asyncio streams
with keep-alive, written here rather than taken from httpx or requests because a load generator on
the machine it measures must cost little CPU (the service has 2 cores to share with it).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

__all__ = ["LevelResult", "run_level", "cpu_ms_per_request", "soak", "get_json", "read_texts", "BAD_BODIES"]

# Bad requests mixed into the soak: each must get a 4xx and leave the service as it was.
BAD_BODIES = (
    b"{not json",
    b'{"texts": []}',
    b'{"texts": ["   "]}',
    b'{"texts": [42]}',
    b'{"texts": "\xff\xfe"}',
    b'{"wrong": ["x"]}',
)


@dataclass
class LevelResult:
    """One concurrency level: how many requests, how many failed, texts/s and latency quantiles (ms)."""

    concurrency: int
    requests: int
    failed: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def texts_per_second(self) -> float:
        """Texts answered with 200, per second of the level's wall time."""
        return (self.requests - self.failed) / self.seconds


class _Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        self.writer.write(head + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:  # the service closed the connection (a keep-alive timeout, or it stopped)
            raise ConnectionError("the service closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _address(url: str) -> tuple[str, int]:
    """Host and port of ``url``, which must be on this machine: a load test is never aimed at someone else's host."""
    from ..errors import UserError

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise UserError(f"--url {url!r}: expected http:// on a loopback address ({', '.join(LOOPBACK)})")
    return parts.hostname, parts.port or 80


async def _send(connection: _Connection, body: bytes) -> int:
    """The status of one ``POST /predict``; 0 when the connection failed (it is reopened for the next)."""
    try:
        return (await connection.request("POST", "/predict", body))[0]
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        await connection.close()
        return 0


async def _worker(connection: _Connection, bodies: list, latencies: list, failures: list) -> None:
    while bodies:
        started = time.perf_counter()
        status = await _send(connection, bodies.pop())
        latencies.append(time.perf_counter() - started)
        if status != 200:
            failures.append(status)


async def _run(url: str, texts: Sequence[str], concurrency: int) -> LevelResult:
    host, port = _address(url)
    bodies = [json.dumps({"texts": [text]}).encode() for text in reversed(texts)]
    connections = [_Connection(host, port) for _ in range(concurrency)]
    latencies, failures = [], []
    started = time.perf_counter()
    await asyncio.gather(*(_worker(connection, bodies, latencies, failures) for connection in connections))
    seconds = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    quantiles = np.quantile(np.array(latencies) * 1000, (0.5, 0.95, 0.99))
    return LevelResult(concurrency, len(texts), len(failures), seconds, *map(float, quantiles))


def _run_async(coroutine):
    """Run ``coroutine`` on uvloop where it is installed (it is with the service): the load generator shares
    the CPU with the service it measures, and uvloop's streams cost it about half of asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def run_level(url: str, texts: Sequence[str], concurrency: int) -> LevelResult:
    """Send every text of ``texts`` as its own request, ``concurrency`` at a time."""
    return _run_async(_run(url, texts, concurrency))


def cpu_ms_per_request(before: dict, after: dict, generator_seconds: float, level: LevelResult) -> dict:
    """Where the machine's CPU went during one level, in CPU milliseconds per request: the service's threads
    (from its /metrics), this load generator, and what the machine's cores offered in the level's wall time."""
    per_request = 1000 / level.requests
    spent = {f"cpu_ms_{role}": round((after[role] - before[role]) * per_request, 3) for role in after if role in before}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {**spent, "cpu_ms_load_generator": round(generator_seconds * per_request, 3),
            "cpu_ms_available": round(cores * level.seconds * per_request, 3)}  # fmt: skip


async def _get(url: str, path: str) -> dict:
    from ..errors import UserError

    connection = _Connection(*_address(url))
    try:
        status, payload = await connection.request("GET", path)
        answer = json.loads(payload)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
        raise UserError(f"{url}{path}: no answer from a prediction service ({type(error).__name__}: {error}); is tools/serve.py running there?") from None
    finally:
        await connection.close()
    if status != 200 or not isinstance(answer, dict):
        raise UserError(f"{url}{path}: answered {status} {str(answer)[:200]}; expected tools/serve.py, ready")
    return answer


def get_json(url: str, path: str) -> dict:
    """``GET path`` of the service at ``url``, decoded; a one-line error when no ready service answers."""
    return _run_async(_get(url, path))


async def _soak(url: str, texts: Sequence[str], requests: int, bad_fraction: float, concurrency: int, seed: int):
    rng = random.Random(seed)
    host, port = _address(url)
    bodies, expected_bad = [], 0
    for index in range(requests):
        if rng.random() < bad_fraction:
            bodies.append((rng.choice(BAD_BODIES), True))
            expected_bad += 1
        else:
            bodies.append((json.dumps({"texts": [texts[index % len(texts)]]}).encode(), False))
    outcomes = {"valid_ok": 0, "valid_failed": 0, "bad_refused_4xx": 0, "bad_other": 0}

    async def work():
        connection = _Connection(host, port)
        while bodies:
            body, bad = bodies.pop()
            status = await _send(connection, body)
            if bad:
                outcomes["bad_refused_4xx" if 400 <= status < 500 else "bad_other"] += 1
            else:
                outcomes["valid_ok" if status == 200 else "valid_failed"] += 1
        await connection.close()

    await asyncio.gather(*(work() for _ in range(concurrency)))
    return outcomes


def soak(url: str, texts: Sequence[str], requests: int, bad_fraction: float = 0.1, concurrency: int = 8, seed: int = 0) -> dict:
    """``requests`` requests, a ``bad_fraction`` of them bad, and the service's memory before and after."""
    before = get_json(url, "/metrics")["resident_memory_mb"]
    outcomes = _run_async(_soak(url, texts, requests, bad_fraction, concurrency, seed))
    after = get_json(url, "/metrics")["resident_memory_mb"]
    return {"requests": requests, **outcomes, "memory_before_mb": before, "memory_after_mb": after}


def read_texts(path: str) -> list:
    """The texts of a ``.txt`` file (one per non-blank line), or of a prepared split or raw labelled file."""
    from ..data.readers import iter_reviews
    from ..errors import UserError

    if Path(path).suffix == ".txt":
        try:
            texts = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot be read as UTF-8 text ({error}); expected one text per line", path) from None
    else:
        texts = [example["text"] for example in iter_reviews(path)]
    if not texts:
        raise UserError("holds no texts to send", path)
    return texts
