"""The HTTP prediction service: FastAPI routes over an exported model, micro-batched.

Routes: ``POST /models/fastformer`` (PaddleNLP SimpleServing's wire format), ``POST /predict``,
``GET /health``, ``GET /metadata``, ``GET /metrics``, the demo page at ``GET /`` and FastAPI's own
OpenAPI docs at ``/docs``. The model loads in the background after start-up: ``/health`` answers 503
until it is ready, which includes one forward pass on a known text with finite outputs (else it says why,
and so does every prediction request, with a 503). SIGTERM ends the service gracefully: every connection
accepted before it gets its request answered, new ones are refused. A bad request gets a 4xx JSON error
``{"error": {"field": ..., "message": ...}}`` naming the field and what was expected; the service keeps serving.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Optional

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from ..errors import UserError, one_line
from .batcher import MicroBatcher, QueueFull
from .metrics import ServiceMetrics
from .page import DEMO_PAGE

__all__ = ["ServiceSettings", "create_app", "create_server", "serve"]

SIMPLE_SERVING_PATH = "/models/fastformer"
GIL_SWITCH_SECONDS = 0.0005
INLINE_TOKENIZE_CHARS = 20_000  # about 20 reviews: tokenized on the event loop in well under a millisecond
# At shutdown, how long a connection accepted before it gets to send its request (a client's connect returns
# before it writes; under a burst the event loop reads late): long enough for any live client, and an idle
# connection (a browser's preconnect) delays the exit by no more than this.
REQUEST_GRACE_SECONDS = 2.0
READINESS_TEXT = "The sound is great and the battery lasts all week."  # classified once before /health says ready


@dataclass
class ServiceSettings:
    """What ``tools/serve.py`` passes: the export, the backend and the limits of the service."""

    model_dir: str
    backend: str = "auto"  # or paddle, onnxruntime; "auto" is resolved on construction (serving_backend)
    graph: str = "auto"  # which of the export's graphs the backend runs: measured per micro-batch shape (engines.py)
    cpu_threads: int = 2
    # Inference threads, each with its own engine of cpu_threads // inference_workers threads; None: one per CPU
    # thread on onnxruntime (a micro-batch runs faster on two one-thread engines side by side than on one engine
    # of two threads: docs/deployment.md), one on paddle (Paddle Inference holds the GIL through a forward pass).
    inference_workers: Optional[int] = None
    max_batch_size: int = 32  # texts per micro-batch: one forward pass on the packed graph, passes by length on a padded one
    max_wait_ms: float = 5.0
    max_queue: int = 256  # requests waiting for the inference thread; one more is answered 503
    max_texts_per_request: int = 256
    max_body_bytes: int = 1 << 20

    def __post_init__(self):
        if self.backend == "auto":
            from ..deploy.predictor import serving_backend

            self.backend = serving_backend(self.model_dir)
        if self.inference_workers is None:  # no more engines than the machine has cores, whatever --cpu_threads says
            self.inference_workers = min(self.cpu_threads, os.cpu_count() or 1) if self.backend == "onnxruntime" else 1


class BadRequest(Exception):
    """A request the service refuses: status code, the field at fault and what was expected."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=status)


async def _json_body(request: Request, limit: int) -> object:
    """The request body as JSON, refusing one over ``limit`` bytes, not UTF-8 or not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, "body", f"the body has {declared} bytes; expected at most {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, "body", f"the body exceeds {limit} bytes")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(400, "body", f"not valid UTF-8 (byte {error.start}); expected a UTF-8 JSON body") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise BadRequest(400, "body", f"not valid JSON ({one_line(error)[:200]}); expected a JSON object") from None


def _texts(value: object, field: str, limit: int) -> list:
    """A non-empty list of non-blank strings (a single string counts as a list of one), at most ``limit``."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise BadRequest(422, field, f"got {type(value).__name__}; expected a list of strings")
    if not value:
        raise BadRequest(422, field, "got an empty list; expected at least one text")
    if len(value) > limit:
        raise BadRequest(413, field, f"got {len(value)} texts; expected at most {limit} per request")
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise BadRequest(422, f"{field}[{index}]", f"got {type(text).__name__}; expected a string")
        if not text.strip():
            raise BadRequest(422, f"{field}[{index}]", "is empty or whitespace; expected some text")
    return value


