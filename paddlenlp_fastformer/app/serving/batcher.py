"""Micro-batching: texts of concurrent requests run together, on one inference thread, never on the event loop.

Requests put their texts on a bounded queue and wait on a future. One worker thread takes the oldest
request, then keeps taking requests until the batch holds ``max_batch_size`` texts or the oldest has
waited ``max_wait_ms``, predicts the whole batch (one packed forward pass, or passes by length on a
padded graph) and hands each request its share. A full queue refuses a request at once (the service
answers 503) instead of letting waits grow without bound.

Written here rather than taken from a library: PaddleNLP's SimpleServing runs one request per forward
pass, and the general-purpose batching servers (Triton, TorchServe) are separate processes that cannot
load a Paddle 3 export.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

__all__ = ["MicroBatcher", "QueueFull"]


class QueueFull(Exception):
    """The queue holds ``max_queue`` requests already."""


@dataclass
class _Request:
    texts: Sequence[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Batches the texts of concurrent requests for ``predict(texts) -> results`` (one result per text)."""

    def __init__(
        self,
        predict: Callable[[list], list],
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
    ):
        self._predict = predict
        self.max_batch_size = max_batch_size
        self._max_wait = max_wait_ms / 1000
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._held: Optional[_Request] = None  # taken from the queue, but for the next batch
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="inference", daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str]) -> asyncio.Future:
        """Queue ``texts``; the returned future (of the running loop) gets their results, or the error."""
        if self._stopping.is_set():
            raise QueueFull("the service is shutting down")
        loop = asyncio.get_running_loop()
        request = _Request(list(texts), loop.create_future(), loop)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are waiting; retry shortly") from None
        return request.future

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def thread_id(self) -> int:
        """The inference thread's native id (for CPU accounting)."""
        return self._thread.native_id

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then end the worker thread."""
        self._stopping.set()
        self._thread.join(timeout)

    def _take(self, timeout: float) -> Optional[_Request]:
        """The held request, else one from the queue within ``timeout`` seconds (0: only one already there)."""
        if self._held is not None:
            request, self._held = self._held, None
            return request
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _collect(self, first: _Request) -> list[_Request]:
        """``first`` and the requests that arrive before the batch is full or ``first`` has waited long enough."""
        batch, size = [first], len(first.texts)
        deadline = first.enqueued + self._max_wait
        while size < self.max_batch_size:
            request = self._take(max(deadline - time.perf_counter(), 0))
            if request is None:
                break
            if size + len(request.texts) > self.max_batch_size:
                self._held = request  # it starts the next batch
                break
            batch.append(request)
            size += len(request.texts)
        return batch

    def _work(self) -> None:
        while True:
            first = self._take(0.1)
            if first is None:
                if self._stopping.is_set():
                    return
                continue
            self._run(self._collect(first))

    def _run(self, batch: list) -> None:
        """Predict one batch and hand each request its share, or the error; never lets an exception end the worker."""
        texts = [text for request in batch for text in request.texts]
        try:
            results, error = self._predict(texts), None
        except Exception as failure:  # noqa: BLE001  every waiting request gets the error, the worker goes on
            results, error = None, failure
        start = 0
        for request in batch:
            share = None if error else results[start : start + len(request.texts)]
            start += len(request.texts)
            try:
                request.loop.call_soon_threadsafe(_settle, request.future, share, error)
            except RuntimeError:  # the loop is closed: nobody waits for this answer any more
                pass


def _settle(future: asyncio.Future, result, error) -> None:
    if future.cancelled():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
