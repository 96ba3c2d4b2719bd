"""Deployment: static-graph export, Paddle Inference / onnxruntime parity with the dygraph model, Predictor, CLIs.

Parity runs on real Electronics reviews when ../shared/data holds them, else on synthetic reviews (the
module fixture prints which), with texts from one token to longer than the model's 512 positions, for
the official formulation and a lucidrains model with rotary positions (whose positions come from the
run-time shape). The real commands run in three subprocesses started together (each spends seconds
importing paddle and paddlenlp); the other command-line failures call the same ``main()`` in-process.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import default_data_source, write_tiny_config
from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification, FastformerTokenizer
from fastformer_zoo.data.labels import STAR_LABELS as LABEL_NAMES
from fastformer_zoo.data.readers import read_reviews
from fastformer_zoo.data.synthetic import generate_synthetic_reviews, write_synthetic_reviews
from fastformer_zoo.deploy import predictor as predictor_module
from fastformer_zoo.deploy.export import export_inference_model
from fastformer_zoo.deploy.infer import read_labelled_texts
from fastformer_zoo.deploy.predictor import Predictor
from fastformer_zoo.errors import UserError
from paddlenlp_fastformer.kernels import library

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import export_model  # noqa: E402  (tools/export_model.py, run in-process)
import infer  # noqa: E402  (tools/infer.py)
TOLERANCE = 1e-5
MAX_SEQ_LEN = 512
EXPORTED_FILES = {
    "inference.json",
    "inference.pdiparams",
    "inference.onnx",
    "inference_packed.json",
    "inference_packed.pdiparams",
    "inference_packed.onnx",
    "inference_config.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
}
FORMULATIONS = {
    "official": {"formulation": "official"},
    "lucidrains-rotary": {"formulation": "lucidrains", "position_embedding_type": "rotary", "layer_norm_eps": 1e-5},
}
FUSED_KERNELS_BUILT = library.load() is not None
if FUSED_KERNELS_BUILT:  # the export adds the graph that calls them
    EXPORTED_FILES |= {"inference_fused.json", "inference_fused.pdiparams"}
# (backend, oneDNN, graph): every way a Predictor can run
RUNTIMES = [
    ("paddle", True, "fused"), ("paddle", False, "fused"), ("paddle", True, "portable"), ("paddle", False, "portable"),
    ("paddle", False, "packed"), ("onnxruntime", False, "portable"), ("onnxruntime", False, "packed"),
]  # fmt: skip


# ----------------------------------------------------------------------------------------------
# fixtures: texts, trained-like checkpoints, exports
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus():
    """(description, all texts): the real Electronics sample if present, else synthetic reviews."""
    source = default_data_source()
    if source is not None:
        examples, _ = read_reviews(source)
        description, texts = f"real reviews ({source})", [example["text"] for example in examples]
    else:
        description = "synthetic reviews (the real Electronics sample is absent)"
        texts = [review["reviewText"] for review in generate_synthetic_reviews(300, seed=1)]
    print(f"\ndeployment parity on {description}")
    return description, texts


@pytest.fixture(scope="module")
def parity_texts(corpus):
    """Reviews of very different lengths, shortest to longest (truncated at 512), plus one-token texts, shuffled."""
    _, texts = corpus
    by_length = sorted(texts, key=len)
    picked = by_length[:: max(1, len(by_length) // 14)] + [by_length[-1], "Great", "!", "ok"]
    order = np.random.default_rng(0).permutation(len(picked))
    return [picked[index] for index in order]


def _write_checkpoint(directory: Path, texts, **model_options) -> Path:
    """A from_pretrained classifier as tools/train.py writes it; weights large enough for decisive outputs."""
    paddle.seed(0)
    tokenizer = FastformerTokenizer.build_from_corpus(texts, model_max_length=MAX_SEQ_LEN)
    config = FastformerConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=MAX_SEQ_LEN,
        initializer_range=0.2,
        id2label=dict(enumerate(LABEL_NAMES)),
        label2id={name: index for index, name in enumerate(LABEL_NAMES)},
        **model_options,
    )
    FastformerForSequenceClassification(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module", params=list(FORMULATIONS))
def exported(request, tmp_path_factory, corpus):
    """(formulation, checkpoint dir, export dir with ONNX, fp32 and int8)."""
    root = tmp_path_factory.mktemp(request.param)
    checkpoint = _write_checkpoint(root / "checkpoint", corpus[1][:400], **FORMULATIONS[request.param])
    export_inference_model(str(checkpoint), str(root / "inference"), quantize="int8")
    return request.param, checkpoint, root / "inference"


def _dygraph_probabilities(checkpoint: Path, texts) -> np.ndarray:
    """The reference: the eager model on each text alone (no padding), truncated as the export is."""
    model = FastformerForSequenceClassification.from_pretrained(str(checkpoint))
    model.eval()
    tokenizer = FastformerTokenizer.from_pretrained(str(checkpoint))
    rows = []
    with paddle.no_grad():
        for text in texts:
            encoded = tokenizer(text, max_length=MAX_SEQ_LEN, truncation=True, return_tensors="pd")
            logits = model(encoded["input_ids"], attention_mask=encoded["attention_mask"])
            rows.append(paddle.nn.functional.softmax(logits, axis=-1).numpy()[0])
    return np.stack(rows)


def _probabilities(results) -> np.ndarray:
    return np.array([list(result["probabilities"].values()) for result in results])


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------
def test_export_directory_holds_everything_to_predict(exported):
    _, _, export_dir = exported
    assert set(os.listdir(export_dir)) == EXPORTED_FILES | {"inference_int8.onnx", "inference_packed_int8.onnx"}  # exported with --quantize int8
    settings = json.loads((export_dir / "inference_config.json").read_text(encoding="utf-8"))
    assert settings["label_names"] == list(LABEL_NAMES)
    assert settings["max_seq_len"] == MAX_SEQ_LEN
    assert settings["output"] == "probabilities"
    assert not list(export_dir.parent.glob(".inference*")), "a staging directory was left behind"
    # The portable graph holds standard operators only; the fused one calls the kernels.
    assert "fastformer_" not in (export_dir / "inference.json").read_text(encoding="utf-8")
    if FUSED_KERNELS_BUILT:
        fused_operators = set(re.findall(r'"\d+\.(fastformer_[a-z_]+)"', (export_dir / "inference_fused.json").read_text(encoding="utf-8")))
        assert {"fastformer_bias_act", "fastformer_token_pool"} <= fused_operators, fused_operators


def test_exported_graphs_do_no_training_only_work(exported):
    """Dropout does nothing at inference, yet Paddle's operator copies its input; and FlatLinear's flattening,
    which serves the eager backward, would copy a layer's input (read again by the residual) and build its
    shape with concat operators. Neither is in an exported graph."""
    formulation, _, export_dir = exported
    for graph in sorted(set(export_dir.glob("inference*.json")) - {export_dir / "inference_config.json"}):
        operators = re.findall(r'"\d+\.([a-z_0-9]+)"', graph.read_text(encoding="utf-8"))
        assert "matmul" in operators, graph.name
        assert "dropout" not in operators, graph.name
        # Packing and rotary positions build their layouts with concatenations of their own.
        if formulation == "official" and graph.name != "inference_packed.json":
            assert "concat" not in operators, graph.name
        if formulation == "official" and graph.name == "inference.json":  # flattened inputs: 2 or more per product
            assert operators.count("reshape") < operators.count("matmul"), graph.name


def test_exported_graph_has_dynamic_batch_and_length(exported):
    import onnxruntime

    _, _, export_dir = exported
    session = onnxruntime.InferenceSession(str(export_dir / "inference.onnx"), providers=["CPUExecutionProvider"])
    for model_input in session.get_inputs():
        assert model_input.type == "tensor(int64)"
        assert all(isinstance(dim, str) for dim in model_input.shape), model_input.shape  # symbolic, not fixed
    assert session.get_outputs()[0].shape[-1] == len(LABEL_NAMES)


def test_export_refuses_incomplete_checkpoint_and_foreign_output(tmp_path, corpus):
    checkpoint = _write_checkpoint(tmp_path / "checkpoint", corpus[1][:50])
    (checkpoint / "model.safetensors").rename(tmp_path / "weights.safetensors")
    with pytest.raises(UserError, match="missing model.safetensors or model_state.pdparams"):
        export_inference_model(str(checkpoint), str(tmp_path / "out"))
    (tmp_path / "weights.safetensors").rename(checkpoint / "model.safetensors")
    # Exporting into the checkpoint itself (or any other non-export directory) would replace it.
    with pytest.raises(UserError, match="holds no earlier export"):
        export_inference_model(str(checkpoint), str(checkpoint))
    assert (checkpoint / "model.safetensors").is_file()


@pytest.mark.slow
def test_export_replaces_an_earlier_export(tmp_path, corpus):
    checkpoint = _write_checkpoint(tmp_path / "checkpoint", corpus[1][:50])
    out = tmp_path / "inference"
    export_inference_model(str(checkpoint), str(out), onnx=True)
    assert export_inference_model(str(checkpoint), str(out)) == sorted(EXPORTED_FILES - {"inference.onnx", "inference_packed.onnx"})


# ----------------------------------------------------------------------------------------------
# parity: dygraph vs Paddle Inference (oneDNN on/off) vs onnxruntime
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "backend, enable_mkldnn, graph", RUNTIMES,
    ids=["paddle-fused-onednn", "paddle-fused", "paddle-portable-onednn", "paddle-portable", "paddle-packed", "onnxruntime",
         "onnxruntime-packed"],
)  # fmt: skip
def test_backends_match_dygraph(exported, parity_texts, corpus, backend, enable_mkldnn, graph):
    if graph == "fused" and not FUSED_KERNELS_BUILT:
        pytest.skip("the fused kernels could not be built here")
    formulation, checkpoint, export_dir = exported
    reference = _dygraph_probabilities(checkpoint, parity_texts)
    # Not a trivial comparison: the random model must make confident, varied decisions.
    assert reference.max() - reference.min() > 0.3
    # A pass costing more than any padding: passes are full, so that mixed lengths are padded together.
    predictor = Predictor(str(export_dir), backend=backend, cpu_threads=1, enable_mkldnn=enable_mkldnn, pass_cost_tokens=1e9, graph=graph)
    assert predictor.graph == graph
    for batch_size in (1, 4, 64):  # one text per pass; mixed lengths padded together; everything at once
        predictor.batch_size = batch_size
        results = predictor.predict(parity_texts)
        probabilities = _probabilities(results)
        where = f"{formulation}, {backend}, {graph} graph, oneDNN {enable_mkldnn}, batch {batch_size}, {corpus[0]}"
        np.testing.assert_allclose(probabilities, reference, rtol=0, atol=TOLERANCE, err_msg=where)
        assert [result["label"] for result in results] == [LABEL_NAMES[i] for i in reference.argmax(-1)], where
        assert [result["score"] for result in results] == pytest.approx(reference.max(-1).tolist(), abs=1e-5), where
        assert all(list(result["probabilities"]) == list(LABEL_NAMES) for result in results), where


def test_forward_passes_are_planned_by_padding_against_pass_cost():
    plan = predictor_module.plan_forward_passes
    lengths = [5, 3, 9, 9, 9, 100, 2]
    # Each text in exactly one pass, passes in length order, none over max_rows.
    for max_rows, cost in ((1, 0), (3, 0), (3, 1e9), (4, 10), (64, 20)):
        passes = plan(lengths, max_rows, cost)
        assert sorted(index for group in passes for index in group) == list(range(len(lengths)))
        assert all(len(group) <= max_rows for group in passes)
        flat = [lengths[index] for group in passes for index in group]
        assert flat == sorted(lengths)
    assert plan(lengths, 3, 1e9) == [[6, 1, 0], [2, 3, 4], [5]]  # costly passes: as few as max_rows allows
    assert plan(lengths, 8, 0) == [[6], [1], [0], [2, 3, 4], [5]]  # free passes: no padding at all
    passes = plan(lengths, 8, 10)  # the long review is not padded with the rest, the short ones share passes
    assert passes[-1] == [5] and len(passes) == 3
    assert plan([], 4, 10) == []


def test_predictor_counts_its_forward_passes(exported, parity_texts):
    _, _, export_dir = exported
    predictor = Predictor(str(export_dir), backend="onnxruntime", cpu_threads=1, batch_size=4, pass_cost_tokens=1e9)
    predictor.predict(parity_texts)
    assert predictor.forward_passes == -(-len(parity_texts) // 4)


def test_without_the_kernels_the_portable_graph_runs_and_no_fused_one_is_exported(exported, tmp_path, monkeypatch):
    formulation, checkpoint, export_dir = exported
    monkeypatch.setattr(library, "load", lambda: None)  # a machine where the kernels cannot be built
    predictor = Predictor(str(export_dir), cpu_threads=1)
    assert predictor.graph == "portable" and predictor.predict(["works fine"])[0]["label"] in LABEL_NAMES
    with pytest.raises(UserError, match="fused kernels cannot be built"):
        Predictor(str(export_dir), cpu_threads=1, graph="fused")
    export_inference_model(str(checkpoint), str(tmp_path / "portable_only"))
    assert not list((tmp_path / "portable_only").glob("inference_fused.*")), formulation


def test_predictor_restores_input_order(exported, parity_texts):
    _, _, export_dir = exported
    predictor = Predictor(str(export_dir), backend="onnxruntime", cpu_threads=1, batch_size=3, record_timings=True)
    forward = predictor.predict(parity_texts)
    backward = predictor.predict(parity_texts[::-1])
    first_alone = predictor.predict(parity_texts[:1])
    np.testing.assert_allclose(_probabilities(backward[::-1]), _probabilities(forward), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(_probabilities(first_alone), _probabilities(forward[:1]), rtol=0, atol=TOLERANCE)
    # Timings: one entry per batch, counting real tokens only.
    assert sum(t.num_texts for t in predictor.timings) == 2 * len(parity_texts) + 1
    summary = predictor_module.summarize_timings(predictor.timings)
    assert summary["texts_per_s"] > 0 and summary["tokens_per_s"] > summary["texts_per_s"]


# ----------------------------------------------------------------------------------------------
# Predictor and input errors
# ----------------------------------------------------------------------------------------------
def test_predictor_names_what_is_missing(exported, tmp_path):
    _, _, export_dir = exported
    with pytest.raises(UserError, match="not found"):
        Predictor(str(tmp_path / "nowhere"))
    incomplete = shutil.copytree(export_dir, tmp_path / "incomplete")
    (incomplete / "inference.pdiparams").unlink()
    (incomplete / "inference.onnx").unlink()
    with pytest.raises(UserError, match="missing inference.pdiparams"):
        Predictor(str(incomplete))
    with pytest.raises(UserError, match=r"missing inference.onnx.*--onnx"):
        Predictor(str(incomplete), backend="onnxruntime")
    with pytest.raises(UserError, match="not supported on this CPU build"):
        Predictor(str(export_dir), precision="fp16")


def test_int8_export_stays_close_to_fp32(exported, parity_texts):
    import onnx

    formulation, _, export_dir = exported
    # Full passes of 16 for both: int8's activation scales are taken per pass, so only the precision may differ.
    fixed = {"backend": "onnxruntime", "cpu_threads": 1, "pass_cost_tokens": 1e9, "graph": "portable"}
    fp32 = _probabilities(Predictor(str(export_dir), **fixed).predict(parity_texts))
    int8 = _probabilities(Predictor(str(export_dir), precision="int8", **fixed).predict(parity_texts))
    # Random weights, scaled up for confident decisions, are harder on int8 than trained ones; the accuracy
    # check on real reviews with a trained model is in docs/deployment.md (tools/infer.py --precision int8).
    assert np.abs(int8 - fp32).max() < 0.15, formulation
    # the label may change only where fp32 itself hesitates between two classes
    top_two = np.sort(fp32, axis=-1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 0.25
    assert clear.sum() > len(fp32) // 4 and (int8.argmax(-1) == fp32.argmax(-1))[clear].all(), formulation
    for int8_file in ("inference_int8.onnx", "inference_packed_int8.onnx"):
        operators = {node.op_type for node in onnx.load(str(export_dir / int8_file)).graph.node}
        assert "MatMulInteger" in operators and "DynamicQuantizeLinear" in operators, int8_file  # weight products in int8


def test_packed_int8_graph_quantizes_as_the_padded_one(exported, parity_texts):
    """One text per pass, both int8 graphs see the same activations, so they must agree as their fp32 twins do.
    (With several texts per pass, each pass's activation scale depends on its company, padding included.)"""
    _, _, export_dir = exported
    alone = {"backend": "onnxruntime", "cpu_threads": 1, "precision": "int8", "batch_size": 1}
    packed = Predictor(str(export_dir), graph="packed", **alone)
    assert packed.graph == "packed"
    padded = _probabilities(Predictor(str(export_dir), graph="portable", **alone).predict(parity_texts))
    # The fp32 graphs differ by float rounding (1e-7), which can move a value across an int8 rounding boundary:
    # one quantization step, far below int8's own error here (0.04 on average against fp32).
    np.testing.assert_allclose(_probabilities(packed.predict(parity_texts)), padded, rtol=0, atol=0.01)


def test_predictor_rejects_empty_text(exported):
    predictor = Predictor(str(exported[2]), backend="onnxruntime", cpu_threads=1)
    with pytest.raises(UserError, match="text 2 is empty"):
        predictor.predict(["fine", "   "])
    assert predictor.predict([]) == []


def test_read_labelled_texts_reads_prepared_and_raw_files(tmp_path):
    prepared = tmp_path / "test.jsonl"
    prepared.write_text('{"text": "good", "label": 4}\n{"text": "bad", "label": 0}\n', encoding="utf-8")
    names = list(LABEL_NAMES)
    # outside a dataset folder the same lines are raw data, labelled "4" and "0": names this model lacks
    with pytest.raises(UserError, match=r"test.jsonl:1: label '4' is not in the model's labels"):
        read_labelled_texts(str(prepared), names)
    (tmp_path / "label.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    assert read_labelled_texts(str(prepared), names) == (["good", "bad"], [4, 0])
    assert read_labelled_texts(str(tmp_path), names) == (["good", "bad"], [4, 0])  # a prepared data directory
    raw = write_synthetic_reviews(tmp_path / "raw.json.gz", 5, seed=2)
    texts, labels = read_labelled_texts(str(raw), names)
    assert len(texts) == 5 and all(0 <= label < 5 for label in labels)
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("rating,text\n5,Loud and clear\n1,Dead on arrival\n", encoding="utf-8")
    assert read_labelled_texts(str(csv_file), names) == (["Loud and clear", "Dead on arrival"], [4, 0])
    # a model that orders the same labels otherwise gets its own ids
    assert read_labelled_texts(str(csv_file), names[::-1]) == (["Loud and clear", "Dead on arrival"], [0, 4])
    (tmp_path / "label.txt").write_text("\n".join(names[::-1]) + "\n", encoding="utf-8")
    assert read_labelled_texts(str(prepared), names) == (["good", "bad"], [0, 4])  # ids of the split's own label.txt
    (tmp_path / "label.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text('{"text": "good", "label": 4}\n{"text": "bad", "label": 9}\n', encoding="utf-8")
    with pytest.raises(UserError, match="damaged.jsonl:2"):
        read_labelled_texts(str(damaged), names)


# ----------------------------------------------------------------------------------------------
# command lines: three real processes, started together, and in-process main() for the other errors
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory, corpus):
    """{name: (returncode, stdout, stderr, paths)} for tools/export_model.py and tools/infer.py."""
    root = tmp_path_factory.mktemp("cli")
    checkpoint = _write_checkpoint(root / "checkpoint", corpus[1][:50])
    export_dir = root / "inference"
    export_inference_model(str(checkpoint), str(export_dir))
    data_file = root / "test.jsonl"
    data_file.write_text(
        "".join(json.dumps({"text": text, "label": LABEL_NAMES[index % 5]}) + "\n" for index, text in enumerate(corpus[1][:12])),
        encoding="utf-8",
    )
    config = write_tiny_config(root / "tiny.yaml", root / "data", root / "out")
    paths = {"export_out": root / "exported", "log": root / "benchmark.log"}
    commands = {
        "export": ["tools/export_model.py", "-c", str(config), "--onnx", "-o",
                   f"Global.pretrained_model={checkpoint}", f"Global.save_inference_dir={paths['export_out']}"],
        "infer": ["tools/infer.py", "--model_dir", str(export_dir), "--data_dir", str(data_file), "--batch_size", "4",
                  "--cpu_threads", "1", "--enable_mkldnn", "False", "--use_gpu", "False", "--precision", "fp32",
                  "--benchmark", "True", "--save_log_path", str(paths["log"])],
        "empty-text": ["tools/infer.py", "--model_dir", str(export_dir), "--text", "fine", "--text", ""],
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, *command], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, command in commands.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = (process.returncode, stdout, stderr)
    return results, paths, export_dir


@pytest.mark.slow
def test_export_command_writes_the_model(cli_runs):
    results, paths, _ = cli_runs
    returncode, _, stderr = results["export"]
    assert returncode == 0, stderr
    assert set(os.listdir(paths["export_out"])) == EXPORTED_FILES


@pytest.mark.slow
def test_infer_command_predicts_scores_and_benchmarks(cli_runs):
    results, paths, _ = cli_runs
    returncode, stdout, stderr = results["infer"]
    assert returncode == 0, stderr
    lines = stdout.strip().splitlines()
    predictions = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(predictions) == 12
    assert {"text", "label", "score", "probabilities"} <= set(predictions[0])
    assert sum(predictions[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert any(line.startswith("accuracy: ") and "macro-F1: " in line for line in lines)
    log = paths["log"].read_text(encoding="utf-8")
    for key in ("preprocess_time(ms/batch)", "inference_time(ms/batch)", "postprocess_time(ms/batch)", "tokens/s"):
        assert key in log and key in stdout


@pytest.mark.slow
def test_infer_command_rejects_empty_text_in_one_line(cli_runs):
    returncode, _, stderr = cli_runs[0]["empty-text"]
    assert returncode == 2
    assert stderr.strip().splitlines()[-1] == "error: text 2 is empty; expected a text"


def _main_exit(main, argv, capsys) -> tuple[int, str]:
    """Run a tool's main() in-process; (exit code, last stderr line)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    return exit_info.value.code, lines[-1] if lines else ""


@pytest.mark.slow
def test_command_errors_are_one_line_with_exit_code_2(cli_runs, tmp_path, capsys):
    export_dir = cli_runs[2]
    base = ["--model_dir", str(export_dir), "--cpu_threads", "1"]
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"text": "café", "label": 1}\n'.encode("latin-1"))
    cases = {
        "missing file": (["--model_dir", str(tmp_path), "--text", "x"], "missing inference.json, inference.pdiparams"),
        "non-UTF-8": (base + ["--data_dir", str(latin1)], "not valid UTF-8"),
        "gpu": (base + ["--text", "x", "--use_gpu", "True"], "--use_gpu True is not supported on this CPU build"),
        "tensorrt": (base + ["--text", "x", "--use_tensorrt", "True"], "--use_tensorrt True is not supported"),
        "precision": (base + ["--text", "x", "--precision", "fp16"], "'fp16' is not supported on this CPU build"),
        "int8 on paddle": (base + ["--text", "x", "--precision", "int8", "--backend", "paddle"], "'int8' runs on onnxruntime"),
        "int8 not exported (auto)": (base + ["--text", "x", "--precision", "int8"], "--quantize int8"),
        "int8 not exported": (base + ["--text", "x", "--precision", "int8", "--backend", "onnxruntime"], "--quantize int8"),
    }
    for name, (argv, message) in cases.items():
        code, last_line = _main_exit(infer.main, argv, capsys)
        assert code == 2 and last_line.startswith("error: ") and message in last_line, (name, last_line)

    config = write_tiny_config(tmp_path / "tiny.yaml", tmp_path / "data", tmp_path / "out")
    code, last_line = _main_exit(
        export_model.main, ["-c", str(config), "-o", f"Global.pretrained_model={tmp_path / 'none'}"], capsys
    )
    assert code == 2 and last_line.startswith(f"error: Global.pretrained_model='{tmp_path / 'none'}': not a directory")
    code, last_line = _main_exit(export_model.main, ["-c", str(config)], capsys)
    assert code == 2 and "Global.pretrained_model is not set" in last_line