def _object(value: object, field: str, allowed: tuple) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(422, field, f"got {type(value).__name__}; expected a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise BadRequest(422, f"{field}.{unknown[0]}" if field else unknown[0], f"is not a known field; expected {', '.join(allowed)}")
    return value


def _positive_int(value: object, field: str) -> Optional[int]:
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise BadRequest(422, field, f"got {value!r}; expected a positive integer")
    return value


def _check_predicts(predictor) -> None:
    """One forward pass on a known text, whose probabilities must be finite: an export that loads yet predicts NaN
    (damaged weights) would otherwise be "ready" and answer every request with a 500."""
    try:
        (result,) = predictor.predict([READINESS_TEXT])
        if not all(map(math.isfinite, result["probabilities"].values())):
            raise UserError(f"{predictor.model_dir}: non-finite probabilities {result['probabilities']}")
    except UserError as error:  # the predictor itself refuses NaN or inf probabilities, naming the export
        raise UserError(f"the model failed its readiness check (one text classified at start-up): {one_line(error)}") from None


class _Service:
    """The state behind the routes: the model (once loaded), the batcher and the metrics."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.metrics = ServiceMetrics()
        self.predictor = None
        self.batcher: Optional[MicroBatcher] = None
        self.load_error: Optional[str] = None
        self.ready = threading.Event()

    def load(self) -> None:
        """Load the model, check that it predicts, and start the inference threads; a failure is kept for /health
        to report (and /predict to answer 503 with)."""
        from ..deploy.predictor import Predictor

        settings = self.settings
        try:
            threads = max(1, settings.cpu_threads // settings.inference_workers)
            predictors = [
                Predictor(settings.model_dir, backend=settings.backend, cpu_threads=threads, batch_size=settings.max_batch_size,
                          graph=settings.graph)
                for _ in range(settings.inference_workers)
            ]  # fmt: skip
            for predictor in predictors:
                _check_predicts(predictor)
            self.predictor = predictors[0]  # the one that tokenizes (on the event loop) and describes the model
            predicts = [functools.partial(self._predict, predictor) for predictor in predictors]
            self.batcher = MicroBatcher(predicts, settings.max_batch_size, settings.max_wait_ms, settings.max_queue)
            self.ready.set()
        except UserError as error:
            self.load_error = one_line(error)
        except Exception as error:  # noqa: BLE001  any library's failure: the service says so instead of loading forever
            self.load_error = f"{type(error).__name__}: {one_line(error)[:300]}"

    def _predict(self, predictor, items: list) -> list:
        """One micro-batch of encoded texts, on the inference thread (the predictor runs it as one packed pass, or in
        passes grouped by length on a padded graph)."""
        passes_before = predictor.forward_passes
        results = predictor.predict_encoded([ids for ids, _ in items], [cut for _, cut in items])
        self.metrics.record_batch(len(items), predictor.forward_passes - passes_before)
        return results

    async def classify(self, texts: list, max_seq_len: Optional[int]) -> list:
        if not self.ready.is_set():
            raise BadRequest(503, "model", self.load_error or "the model is still loading; retry shortly")
        limit = min(max_seq_len or self.predictor.max_seq_len, self.predictor.max_seq_len)
        # Tokenizing here, off the inference thread, overlaps it with the forward passes of earlier requests
        # (onnxruntime releases the GIL while it runs); the inference thread only pads and runs the model.
        # A large request is tokenized on a worker thread, so that the event loop keeps serving meanwhile.
        if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
            token_ids, truncated = self.predictor.encode(texts, [limit] * len(texts))
        else:
            encode = functools.partial(self.predictor.encode, texts, [limit] * len(texts))
            token_ids, truncated = await asyncio.get_running_loop().run_in_executor(None, encode)
        try:
            future = self.batcher.submit(list(zip(token_ids, truncated)))
        except QueueFull as full:
            raise BadRequest(503, "queue", str(full)) from None
        return await future

    def metadata(self) -> dict:
        settings = self.settings
        return {
            "model_dir": settings.model_dir,
            "backend": settings.backend,
            "graph": self.predictor.graph if self.predictor else None,
            "engines": self.predictor.engine_choice.describe() if self.predictor else None,
            "cpu_threads": settings.cpu_threads,
            "inference_workers": settings.inference_workers,
            "ready": self.ready.is_set(),
            "labels": self.predictor.label_names if self.predictor else None,
            "max_seq_len": self.predictor.max_seq_len if self.predictor else None,
            "limits": {k: v for k, v in asdict(settings).items() if k.startswith("max_")},
        }


# ----------------------------------------------------------------------------------------------
# routes (the service is request.app.state.service)
# ----------------------------------------------------------------------------------------------
async def predict(request: Request):
    """Classify texts: label, score, probabilities by label name, and whether each text was cut."""
    service = request.app.state.service
    limits = service.settings
    body = _object(await _json_body(request, limits.max_body_bytes), "", ("texts", "max_seq_len"))
    if "texts" not in body:
        raise BadRequest(422, "texts", 'is missing; expected {"texts": ["...", ...]}')
    texts = _texts(body["texts"], "texts", limits.max_texts_per_request)
    results = await service.classify(texts, _positive_int(body.get("max_seq_len"), "max_seq_len"))
    # A JSONResponse as it is: FastAPI would otherwise walk every probability through jsonable_encoder.
    return JSONResponse({"results": results})


async def simple_serving(request: Request):
    """PaddleNLP SimpleServing's format: ``{"data": {"text": [...]}, "parameters": {...}}`` -> ``{"result": {...}}``."""
    service = request.app.state.service
    limits = service.settings
    body = _object(await _json_body(request, limits.max_body_bytes), "", ("data", "parameters"))
    data = _object(body.get("data"), "data", ("text", "text_pair"))
    if "text" not in data:
        raise BadRequest(422, "data.text", 'is missing; expected {"data": {"text": ["...", ...]}}')
    if data.get("text_pair") is not None:  # PaddleNLP's clients send it as null for single texts
        raise BadRequest(422, "data.text_pair", "text pairs are not offered; expected null or no text_pair")
    texts = _texts(data["text"], "data.text", limits.max_texts_per_request)
    given = body.get("parameters")
    parameters = _object({} if given is None else given, "parameters", ("max_seq_len", "batch_size", "prob_limit"))
    _positive_int(parameters.get("batch_size"), "parameters.batch_size")  # accepted; the service batches itself
    results = await service.classify(texts, _positive_int(parameters.get("max_seq_len"), "parameters.max_seq_len"))
    names = service.predictor.label_names
    return JSONResponse({
        "result": {
            "label": [names.index(result["label"]) for result in results],
            "confidence": [result["score"] for result in results],
            "label_name": [result["label"] for result in results],
            "probabilities": [result["probabilities"] for result in results],
            "truncated": [result["truncated"] for result in results],
        }
    })  # fmt: skip


async def health(request: Request):
    """200 once the model is loaded and serving, 503 before (or if loading failed, with the reason)."""
    service = request.app.state.service
    if service.ready.is_set():
        return {"status": "ready"}
    status = "failed" if service.load_error else "loading"
    return JSONResponse({"status": status, "error": service.load_error}, status_code=503)


async def metadata(request: Request):
    """Labels, maximum length, backend, model directory and limits."""
    return request.app.state.service.metadata()


async def metrics(request: Request):
    """Requests and errors per route, batch sizes, latency quantiles, queue, memory, CPU seconds by thread."""
    service, batcher = request.app.state.service, request.app.state.service.batcher
    return service.metrics.snapshot(queued=batcher.queued if batcher else 0, inference_thread_ids=batcher.thread_ids if batcher else ())


async def page(request: Request):
    return HTMLResponse(DEMO_PAGE)


ROUTES = (
    ("/predict", predict, "POST"),
    (SIMPLE_SERVING_PATH, simple_serving, "POST"),
    ("/health", health, "GET"),
    ("/metadata", metadata, "GET"),
    ("/metrics", metrics, "GET"),
)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    """Load the model in the background; at shutdown (after requests in flight), end the inference thread."""
    service = app.state.service
    loop = asyncio.get_running_loop()
    # Paddle installs C handlers for SIGTERM/SIGINT when it sets up, which would end the process at once;
    # once the model is loaded (or failed to), the main thread puts back uvicorn's, which shut down gracefully.
    # Only the main thread can set signal handlers: an app whose loop runs elsewhere (a test client) leaves them be.
    in_main_thread = threading.current_thread() is threading.main_thread()
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)} if in_main_thread else {}

    def load_then_restore_signals():
        try:
            service.load()
        finally:
            for number, handler in handlers.items():
                if callable(handler):
                    loop.call_soon_threadsafe(signal.signal, number, handler)

    threading.Thread(target=load_then_restore_signals, name="model-loader", daemon=True).start()
    yield
    if service.batcher is not None:
        await loop.run_in_executor(None, service.batcher.stop)


