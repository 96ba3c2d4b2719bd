"""The prediction service on a tiny trained export.

The routes are tested through the service's ASGI app in this process (fastapi's TestClient runs its event
loop, lifespan and inference threads, as uvicorn does): both request formats, micro-batching (read from
/metrics), every kind of bad request, queue overflow, the onnxruntime backend. What needs a real server
runs tools/serve.py on a free loopback port: the load test, the demo page in headless Chromium, and
graceful shutdown on SIGTERM; the shutdown of connections the event loop has not taken yet runs the
service's uvicorn server in this process, on a loopback port.
"""
import asyncio
import concurrent.futures
import csv
import http.client
import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_main

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import export_model  # noqa: E402
from benchmarks import load_test  # noqa: E402
import serve  # noqa: E402

TEXTS = ["great sound and a solid build", "it broke after two days", "works fine", "awful battery, do not buy"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(port, path, body=None, raw=None, timeout=30):
    """(status, decoded JSON) of a GET (no body) or POST to the service."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Server:
    """tools/serve.py in a subprocess, ready once /health says so."""

    def __init__(self, model_dir, *options):
        self.port = free_port()
        command = [sys.executable, "tools/serve.py", "--model_dir", str(model_dir), "--port", str(self.port), "--cpu_threads", "1", *map(str, options)]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the service ended: {self.process.stderr.read()[-2000:]}")
            try:
                if call(self.port, "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("the service did not become ready in 120 s")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def call(self, path, body=None, raw=None, timeout=30):
        return call(self.port, path, body, raw, timeout)


class InProcessService:
    """The service's ASGI app in this process, ready once /health says so; ``call`` as ``Server.call``."""

    def __init__(self, model_dir, expect_ready=True, **settings):
        from fastapi.testclient import TestClient

        from fastformer_zoo.serving.service import ServiceSettings, create_app

        self.client = TestClient(create_app(ServiceSettings(model_dir=str(model_dir), **{"cpu_threads": 1, **settings})))
        self.client.__enter__()  # runs the lifespan: the model loads in the background
        deadline = time.time() + 120
        while self.call("/health")[1].get("status") == "loading":
            if time.time() > deadline:
                raise AssertionError("the service was still loading after 120 s")
            time.sleep(0.1)
        if expect_ready:
            assert self.call("/health")[0] == 200, self.call("/health")

    def call(self, path, body=None, raw=None, timeout=30):
        if body is None and raw is None:
            response = self.client.get(path, timeout=timeout)
        else:
            data = raw if raw is not None else json.dumps(body).encode()
            response = self.client.post(path, content=data, headers={"Content-Type": "application/json"}, timeout=timeout)
        return response.status_code, response.json()

    def stop(self):
        self.client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def export_dir(trained, tmp_path_factory):
    config, run = trained
    target = tmp_path_factory.mktemp("serving") / "export"
    export_model.main(["-c", str(config), "-o", f"Global.pretrained_model={run / 'best'}", f"Global.save_inference_dir={target}"])
    return target


@pytest.fixture(scope="module")
def service(export_dir):
    running = InProcessService(export_dir, max_batch_size=8, max_wait_ms=20, max_texts_per_request=16, max_body_bytes=20000)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(export_dir):
    """tools/serve.py for real, for what needs a socket: the load test and the browser."""
    running = Server(export_dir, "--max_batch_size", 8, "--max_wait_ms", 20)
    yield running
    running.stop()


def test_both_formats_agree_with_the_offline_predictor(service, export_dir):
    from fastformer_zoo.deploy.predictor import Predictor

    offline = Predictor(str(export_dir), cpu_threads=1).predict(TEXTS)
    status, body = service.call("/predict", {"texts": TEXTS})
    assert status == 200
    for served, expected in zip(body["results"], offline):
        assert served["label"] == expected["label"] and served["truncated"] is False
        np.testing.assert_allclose(list(served["probabilities"].values()), list(expected["probabilities"].values()), atol=1e-5)
    status, simple = service.call("/models/fastformer", {"data": {"text": TEXTS}, "parameters": {"max_seq_len": 64, "batch_size": 2}})
    assert status == 200
    names = service.call("/metadata")[1]["labels"]
    assert [names[index] for index in simple["result"]["label"]] == [r["label"] for r in offline]
    np.testing.assert_allclose(simple["result"]["confidence"], [r["score"] for r in offline], atol=1e-5)


def test_health_metadata_metrics_and_docs(service, export_dir):
    assert service.call("/health") == (200, {"status": "ready"})
    status, metadata = service.call("/metadata")
    assert metadata["labels"] == ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"] and metadata["model_dir"] == str(export_dir)
    assert metadata["max_seq_len"] == 64 and metadata["backend"] == "paddle"
    status, metrics = service.call("/metrics")
    assert status == 200 and {"routes", "batch_sizes", "forward_passes", "resident_memory_mb"} <= set(metrics)
    cpu = metrics["cpu_seconds"]  # the service has loaded a model and answered: each part has spent CPU
    assert cpu["process"] > 0 and cpu["event_loop"] > 0 and cpu["event_loop"] + cpu["inference_threads"] + cpu["other_threads"] <= cpu["process"] + 0.05
    status, schema = service.call("/openapi.json")
    assert {"/predict", "/models/fastformer", "/health", "/metadata", "/metrics"} <= set(schema["paths"])


def test_concurrent_requests_are_micro_batched(service):
    before = service.call("/metrics")[1]
    texts = [f"{TEXTS[index % 4]} number {index}" for index in range(32)]
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda text: service.call("/predict", {"texts": [text]}), texts))
    after = service.call("/metrics")[1]
    alone = service.call("/predict", {"texts": texts[:8]})[1]["results"]
    assert all(status == 200 for status, _ in answers)
    for (_, body), expected in zip(answers[:8], alone):  # batched with others, each gets its own answer
        np.testing.assert_allclose(list(body["results"][0]["probabilities"].values()), list(expected["probabilities"].values()), atol=1e-5)
    assert after["routes"]["/predict"]["requests"] - before["routes"].get("/predict", {"requests": 0})["requests"] == 32
    assert after["texts"] - before["texts"] == 32
    passes = after["forward_passes"] - before["forward_passes"]
    assert passes < 32, f"32 concurrent requests took {passes} forward passes"


