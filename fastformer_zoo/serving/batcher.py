"""Micro-batching: texts of concurrent requests run together, on one inference thread, never on the event loop.

Requests put their texts on a bounded queue and wait on a future. An inference thread (one per predictor,
each with its own engine) takes the oldest request, then keeps taking requests until the batch holds
``max_batch_size`` texts or the oldest has waited ``max_wait_ms``, predicts the whole batch (one packed
forward pass, or passes by length on a padded graph) and hands each request its share. A full queue refuses a request at once (the service
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
    """Batches the texts of concurrent requests for ``predict(texts) -> results`` (one result per text); with
    several ``predicts``, one inference thread runs each, and they take batches from the same queue."""

    def __init__(
        self,
        predicts: Sequence[Callable[[list], list]],
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
    ):
        self.max_batch_size = max_batch_size
        self._max_wait = max_wait_ms / 1000
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(predict,), name=f"inference-{number}", daemon=True)
            for number, predict in enumerate(predicts)
        ]
        for thread in self._threads:
            thread.start()

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
    def thread_ids(self) -> list:
        """The inference threads' native ids (for CPU accounting)."""
        return [thread.native_id for thread in self._threads]

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then end the inference threads."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def _take(self, timeout: float) -> Optional[_Request]:
        """A request from the queue within ``timeout`` seconds (0: only one already there)."""
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _collect(self, first: _Request) -> tuple[list[_Request], Optional[_Request]]:
        """``first`` and the requests that arrive before the batch is full or ``first`` has waited long enough;
        and the request taken that did not fit (it starts this thread's next batch), if any."""
        batch, size = [first], len(first.texts)
        deadline = first.enqueued + self._max_wait
        while size < self.max_batch_size:
            request = self._take(max(deadline - time.perf_counter(), 0))
            if request is None:
                break
            if size + len(request.texts) > self.max_batch_size:
                return batch, request
            batch.append(request)
            size += len(request.texts)
        return batch, None

    def _work(self, predict: Callable[[list], list]) -> None:
        held = None
        while True:
            first = held or self._take(0.1)
            if first is None:
                if self._stopping.is_set():
                    return
                continue
            batch, held = self._collect(first)
            self._run(predict, batch)

    @staticmethod
    def _run(predict: Callable[[list], list], batch: list) -> None:
        """Predict one batch and hand each request its share, or the error; never lets an exception end the worker."""
        texts = [text for request in batch for text in request.texts]
        try:
            results, error = predict(texts), None
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