class _CountRequests:
    """ASGI middleware: count every request by route and status, time it, and answer an unexpected failure as
    JSON (500). Plain ASGI rather than ``@app.middleware("http")``, whose per-request task and body
    streaming cost more event-loop time than a small prediction request itself."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = scope["app"].state.service.metrics
        started, answer = time.perf_counter(), {"status": 500, "started": False}

        async def send_noting_status(message):
            if message["type"] == "http.response.start":
                answer.update(status=message["status"], started=True)
            await send(message)

        metrics.request_started()
        try:
            await self.app(scope, receive, send_noting_status)
        except Exception as error:  # noqa: BLE001  e.g. the engine failed on a batch: the client gets JSON
            if answer["started"]:
                raise
            response = _error(500, "model", f"{type(error).__name__}: {one_line(error)[:300]}")
            await response(scope, receive, send_noting_status)
        finally:
            # Keyed by the matched route (the router puts it in the scope); unknown paths share one key,
            # so that a scanner's made-up paths cannot grow the metrics.
            path = getattr(scope.get("route"), "path", "other")
            metrics.record_request(path if path in KNOWN_PATHS else "other", answer["status"], time.perf_counter() - started)


KNOWN_PATHS = {path for path, _, _ in ROUTES} | {"/"}


def create_app(settings: ServiceSettings) -> FastAPI:
    """The FastAPI application; the model starts loading when the application starts."""
    app = FastAPI(title="Fastformer text classification", lifespan=_lifespan, version="1")
    app.state.service = _Service(settings)
    for path, handler, method in ROUTES:
        app.add_api_route(path, handler, methods=[method], summary=handler.__doc__.split("\n")[0])
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.add_middleware(_CountRequests)

    @app.exception_handler(BadRequest)
    async def refuse(request: Request, error: BadRequest):
        return _error(error.status, error.field, error.message)

    return app


class _GracefulServer(uvicorn.Server):
    """uvicorn's server, whose shutdown also answers every connection accepted before it.

    uvicorn's own shutdown closes the listening socket, which resets the connections in its backlog (accepted
    by the kernel, their clients sending, not yet taken by the event loop), and closes every connection whose
    request the event loop has not read yet. Under a burst of requests a SIGTERM reset half of them. Here the
    backlog is taken first and those connections get their request read, then uvicorn's shutdown goes on:
    requests in flight finish, idle keep-alive connections close, the lifespan ends the inference threads.
    """

    async def shutdown(self, sockets: Optional[list] = None) -> None:
        # A duplicate keeps each listening socket, and its backlog, open once the server has closed its own.
        listeners = [sock.dup() for sock in sockets or []]
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()  # new connections are refused once the duplicates close too
        for listener in listeners:
            with listener:
                await self._take_backlog(listener)
        await self._wait_for_requests()
        await super().shutdown(sockets)

    async def _take_backlog(self, listener) -> None:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        for _ in range(self.config.backlog):  # bounded: a flood of new connections must not hold the shutdown
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):  # the backlog is empty
                return
            except ConnectionAbortedError:  # the client gave up meanwhile
                continue
            protocol = functools.partial(self.config.http_protocol_class, config=self.config, server_state=self.server_state,
                                         app_state=self.lifespan.state)  # fmt: skip
            try:
                await loop.connect_accepted_socket(protocol, connection, ssl=self.config.ssl)
            except OSError:
                connection.close()

    async def _wait_for_requests(self) -> None:
        """Until every connection has started a request (or served one: then it is idle keep-alive), for at most
        REQUEST_GRACE_SECONDS; waiting lets the event loop read what clients have already sent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REQUEST_GRACE_SECONDS
        while True:
            await asyncio.sleep(0.01)
            # uvicorn's HTTP protocols have no cycle until a request's head is read; other protocols never wait.
            waiting = any(getattr(connection, "cycle", False) is None for connection in self.server_state.connections)
            if not waiting or self.force_exit or loop.time() > deadline:
                return