@pytest.mark.parametrize(
    "raw, status, field",
    [
        (b"{not json", 400, "body"),
        (b'{"texts": "\xff\xfe"}', 400, "body"),
        (b"[1, 2]", 422, ""),
        (b'{"texts": 5}', 422, "texts"),
        (b'{"texts": []}', 422, "texts"),
        (b'{"texts": ["fine", "   "]}', 422, "texts[1]"),
        (b'{"texts": ["fine", 7]}', 422, "texts[1]"),
        (b'{"text": ["fine"]}', 422, "text"),
        (b'{"texts": ["fine"], "max_seq_len": -3}', 422, "max_seq_len"),
        (json.dumps({"texts": ["x"] * 17}).encode(), 413, "texts"),
        (json.dumps({"texts": ["x" * 30000]}).encode(), 413, "body"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field_and_the_service_goes_on(service, raw, status, field):
    answer = service.call("/predict", raw=raw)
    assert answer[0] == status and answer[1]["error"]["field"] == field and answer[1]["error"]["message"], answer
    assert service.call("/predict", {"texts": ["still serving"]})[0] == 200


def test_simple_serving_takes_paddlenlp_client_bodies_and_refuses_bad_ones(service):
    # what PaddleNLP's text classification client sends
    client_body = {"data": {"text": TEXTS[:2], "text_pair": None}, "parameters": {"max_seq_len": 128, "batch_size": 2, "prob_limit": 0.5}}
    status, answer = service.call("/models/fastformer", client_body)
    assert status == 200 and len(answer["result"]["label"]) == 2
    for body, field in (({"data": "x"}, "data"), ({"data": {}}, "data.text"), ({"data": {"text": ["a"]}, "parameters": {"batch_size": 0}}, "parameters.batch_size"),
                        ({"data": {"text": ["a"], "text_pair": ["b"]}}, "data.text_pair"), ({"data": {"text": ["a"]}, "parameters": [1]}, "parameters")):
        status, answer = service.call("/models/fastformer", body)
        assert status == 422 and answer["error"]["field"] == field, answer


def test_metrics_do_not_grow_with_made_up_paths(service):
    for index in range(20):
        assert service.call(f"/no/such/path/{index}")[0] == 404
    routes = service.call("/metrics")[1]["routes"]
    assert "other" in routes and routes["other"]["by_status"]["404"] >= 20
    assert not any(path.startswith("/no/") for path in routes)


def test_a_text_longer_than_the_model_reads_is_truncated_and_says_so(service):
    status, body = service.call("/predict", {"texts": [" ".join(["great"] * 200), "short"]})
    assert status == 200 and [result["truncated"] for result in body["results"]] == [True, False]
    status, body = service.call("/predict", {"texts": ["great sound and a solid build"], "max_seq_len": 2})
    assert body["results"][0]["truncated"] is True


def test_a_full_queue_answers_503_at_once(export_dir):
    running = InProcessService(export_dir, max_queue=1, max_batch_size=64, max_wait_ms=0)
    try:
        burst = [[f"{TEXTS[i % 4]} {j}" for j in range(64)] for i in range(48)]
        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            answers = list(pool.map(lambda texts: running.call("/predict", {"texts": texts}), burst))
        statuses = [status for status, _ in answers]
        assert set(statuses) <= {200, 503} and 503 in statuses and 200 in statuses, statuses
        assert all(body["error"]["field"] == "queue" for status, body in answers if status == 503)
    finally:
        running.stop()


def connected(port) -> http.client.HTTPConnection:
    """A connection to the service, established once the kernel accepted it (whether or not the server took it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.connect()
    return connection


def send_texts(connection, index) -> None:
    body = json.dumps({"texts": [f"{text} {index}" for text in TEXTS]})
    connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})


def answer(connection, index=None):
    """The status of the answer on ``connection`` (sending its request first when given its ``index``), or the
    name of the error the client got instead."""
    try:
        if index is not None:
            send_texts(connection, index)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        connection.close()


def assert_refused(port):
    with pytest.raises(ConnectionRefusedError):
        connected(port)


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight_then_refuses_new_ones(export_dir):
    """60 connections open at SIGTERM: the 30 that sent their request before it and the 30 that send it after
    (once new connections are refused) all get their answer."""
    running = Server(export_dir, "--max_batch_size", 64, "--max_wait_ms", 3000)
    connections = [connected(running.port) for _ in range(60)]
    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        for index, connection in enumerate(connections[:30]):
            send_texts(connection, index)
        early = [pool.submit(answer, connection) for connection in connections[:30]]
        running.process.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline:  # the shutdown has begun once new connections are refused
            try:
                connected(running.port).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.01)
        assert running.process.poll() is None  # 14 of the early requests still wait for their batch to fill
        late = [pool.submit(answer, connection, index) for index, connection in enumerate(connections[30:], start=30)]
        answers = [future.result() for future in early + late]
    assert answers == [200] * 60, answers
    # uvicorn re-raises the SIGTERM it handled once it is done, so the exit status says "terminated"
    assert running.process.wait(60) in (0, -signal.SIGTERM)
    assert "Termination signal" not in running.process.stderr.read()  # not paddle's abort
    with pytest.raises(OSError):
        call(running.port, "/health", timeout=2)


@pytest.mark.parametrize("loop, protocol", [("auto", "auto"), ("asyncio", "h11")])  # what serve runs; the fallbacks
def test_shutdown_answers_connections_the_event_loop_has_not_taken_or_read(export_dir, loop, protocol):
    """The service's uvicorn server on a loopback socket in this process. The test's code runs on the server's
    event loop, so that loop stands still while it connects: 10 connections wait in the listening socket's
    backlog, their requests sent, when the shutdown starts; 10 others were taken but send their request only
    once the shutdown has begun. Each gets its answer; new connections are refused."""
    from fastformer_zoo.serving.service import ServiceSettings, create_server

    server = create_server(ServiceSettings(model_dir=str(export_dir), cpu_threads=1, max_wait_ms=5), loop=loop, http=protocol)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def scenario():
        server.config.load()  # what uvicorn's Server.serve does before startup, without its signal handling
        server.lifespan = server.config.lifespan_class(server.config)
        await server.startup(sockets=[listener])
        running = asyncio.get_running_loop()
        service = server.config.app.state.service
        await running.run_in_executor(None, service.ready.wait, 120)
        taken = [connected(port) for _ in range(10)]
        while len(server.server_state.connections) < 10:
            await asyncio.sleep(0.01)
        waiting = [connected(port) for _ in range(10)]  # the event loop has not run since: none of these is taken
        for index, connection in enumerate(waiting):
            send_texts(connection, index)
        shutdown = asyncio.ensure_future(server.shutdown(sockets=[listener]))
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = [running.run_in_executor(pool, answer, connection) for connection in waiting]
            await asyncio.sleep(0.3)  # the shutdown has begun
            assert_refused(port)
            answers += [running.run_in_executor(pool, answer, connection, index) for index, connection in enumerate(taken)]
            answers = await asyncio.gather(*answers)
        await shutdown
        return answers

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        assert runner.run(scenario()) == [200] * 20


def varints(data: bytes):
    value = shift = 0
    for byte in data:
        value, shift = value | (byte & 0x7F) << shift, shift + 7
        if byte < 0x80:
            yield value
            value = shift = 0


def with_nan_weights(params_file) -> None:
    """Overwrite the first tensor of a Paddle Inference weights file (the word embeddings) with NaN, as a damaged
    export would hold. A tensor is stored as: version, LoD levels (none), version, the size of its TensorDesc,
    the TensorDesc (protobuf: field 1 the data type, field 2 each dimension), then its values."""
    data = bytearray(params_file.read_bytes())
    assert struct.unpack_from("<IQI", data) == (0, 0, 0)
    (desc_size,) = struct.unpack_from("<i", data, 16)
    fields = list(varints(data[20 : 20 + desc_size]))  # tag, value, tag, value...
    assert fields[:2] == [0x08, 5] and set(fields[2::2]) == {0x10}  # float32, then the dimensions
    count, start = int(np.prod(fields[3::2])), 20 + desc_size
    data[start : start + 4 * count] = np.full(count, np.nan, dtype="<f4").tobytes()
    params_file.write_bytes(bytes(data))


def test_an_export_that_predicts_nan_is_not_ready_and_predict_answers_503(export_dir, tmp_path):
    damaged = tmp_path / "export"
    shutil.copytree(export_dir, damaged)
    for params_file in damaged.glob("*.pdiparams"):
        with_nan_weights(params_file)
    running = InProcessService(damaged, expect_ready=False)
    try:
        status, health = running.call("/health")
        assert status == 503 and health["status"] == "failed", health
        assert "readiness check" in health["error"] and "NaN" in health["error"] and str(damaged) in health["error"]
        for path, body in (("/predict", {"texts": ["fine"]}), ("/models/fastformer", {"data": {"text": ["fine"]}})):
            status, answer_body = running.call(path, body)
            assert status == 503 and answer_body["error"]["field"] == "model" and "readiness check" in answer_body["error"]["message"]
        assert running.call("/metadata")[1]["ready"] is False
    finally:
        running.stop()


def test_auto_backend_serves_an_onnx_export_with_onnxruntime_on_two_workers(trained, export_dir, tmp_path):
    """Where the export has its ONNX graph, --backend auto runs onnxruntime (which lets the event loop run
    during a forward pass) on the packed graph; two inference workers share the queue, and every answer,
    alone or micro-batched with others, is the offline predictor's."""
    from fastformer_zoo.deploy.predictor import Predictor

    config, run = trained
    target = tmp_path / "export"
    export_model.main(["-c", str(config), "-o", f"Global.pretrained_model={run / 'best'}", f"Global.save_inference_dir={target}", "--onnx"])
    running = InProcessService(target, inference_workers=2)
    texts = [f"{TEXTS[index % 4]} number {index}" for index in range(48)]
    try:
        metadata = running.call("/metadata")[1]
        assert metadata["backend"] == "onnxruntime" and metadata["graph"] == "packed"  # a micro-batch is one pass, no padding
        assert metadata["inference_workers"] == 2
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda text: running.call("/predict", {"texts": [text]}), texts))
        metrics = running.call("/metrics")[1]
    finally:
        running.stop()
    assert all(status == 200 for status, _ in answers) and metrics["texts"] >= len(texts)
    offline = Predictor(str(export_dir), backend="paddle", cpu_threads=1).predict(texts)
    for (_, answer), expected in zip(answers, offline):
        assert answer["results"][0]["label"] == expected["label"]
        np.testing.assert_allclose(list(answer["results"][0]["probabilities"].values()), list(expected["probabilities"].values()), atol=1e-5)


def test_service_settings_resolve_the_auto_backend(export_dir):
    from fastformer_zoo.serving.service import ServiceSettings, _Service

    service = _Service(ServiceSettings(model_dir=str(export_dir), cpu_threads=1))  # backend "auto" by default
    service.load()
    try:
        assert service.ready.is_set(), service.load_error
        assert service.metadata()["backend"] == "paddle"  # this export has no ONNX graph
    finally:
        service.batcher.stop()


def test_bad_start_up_options_are_one_line(export_dir, tmp_path, capsys):
    from conftest import assert_one_line_error

    assert_one_line_error(run_main(serve.main, ["--model_dir", str(tmp_path / "missing")], capsys), "missing")
    assert_one_line_error(run_main(serve.main, ["--model_dir", str(export_dir), "--max_batch_size", "0"], capsys), "--max_batch_size")
    older = tmp_path / "older_export"  # an export made before packed graphs existed
    shutil.copytree(export_dir, older)
    for path in older.glob("inference_packed.*"):
        path.unlink()
    assert_one_line_error(run_main(serve.main, ["--model_dir", str(older), "--graph", "packed"], capsys), "holds no packed graph")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_error(run_main(serve.main, ["--model_dir", str(export_dir), "--port", str(port)], capsys), str(port))


@pytest.mark.slow
def test_load_test_tool_measures_levels_and_a_soak(server, export_dir, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    table = tmp_path / "load.csv"
    load_test.main(["--url", f"http://127.0.0.1:{server.port}", "--texts", str(texts), "--requests", "40",
                    "--concurrency", "1", "4", "--model_dir", str(export_dir), "--soak", "60", "--csv", str(table)])  # fmt: skip
    out = capsys.readouterr().out
    assert "offline predictor (" in out and "| 4 | 40 | 0 |" in out
    soak_line = next(line for line in out.splitlines() if line.startswith("soak: "))
    fields = dict(part.rsplit(" ", 1) for part in soak_line[len("soak: "):].split(", "))
    assert int(fields["valid_failed"]) == 0 and int(fields["bad_other"]) == 0
    assert int(fields["valid_ok"]) + int(fields["bad_refused_4xx"]) == 60
    rows = list(csv.DictReader(table.open()))
    assert [row["concurrency"] for row in rows] == ["1", "4"] and all(float(row["texts_per_s"]) > 0 for row in rows)
    assert "CPU ms per request" in out and all(float(row["cpu_ms_available"]) > 0 for row in rows)
    # CPU time comes in clock ticks (10 ms): over both levels the inference thread and the generator have spent some
    assert sum(float(row["cpu_ms_inference_threads"]) for row in rows) > 0 and sum(float(row["cpu_ms_load_generator"]) for row in rows) > 0


def test_load_test_refuses_other_hosts_and_absent_services(tmp_path, capsys):
    from conftest import assert_one_line_error

    texts = tmp_path / "texts.txt"
    texts.write_text("one\n", encoding="utf-8")
    result = run_main(load_test.main, ["--url", "http://example.com:80", "--texts", str(texts)], capsys)
    assert_one_line_error(result, "loopback")
    result = run_main(load_test.main, ["--url", f"http://127.0.0.1:{free_port()}", "--texts", str(texts)], capsys)
    assert_one_line_error(result, "no answer from a prediction service")


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver key of an element reference


class WebDriver:
    """Chromium driven through chromedriver's W3C WebDriver protocol, spoken with urllib (no client library)."""

    def __init__(self, profile):
        port = free_port()
        self.process = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        self.wait(lambda: self._call("GET", "/status")["ready"], what="chromedriver to start")
        # The flags keep Chromium from reaching for the network, which this machine refuses.
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}"]  # fmt: skip
        options = {"binary": CHROMIUM, "args": flags}
        capabilities = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.path = f"/session/{self._call('POST', '/session', capabilities)['sessionId']}"

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.URLError:
            return {"ready": False}

    def command(self, method, path, body=None):
        return self._call(method, self.path + path, body)

    def find_all(self, css):
        return [found[ELEMENT] for found in self.command("POST", "/elements", {"using": "css selector", "value": css})]

    def element(self, css, within=None):
        path = f"/element/{within}/element" if within else "/element"
        return self.command("POST", path, {"using": "css selector", "value": css})[ELEMENT]

    def wait(self, condition, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"waited {timeout} s for {what}")

    def quit(self):
        self.command("DELETE", "")
        self.process.terminate()
        self.process.wait(10)


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no Chromium and ChromeDriver here (Debian: apt-get install chromium chromium-driver; .ci/run installs them)")
def test_demo_page_in_a_real_browser(server, tmp_path):
    text = "The sound is great and the battery lasts all week."
    browser = WebDriver(tmp_path / "profile")
    try:
        browser.command("POST", "/url", {"url": f"http://127.0.0.1:{server.port}/"})
        model = browser.element("#model")
        browser.wait(lambda: "labels" in browser.command("GET", f"/element/{model}/text"), what="the model description")
        browser.command("POST", f"/element/{browser.element('#text')}/value", {"text": text})  # typed key by key
        browser.command("POST", f"/element/{browser.element('#submit')}/click", {})
        browser.wait(lambda: len(browser.find_all("#result .row")) == 5, what="one bar per class")
        rows = browser.find_all("#result .row")
        names = [browser.command("GET", f"/element/{row}/attribute/data-label") for row in rows]
        shown = [float(browser.command("GET", f"/element/{browser.element('.value', row)}/text").rstrip("%")) for row in rows]
        widths = [float(browser.command("GET", f"/element/{browser.element('.bar', row)}/css/width").rstrip("px")) for row in rows]
        label = browser.command("GET", f"/element/{browser.element('#label')}/text")
    finally:
        browser.quit()
    expected = call(server.port, "/predict", {"texts": [text]})[1]["results"][0]
    assert names == list(expected["probabilities"])
    np.testing.assert_allclose(shown, [100 * p for p in expected["probabilities"].values()], atol=0.06)
    assert max(widths) > 0 and int(np.argmax(widths)) == names.index(expected["label"])  # the longest bar is the label's
    assert label.startswith(expected["label"])
