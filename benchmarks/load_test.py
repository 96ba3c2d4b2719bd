"""Load-test a running service (tools/serve.py) on this machine: throughput and latency per concurrency.

    python -m benchmarks.load_test --url http://127.0.0.1:8189 --texts data/marc_en/test.jsonl --concurrency 1 8 32 \\
        --requests 2000 [--model_dir output/marc_en/inference] [--soak 10000 --bad_fraction 0.1] [--csv load_test.csv]

Each request carries one text (cycled from --texts: a prepared split, a raw labelled file, or a .txt file with
one text per line). Per concurrency level: texts/s, p50/p95/p99 latency, failed requests, and the service's
memory before and after, and where the CPU went per request (the service's event loop, inference threads
and engine workers, and this load generator, against what the cores offered). With --model_dir (the export
the service runs) the offline predictor's texts/s on the same texts, measured in this process before the
load on the service's graph and on the portable one, the faster of the two, is the reference (and, for
comparison, the predictor given them a micro-batch at a time in arrival order). --soak then sends that
many requests with --bad_fraction of them malformed, and reports the service's memory before and after.
Only loopback URLs are accepted. Prints a Markdown table and writes the rows as CSV.

Each request carries one text to ``POST /predict``. The client speaks HTTP/1.1 over asyncio streams
with keep-alive, written here rather than taken from httpx or requests because a load generator on
the machine it measures must cost little CPU (the service has 2 cores to share with it).
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

from fastformer_zoo.errors import UserError, one_line
from paddlenlp_fastformer.file_utils import write_text_atomically

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
    from fastformer_zoo.data.readers import iter_reviews

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


# ----------------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8189")
    parser.add_argument("--texts", required=True, help="texts to send, one per request")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level (default: 2000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--model_dir", help="the export the service runs: measure the offline predictor on the same texts")
    parser.add_argument("--soak", type=int, default=0, help="then send this many requests, bad ones mixed in")
    parser.add_argument("--bad_fraction", type=float, default=0.1)
    parser.add_argument("--csv", default="load_test.csv", help="where the rows go as CSV (default: load_test.csv)")
    return parser


def offline_texts_per_second(model_dir: str, texts: list, batch_size: int, threads: int, backend: str, graph: str) -> tuple:
    """The predictor alone, in this process, on the same texts, on the service's backend, graph and threads; the
    median of three runs of each way of batching:

    - as ``tools/infer.py`` does (the reference): all texts in one call, in passes of at most the service's
      micro-batch size (on a padded graph, sorted by length first);
    - in arrival order, ``batch_size`` texts at a time: the best a micro-batch of that many requests
      can do, which shows how much of the service's gap is batching and how much is HTTP.
    """
    from fastformer_zoo.deploy.predictor import Predictor, texts_per_second

    predictor = Predictor(model_dir, backend=backend, cpu_threads=threads, batch_size=batch_size, graph=graph)
    predictor.predict(texts[:batch_size])  # warm-up
    sorted_runs, arrival_runs = [], []
    for _ in range(3):
        sorted_runs.append(texts_per_second(predictor, texts))
        arrival_runs.append(texts_per_second(predictor, texts, per_call=batch_size))
    return statistics.median(sorted_runs), statistics.median(arrival_runs)


def print_cpu_table(rows: list) -> None:
    roles = [key for key in rows[0] if key.startswith("cpu_ms_")]
    print("\nCPU ms per request (service threads from its /metrics; available = cores x wall time):")
    print("| concurrency | " + " | ".join(role.removeprefix("cpu_ms_").replace("_", " ") for role in roles) + " |")
    print("|---:|" + "---:|" * len(roles))
    for row in rows:
        print(f"| {row['concurrency']} | " + " | ".join(f"{row[role]:.3f}" for role in roles) + " |")


def measure(args, texts: list) -> list:
    metadata = get_json(args.url, "/metadata")
    offline = None
    if args.model_dir:
        limits = metadata["limits"]
        batch = limits["max_batch_size"]
        # The service's graph, and the portable one: a graph that suits micro-batches may run a whole file slower,
        # and the reference is the fastest way the offline predictor has.
        references = []
        for graph in dict.fromkeys([metadata["graph"], "portable"]):
            whole, arrival = offline_texts_per_second(args.model_dir, texts, batch, metadata["cpu_threads"], metadata["backend"], graph)
            references.append(whole)
            print(f"offline predictor ({metadata['backend']}, {graph} graph, {metadata['cpu_threads']} threads): {whole:,.1f} "
                  f"texts/s on the same {len(texts)} texts in one call, passes of at most {batch}; {arrival:,.1f} texts/s when given "
                  f"them {batch} at a time in arrival order, as a micro-batch is (median of 3 runs each)")  # fmt: skip
        offline = max(references)
        print(f"reference (vs offline): {offline:,.1f} texts/s, the faster in one call")
    run_level(args.url, texts[:64], max(args.concurrency))  # warm-up of the service
    rows = []
    for concurrency in args.concurrency:
        before = get_json(args.url, "/metrics")
        generator_cpu = time.process_time()
        level = run_level(args.url, texts, concurrency)
        generator_cpu = time.process_time() - generator_cpu
        after = get_json(args.url, "/metrics")
        rows.append({
            "concurrency": concurrency, "requests": level.requests, "failed": level.failed,
            "texts_per_s": round(level.texts_per_second, 1),
            "vs_offline": round(level.texts_per_second / offline, 3) if offline else None,
            "p50_ms": round(level.p50_ms, 1), "p95_ms": round(level.p95_ms, 1), "p99_ms": round(level.p99_ms, 1),
            "memory_before_mb": before["resident_memory_mb"], "memory_after_mb": after["resident_memory_mb"],
            "mean_batch_size": after["mean_batch_size"],
            **cpu_ms_per_request(before["cpu_seconds"], after["cpu_seconds"], generator_cpu, level),
        })  # fmt: skip
    return rows


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.requests < 1 or min(args.concurrency) < 1 or not 0 <= args.bad_fraction <= 1:
        parser.error("--requests and --concurrency must be positive, --bad_fraction between 0 and 1")
    try:
        available = read_texts(args.texts)
        texts = [available[index % len(available)] for index in range(args.requests)]
        rows = measure(args, texts)
        print("| concurrency | requests | failed | texts/s | vs offline | p50 ms | p95 ms | p99 ms | memory MB before -> after |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for row in rows:
            ratio = f"{row['vs_offline']:.2f}x" if row["vs_offline"] else "—"
            print(f"| {row['concurrency']} | {row['requests']} | {row['failed']} | {row['texts_per_s']:,.1f} | {ratio} | "
                  f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['memory_before_mb']} -> {row['memory_after_mb']} |")  # fmt: skip
        print_cpu_table(rows)
        if args.soak:
            result = soak(args.url, available, args.soak, args.bad_fraction)
            print("soak: " + ", ".join(f"{key} {value}" for key, value in result.items()))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomically(args.csv, buffer.getvalue())
    except (UserError, OSError) as error:  # the tools' contract: one line, exit 2
        sys.stderr.write(f"error: {one_line(error)}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
