"""The engine choice: every engine an export offers gives the same probabilities; `auto` measures them once per
export and CPU, keeps the seconds, and runs each forward pass on the one measured fastest at its shape."""
import json
import logging

import numpy as np
import onnx
import pytest

from fastformer_zoo.deploy.engines import CACHE_FORMAT, MEASURE_SWITCH, Engine, EngineChoice, candidate_engines, tuning_shapes
from fastformer_zoo.deploy.export import export_inference_model
from fastformer_zoo.deploy.predictor import Predictor
from fastformer_zoo.errors import UserError
from paddlenlp_fastformer.cpu import cpu_instruction_sets

TEXTS = ["Great sound and the battery lasts.", "Broke after two days!", "ok", "fine " * 80, "Works, but the cable is short."]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, trained):
    directory = tmp_path_factory.mktemp("engines") / "inference"
    export_inference_model(str(trained[1] / "best"), str(directory), quantize="int8")
    return directory


@pytest.fixture
def measuring(tmp_path, monkeypatch):
    """Engines measured for real, into a cache of this test's own."""
    monkeypatch.setenv(MEASURE_SWITCH, "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "paddlenlp_fastformer" / "engines"


@pytest.fixture
def log_lines():
    """What the application logs, whichever handlers the tools run in this process set up (they stop propagation)."""
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler, logger = Keep(level=logging.INFO), logging.getLogger("fastformer_zoo")
    level, logger.level = logger.level, logging.INFO
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def _probabilities(predictor: Predictor) -> np.ndarray:
    return np.array([list(result["probabilities"].values()) for result in predictor.predict(TEXTS)])


def test_every_engine_gives_the_same_probabilities(export_dir):
    engines = candidate_engines(str(export_dir))
    assert {engine.backend for engine in engines} == {"paddle", "onnxruntime"} and len(engines) >= 6, engines
    reference = None
    for engine in engines:
        predictor = Predictor(str(export_dir), engine.backend, 1, engine.onednn, graph=engine.graph)
        assert predictor.engine_choice.distinct == [engine]
        probabilities = _probabilities(predictor)
        reference = probabilities if reference is None else reference
        np.testing.assert_allclose(probabilities, reference, atol=2e-5, err_msg=engine.name)


def test_auto_measures_once_then_reuses_the_measurement(export_dir, measuring, log_lines):
    first = Predictor(str(export_dir), cpu_threads=1)
    assert any(line.startswith("measuring") for line in log_lines) and first.engine_choice.reason == "measured now"
    [kept] = list(measuring.glob("*.json"))
    record = json.loads(kept.read_text())
    names = {engine.name for engine in candidate_engines(str(export_dir))}
    assert set(record["seconds"]) == names and record["shapes"] == [list(shape) for shape in tuning_shapes(first.max_seq_len)]
    for index, engine in enumerate(first.engine_choice.engines):  # the fastest, or one within 5% of it
        assert record["seconds"][engine.name][index] <= 1.05 * min(record["seconds"][name][index] for name in names)

    log_lines.clear()
    second = Predictor(str(export_dir), cpu_threads=1)
    assert not any(line.startswith("measuring") for line in log_lines) and "measured earlier" in second.engine_choice.reason
    assert second.engine_choice.engines == first.engine_choice.engines
    np.testing.assert_allclose(_probabilities(second), _probabilities(first), atol=2e-5)
    # another thread count is another measurement
    Predictor(str(export_dir), cpu_threads=2)
    assert len(list(measuring.glob("*.json"))) == 2


def test_a_damaged_or_unwritable_cache_is_measured_again(export_dir, measuring, log_lines, tmp_path, monkeypatch):
    Predictor(str(export_dir), cpu_threads=1, backend="onnxruntime")
    [kept] = list(measuring.glob("*.json"))
    kept.write_text('{"seconds": {"onnxruntime packed": [1]}}')
    again = Predictor(str(export_dir), cpu_threads=1, backend="onnxruntime")
    assert any("damaged engine measurements" in line for line in log_lines) and again.engine_choice.reason == "measured now"
    assert json.loads(kept.read_text())["format"] == CACHE_FORMAT  # replaced by a whole record

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    log_lines.clear()
    predictor = Predictor(str(export_dir), cpu_threads=1, backend="onnxruntime")
    assert any("hold for this run only" in line for line in log_lines) and len(predictor.predict(TEXTS)) == len(TEXTS)


def test_flags_narrow_the_engines_and_a_closed_choice_names_what_is_offered(export_dir):
    assert {engine.backend for engine in candidate_engines(str(export_dir), backend="onnxruntime")} == {"onnxruntime"}
    assert all(engine.onednn for engine in candidate_engines(str(export_dir), enable_mkldnn=True))
    assert [engine.name for engine in candidate_engines(str(export_dir), "int8")] == ["onnxruntime packed int8", "onnxruntime portable int8"]
    with pytest.raises(UserError, match="fused graph runs on Paddle Inference only"):
        candidate_engines(str(export_dir), backend="onnxruntime", graph="fused")
    with pytest.raises(UserError, match="no engine runs precision fp32 with backend onnxruntime, graph auto, oneDNN True.*offers: paddle fused"):
        candidate_engines(str(export_dir), backend="onnxruntime", enable_mkldnn=True)
    with pytest.raises(UserError, match="precision 'fp16' is not supported"):
        candidate_engines(str(export_dir), "fp16")
    with pytest.raises(UserError, match="backend 'tensorrt' is not supported"):
        Predictor(str(export_dir), backend="tensorrt")


def test_a_pass_runs_on_the_engine_of_the_nearest_measured_shape():
    small, large = Engine("onnxruntime", "packed"), Engine("paddle", "fused", onednn=True)
    choice = EngineChoice([(1, 32), (1, 512), (64, 32), (64, 512)], [small, small, large, large], "measured now")
    assert choice.engine_for(1, 100) == small and choice.engine_for(7, 300) == small
    assert choice.engine_for(9, 300) == large and choice.engine_for(500, 5000) == large
    assert choice.distinct == [small, large]
    assert choice.describe() == "onnxruntime packed (1x32, 1x512); paddle fused oneDNN (64x32, 64x512)"


def test_close_engines_meet_again_side_by_side_taking_turns(monkeypatch):
    """After the first pass (one engine after another), the engines within FINALIST_FACTOR of the fastest at a shape
    are timed again taking turns, their order rotated each round; a slower engine is not timed again."""
    import time

    from fastformer_zoo.deploy import engines

    monkeypatch.setattr(engines, "TURN_SECONDS", 0.0)  # a turn: the untimed call and TURN_CALLS timed ones
    fast, close, slow = Engine("onnxruntime", "portable"), Engine("paddle", "fused"), Engine("paddle", "portable")
    pause, calls = {fast: 0.002, close: 0.0021, slow: 0.006}, []

    def make_runner(engine):
        def run(input_ids, mask):
            calls.append(engine)
            time.sleep(pause[engine])

        return run

    seconds = engines.measure_engines([slow, close, fast], [(1, 8)], make_runner, vocab_size=50)
    turn = engines.TURN_CALLS + 1
    final = calls[-engines.FINAL_ROUNDS * 2 * turn :]
    turns = [final[index : index + turn] for index in range(0, len(final), turn)]
    assert all(len(set(each)) == 1 for each in turns) and {each[0] for each in turns} == {fast, close}
    firsts = [turns[index][0] for index in range(0, len(turns), 2)]  # who opened each round
    assert all(first != following for first, following in zip(firsts, firsts[1:])), firsts
    assert slow not in calls[calls.index(fast) :] and seconds[slow.name][0] > 2 * seconds[fast.name][0]


def test_without_measuring_auto_takes_the_first_engine(export_dir, monkeypatch):
    monkeypatch.setenv(MEASURE_SWITCH, "0")
    predictor = Predictor(str(export_dir), cpu_threads=1)
    assert predictor.engine_choice.distinct == [candidate_engines(str(export_dir))[0]] and "not measured" in predictor.engine_choice.reason


def test_int8_auto_runs_on_onnxruntime_close_to_fp32(export_dir, measuring):
    int8 = Predictor(str(export_dir), cpu_threads=1, precision="int8")
    assert {engine.name for engine in int8.engine_choice.distinct} <= {"onnxruntime packed int8", "onnxruntime portable int8"}
    np.testing.assert_allclose(_probabilities(int8), _probabilities(Predictor(str(export_dir), cpu_threads=1)), atol=0.02)


@pytest.mark.skipif(not {"avx512_bf16", "amx_bf16"} & set(cpu_instruction_sets()), reason="this CPU has no bfloat16 instructions")
def test_bf16_runs_through_onednn_where_faster_and_stays_close_to_fp32(export_dir, measuring):
    bf16 = Predictor(str(export_dir), cpu_threads=1, precision="bf16")
    engines = candidate_engines(str(export_dir), "bf16")
    assert {engine.precision for engine in engines} == {"bf16", "fp32"} and all(e.onednn for e in engines if e.precision == "bf16")
    np.testing.assert_allclose(_probabilities(bf16), _probabilities(Predictor(str(export_dir), cpu_threads=1)), atol=0.02)


def test_bf16_is_refused_on_a_cpu_without_bfloat16_instructions(export_dir, monkeypatch):
    import fastformer_zoo.deploy.engines as engines

    monkeypatch.setattr(engines, "cpu_instruction_sets", lambda: ["avx2", "fma"])  # the CPU is the input here
    with pytest.raises(UserError, match="'bf16' needs a CPU with AVX512-BF16 or AMX"):
        Predictor(str(export_dir), precision="bf16")


def test_the_onnx_graphs_broadcast_inside_their_products(export_dir):
    """No `Expand(x, Max(Shape(x), Shape(y)))` left (the model's broadcast_as): onnxruntime broadcasts in the product."""
    for name in ("inference.onnx", "inference_packed.onnx", "inference_int8.onnx"):
        graph = onnx.load(str(export_dir / name), load_external_data=False).graph
        producers = {output: node.op_type for node in graph.node for output in node.output}
        broadcasts = [node.name for node in graph.node if node.op_type == "Expand" and producers.get(node.input[1]) == "Max"]
        assert not broadcasts, (name, broadcasts)


def _expand_graph(partner: str):
    """out = Mul(Expand(small, Max(Shape(small), Shape(like))), partner), small [1, 3], like [2, 3]."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Shape", ["small"], ["small_shape"]), helper.make_node("Shape", ["like"], ["like_shape"]),
        helper.make_node("Max", ["small_shape", "like_shape"], ["target"]),
        helper.make_node("Expand", ["small", "target"], ["expanded"]), helper.make_node("Mul", ["expanded", partner], ["out"]),
    ]  # fmt: skip
    inputs = [helper.make_tensor_value_info("small", TensorProto.FLOAT, [1, 3]), helper.make_tensor_value_info("like", TensorProto.FLOAT, [2, 3])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("partner, removed", [("like", 1), ("small", 0)])
def test_an_expand_is_dropped_only_where_the_product_broadcasts_to_the_same_shape(partner, removed):
    import onnxruntime

    from fastformer_zoo.deploy.onnx_graphs import drop_broadcast_expands

    feeds = {"small": np.arange(3, dtype=np.float32)[None], "like": np.ones((2, 3), dtype=np.float32)}
    model = _expand_graph(partner)
    before = onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    assert drop_broadcast_expands(model) == removed
    np.testing.assert_array_equal(onnxruntime.InferenceSession(model.SerializeToString()).run(None, feeds)[0], before)


def test_a_failed_engine_is_not_kept_and_odd_switch_values_are_said(export_dir, measuring, log_lines, monkeypatch, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(export_dir, damaged)
    packed = damaged / "inference_packed.onnx"
    packed.write_bytes(bytes(packed.stat().st_size))  # zero-filled, the same size: the measurement's key is unchanged
    predictor = Predictor(str(damaged), cpu_threads=1, backend="onnxruntime")
    assert [engine.graph for engine in predictor.engine_choice.distinct] == ["portable"]
    assert any("not keeping the measurement: onnxruntime packed failed" in line for line in log_lines)
    assert not list(measuring.glob("*.json"))  # the healthy export of the same sizes measures afresh, packed included
    Predictor(str(export_dir), cpu_threads=1, backend="onnxruntime")
    assert len(list(measuring.glob("*.json"))) == 1
    monkeypatch.setenv(MEASURE_SWITCH, "off")
    assert "not measured" in Predictor(str(export_dir), cpu_threads=1, backend="onnxruntime").engine_choice.reason
    with pytest.raises(UserError, match="'bf16' runs through oneDNN"):
        candidate_engines(str(export_dir), "bf16", enable_mkldnn=False)


def test_a_relative_cache_home_is_ignored(monkeypatch, tmp_path):
    from pathlib import Path

    from paddlenlp_fastformer.file_utils import cache_directory

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache_directory() == Path.home() / ".cache" / "paddlenlp_fastformer"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_directory() == tmp_path / "paddlenlp_fastformer"