def create_server(settings: ServiceSettings, **options) -> uvicorn.Server:
    """The uvicorn server :func:`serve` runs on its socket (``options`` go to ``uvicorn.Config``)."""
    # Requests in flight get this long to finish after SIGTERM; uvicorn refuses new connections at once.
    # No proxy-header rewriting: the service answers its callers directly (put a proxy in front and set it there).
    options = {"log_level": "warning", "access_log": False, "proxy_headers": False, "timeout_graceful_shutdown": 30, **options}
    return _GracefulServer(uvicorn.Config(create_app(settings), **options))


def serve(settings: ServiceSettings, host: str, port: int) -> None:
    """Check the export, bind ``host:port`` (one-line errors for both), then serve until SIGTERM or Ctrl-C."""
    import logging
    import socket

    from ..deploy.predictor import check_export

    check_export(settings.model_dir, settings.backend, graph=settings.graph)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # connections of a socket that says it is TCP; without it every keep-alive answer waited ~40 ms for
    # the client's delayed ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except (OSError, OverflowError) as error:
        listener.close()
        raise UserError(f"cannot listen on {host}:{port} ({getattr(error, 'strerror', None) or error}); choose another --port or --host") from None
    logging.getLogger("fastformer_zoo").info(
        "serving %s with %s on http://%s:%d (demo page /, API docs /docs); the model loads now, /health says when it is ready",
        settings.model_dir, settings.backend, host, port,
    )  # fmt: skip
    # The inference thread needs the GIL for a moment after each forward pass, while the event loop holds it
    # for a burst of requests; at Python's default 5 ms switch interval it waited that long each time.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    create_server(settings).run(sockets=[listener])
