"""tools/convert_torch_checkpoint.py: PyTorch checkpoints -> PaddleNLP from_pretrained directories.

The successful conversions and one failure run the real command in subprocesses (started together, as
each process spends seconds importing paddle, paddlenlp and torch). The other failures call the same
``main()`` in this process, with an uncaught exception counted as exit code 1 as the interpreter would.
Numeric alignment itself is test_alignment.py's; here the converted directories must reproduce the
PyTorch logits after ``from_pretrained``.
"""
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import paddle
import pytest
import torch

from paddlenlp_fastformer import FastformerForMaskedLM, FastformerForSequenceClassification
from paddlenlp_fastformer.conversion import ConversionError
from paddlenlp_fastformer.modeling import FastformerPretrainedModel
from benchmarks.torch_reference import official_config_json
from torch_models import lucidrains_model, official_model, padded_batch, state_dict_numpy


REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "convert_torch_checkpoint.py"
VOCAB, SEQ_LEN, LENGTHS = 97, 24, [24, 17, 5, 1, 11]


# ----------------------------------------------------------------------------------------------
# reference models and their checkpoints
# ----------------------------------------------------------------------------------------------
def lucidrains_absolute():
    return lucidrains_model(VOCAB, 32, 2, 4, 8, SEQ_LEN, absolute=True, seed=3)


def lucidrains_rotary():
    return lucidrains_model(VOCAB, 32, 2, 2, 16, SEQ_LEN, absolute=False, seed=4)


def official():
    return official_model(VOCAB, 32, 2, 4, 64, SEQ_LEN, num_labels=3, seed=5)


def official_json():
    return official_config_json(32, 2, 4, 64, SEQ_LEN)


def save_checkpoint(state_dict, path):
    torch.save(state_dict, str(path))
    return path


def torch_logits(model, ids, mask, source):
    with torch.no_grad():
        if source == "lucidrains":
            return model(torch.from_numpy(ids), mask=torch.from_numpy(mask)).numpy()
        return model(torch.from_numpy(ids)).numpy()


def paddle_logits(model, ids, mask):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask.astype("int64"))).numpy()


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ----------------------------------------------------------------------------------------------
# the command, in subprocesses started together
# ----------------------------------------------------------------------------------------------
# Each process spends ~5 s of CPU importing paddle, paddlenlp and torch, so the real command runs four
# times; the remaining conversions run in-process below.
SUBPROCESS_CASES = {
    # name: (reference factory, source, extra args)
    "lucidrains-absolute": (lucidrains_absolute, "lucidrains", []),
    "lucidrains-rotary": (lucidrains_rotary, "lucidrains", ["--max-seq-len", str(SEQ_LEN)]),
    "official": (official, "official", ["--config", "{json}"]),
    # a failure, through the real process exit: a key removed
    "error-missing-key": (lucidrains_absolute, "lucidrains", []),
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Run every SUBPROCESS_CASES conversion concurrently; {name: (returncode, stdout, stderr, out_dir, parent)}."""
    root = tmp_path_factory.mktemp("cli")
    json_path = root / "fastformer.json"
    json_path.write_text(json.dumps(official_json()))
    processes = {}
    for name, (factory, source, extra) in SUBPROCESS_CASES.items():
        state = factory().state_dict()
        if name == "error-missing-key":
            del state["layers.1.0.fn.to_r.weight"]
        checkpoint = save_checkpoint(state, root / f"{name}.pt")
        parent = root / f"out-{name}"
        parent.mkdir()
        out_dir = parent / "model"
        args = [a.replace("{json}", str(json_path)) for a in extra]
        command = [sys.executable, str(TOOL), "--source", source, "--checkpoint", str(checkpoint), "--output-dir", str(out_dir), *args]
        processes[name] = (
            subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
            out_dir,
            parent,
        )
    results = {}
    for name, (process, out_dir, parent) in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = (process.returncode, stdout, stderr, out_dir, parent)
    return results


# The converter writes arrays only (safetensors): a pickle could run code when loaded.
SAFETENSORS = {"config.json", "model.safetensors"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, model_class, expected_files",
    [
        ("lucidrains-absolute", FastformerForMaskedLM, SAFETENSORS),
        ("lucidrains-rotary", FastformerForMaskedLM, SAFETENSORS),
        ("official", FastformerForSequenceClassification, SAFETENSORS),
    ],
)
def test_cli_converts_and_from_pretrained_reproduces_torch(cli_runs, name, model_class, expected_files):
    code, stdout, stderr, out_dir, parent = cli_runs[name]
    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert str(out_dir) in stdout
    assert set(os.listdir(out_dir)) == expected_files
    assert os.listdir(parent) == ["model"], "staging directories left next to the output"
    factory, source, _ = SUBPROCESS_CASES[name]
    assert_directory_reproduces(out_dir, model_class, factory, source, rotary="rotary" in name)


def assert_directory_reproduces(out_dir, model_class, factory, source, rotary):
    reference = factory()
    config = json.loads((out_dir / "config.json").read_text())
    assert config["model_type"] == "fastformer"
    assert config["formulation"] == source
    if source == "lucidrains":
        assert config["position_embedding_type"] == ("rotary" if rotary else "absolute")
        assert config["max_position_embeddings"] == SEQ_LEN

    model = model_class.from_pretrained(str(out_dir))
    assert type(model) is model_class
    ids, mask = padded_batch(VOCAB, LENGTHS, SEQ_LEN, seed=7)
    expected = torch_logits(reference, ids, mask, source)
    got = paddle_logits(model, ids, mask)
    if source == "lucidrains":  # fast-transformer-pytorch's logits at padding positions are not defined
        got, expected = got[mask], expected[mask]
    assert got.shape == expected.shape
    diff = np.abs(got - expected).max()
    assert diff < 1e-5, f"max abs diff {diff:.3e}"
    # and a different reference would not match (the comparison has power)
    other = torch_logits(factory_other(source), ids, mask, source)
    other = other[mask] if source == "lucidrains" else other
    assert np.abs(other - expected).max() > 1e-3


def factory_other(source):
    if source == "lucidrains":
        return lucidrains_model(VOCAB, 32, 2, 4, 8, SEQ_LEN, absolute=True, seed=30)
    return official_model(VOCAB, 32, 2, 4, 64, SEQ_LEN, num_labels=3, seed=31)


@pytest.mark.slow
def test_cli_error_in_a_real_process(cli_runs):
    code, _, stderr, out_dir, parent = cli_runs["error-missing-key"]
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr
    line = last_line(stderr)
    assert line.startswith("error:") and "layers.1.0.fn.to_r.weight" in line, line
    assert not out_dir.exists()
    assert os.listdir(parent) == []


# ----------------------------------------------------------------------------------------------
# the command's main(), in this process
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tool_main():
    sys.path.insert(0, str(TOOL.parent))  # as when the tool runs: tools/ first on the path, for tools/program.py
    spec = importlib.util.spec_from_file_location("convert_torch_checkpoint", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def run_cli(tool_main, *args):
    """(exit code, stdout, stderr) of the command run with ``args``, as the interpreter would give them."""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = [str(TOOL), *map(str, args)]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = tool_main()
            except SystemExit as exit_:  # argparse
                code = exit_.code
            except Exception:  # uncaught: Python prints the traceback and exits with 1
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def workspace(tmp_path):
    """inputs/ for checkpoints and configs, out/ as the (empty) parent of the output directory."""
    (tmp_path / "inputs").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path


def assert_fails_cleanly(result, needles, out_parent, parent_content=()):
    code, _, stderr = result
    assert code == 2, f"exit code {code}; stderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    line = last_line(stderr)
    assert line.startswith("error:"), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert sorted(os.listdir(out_parent)) == sorted(parent_content), "output or staging directory left behind"


def lucidrains_state(factory=lucidrains_absolute):
    return factory().state_dict()


def official_args(workspace, state, config=None, extra=()):
    checkpoint = save_checkpoint(state, workspace / "inputs" / "official.pt")
    json_path = workspace / "inputs" / "fastformer.json"
    json_path.write_text(json.dumps(official_json() if config is None else config))
    return ["--source", "official", "--checkpoint", checkpoint, "--config", json_path, "--output-dir", workspace / "out" / "model", *extra]


def lucidrains_args(workspace, state, extra=()):
    checkpoint = save_checkpoint(state, workspace / "inputs" / "lucidrains.pt")
    return ["--source", "lucidrains", "--checkpoint", checkpoint, "--output-dir", workspace / "out" / "model", *extra]


@pytest.mark.parametrize(
    "factory, source, extra, model_class, expected_files",
    [
        (lucidrains_absolute, "lucidrains", [], FastformerForMaskedLM, SAFETENSORS),
        (official, "official", [], FastformerForSequenceClassification, SAFETENSORS),
    ],
    ids=["lucidrains-absolute", "official"],
)
def test_in_process_conversions(tool_main, workspace, factory, source, extra, model_class, expected_files):
    """Conversions in this process (the runner the error tests below use) give the same directories."""
    if source == "official":
        args = official_args(workspace, factory().state_dict(), extra=extra)
    else:
        args = lucidrains_args(workspace, factory().state_dict(), extra)
    code, _, stderr = run_cli(tool_main, *args)
    assert code == 0, stderr
    out_dir = workspace / "out" / "model"
    assert set(os.listdir(out_dir)) == expected_files
    assert os.listdir(workspace / "out") == ["model"]
    assert_directory_reproduces(out_dir, model_class, factory, source, rotary=factory is lucidrains_rotary)


@pytest.mark.parametrize("key", [
    "layers.1.0.fn.to_qkv.weight",
    "to_logits.1.bias",
    "layers.0.1.norm.weight",
    "token_emb.weight",  # needed to infer the sizes
])
def test_removed_key_is_named(tool_main, workspace, key):
    """The error names the PyTorch key the checkpoint lacks, as the user knows it."""
    state = lucidrains_state()
    del state[key]
    result = run_cli(tool_main, *lucidrains_args(workspace, state))
    assert_fails_cleanly(result, ["missing", key], workspace / "out")


def test_removed_official_key_is_named(tool_main, workspace):
    state = official().state_dict()
    del state["fastformer_model.encoders.1.attention.self.key_att.bias"]
    result = run_cli(tool_main, *official_args(workspace, state))
    assert_fails_cleanly(result, ["missing", "fastformer_model.encoders.1.attention.self.key_att.bias"], workspace / "out")


def test_extra_key_is_named(tool_main, workspace):
    state = lucidrains_state()
    state["layers.0.0.fn.to_gate.weight"] = torch.zeros(4, 4)
    result = run_cli(tool_main, *lucidrains_args(workspace, state))
    assert_fails_cleanly(result, ["unexpected", "layers.0.0.fn.to_gate.weight"], workspace / "out")

    state = official().state_dict()
    state["classifier_extra.weight"] = torch.zeros(3, 3)
    result = run_cli(tool_main, *official_args(workspace, state))
    assert_fails_cleanly(result, ["unexpected", "classifier_extra.weight"], workspace / "out")


def test_wrong_shape_is_named(tool_main, workspace):
    state = lucidrains_state()
    state["layers.1.1.fn.2.weight"] = torch.zeros(32, 7)
    result = run_cli(tool_main, *lucidrains_args(workspace, state))
    assert_fails_cleanly(result, ["shape", "layers.1.1.fn.2.weight", "[32, 7]", "[32, 128]"], workspace / "out")

    state = official().state_dict()
    state["fastformer_model.LayerNorm.weight"] = torch.ones(33)
    result = run_cli(tool_main, *official_args(workspace, state))
    assert_fails_cleanly(result, ["shape", "fastformer_model.LayerNorm.weight", "[33]", "[32]"], workspace / "out")


def test_wrong_shape_message_shows_the_checkpoint_shape(tool_main, workspace):
    """Shapes in PyTorch's [out, in] layout, as the user sees them, and the key not also called missing."""
    state = lucidrains_state()
    state["layers.1.1.fn.2.weight"] = torch.zeros(32, 7)
    result = run_cli(tool_main, *lucidrains_args(workspace, state))
    assert_fails_cleanly(result, ["layers.1.1.fn.2.weight has shape [32, 7], expected [32, 128]"], workspace / "out")
    assert "missing" not in last_line(result[2])


def test_official_config_disagreeing_with_the_weights_is_a_shape_error(tool_main, workspace):
    config = official_json()
    config["num_attention_heads"] = 8
    result = run_cli(tool_main, *official_args(workspace, official().state_dict(), config))
    assert_fails_cleanly(result, ["shape", "query_att.weight"], workspace / "out")


def test_rotary_without_max_seq_len(tool_main, workspace):
    result = run_cli(tool_main, *lucidrains_args(workspace, lucidrains_state(lucidrains_rotary)))
    assert_fails_cleanly(result, ["--max-seq-len", "rotary"], workspace / "out")


def test_absolute_with_a_disagreeing_max_seq_len(tool_main, workspace):
    result = run_cli(tool_main, *lucidrains_args(workspace, lucidrains_state(), ["--max-seq-len", SEQ_LEN + 1]))
    assert_fails_cleanly(result, ["--max-seq-len", str(SEQ_LEN + 1), "abs_pos_emb.weight"], workspace / "out")


def test_official_without_config(tool_main, workspace):
    checkpoint = save_checkpoint(official().state_dict(), workspace / "inputs" / "official.pt")
    result = run_cli(tool_main, "--source", "official", "--checkpoint", checkpoint, "--output-dir", workspace / "out" / "model")
    assert_fails_cleanly(result, ["--config"], workspace / "out")


def test_missing_checkpoint_file(tool_main, workspace):
    missing = workspace / "inputs" / "nowhere.pt"
    result = run_cli(tool_main, "--source", "lucidrains", "--checkpoint", missing, "--output-dir", workspace / "out" / "model")
    assert_fails_cleanly(result, [str(missing), "not found"], workspace / "out")


@pytest.mark.parametrize("content", ["text", "list", "nested"])
def test_file_that_is_not_a_checkpoint(tool_main, workspace, content):
    path = workspace / "inputs" / "bogus.pt"
    if content == "text":
        path.write_text("this is not a checkpoint\n")
    elif content == "list":
        torch.save([torch.zeros(2)], str(path))
    else:
        torch.save({"a": {"b": 1}}, str(path))
    result = run_cli(tool_main, "--source", "lucidrains", "--checkpoint", path, "--output-dir", workspace / "out" / "model")
    assert_fails_cleanly(result, [str(path)], workspace / "out")


def test_pickled_module_instead_of_state_dict_is_a_one_line_error(tool_main, workspace):
    path = workspace / "inputs" / "module.pt"
    torch.save(lucidrains_absolute(), str(path))
    code, _, stderr = run_cli(tool_main, "--source", "lucidrains", "--checkpoint", path, "--output-dir", workspace / "out" / "model")
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and str(path) in stderr, stderr
    assert "\x1b" not in stderr
    assert os.listdir(workspace / "out") == []


def test_wrapped_state_dict_is_accepted(tool_main, workspace):
    checkpoint = save_checkpoint({"state_dict": lucidrains_state(), "epoch": 3}, workspace / "inputs" / "wrapped.pt")
    code, _, stderr = run_cli(tool_main, "--source", "lucidrains", "--checkpoint", checkpoint, "--output-dir", workspace / "out" / "model")
    assert code == 0, stderr


@pytest.mark.parametrize("key, value, said", [
    ("epoch", 3, "holds the int 3"),  # training state saved beside the weights
    ("optimizer", {"lr": 0.1}, "holds the dict {'lr': 0.1} (a nested dict"),
    ("layers.0.0.fn.to_qkv.weight", "oops", "holds the str 'oops'"),
    ("layers.0.0.fn.to_qkv.weight", torch.zeros(96, 32, dtype=torch.int64), "has dtype int64; expected real floating-point"),
])
def test_a_value_that_is_no_weight_tensor_is_named_with_its_file(tool_main, workspace, key, value, said):
    state = lucidrains_state()
    state[key] = value
    result = run_cli(tool_main, *lucidrains_args(workspace, state))
    checkpoint = str(workspace / "inputs" / "lucidrains.pt")
    assert_fails_cleanly(result, [f"error: {checkpoint}: ", repr(key), said], workspace / "out")
    assert "int64" in said or "expected a state_dict whose every value is a weight tensor" in last_line(result[2])


@pytest.mark.parametrize("key", ["token_emb.weight", "layers.0.0.fn.to_r.weight", "abs_pos_emb.weight"])
def test_a_size_tensor_of_the_wrong_rank_is_named_with_its_file(tool_main, workspace, key):
    """The tensors the sizes are read from: a 1-D one used to end in an unpacking traceback."""
    state = lucidrains_state()
    state[key] = torch.zeros(3)
    result = run_cli(tool_main, *lucidrains_args(workspace, state))
    assert_fails_cleanly(result, [str(workspace / "inputs" / "lucidrains.pt"), f"{key} has shape [3]", "2-D"], workspace / "out")


def test_from_torch_state_dict_names_a_value_that_is_no_array():
    state = state_dict_numpy(lucidrains_absolute())
    state["token_emb.weight"] = [[0.0, 1.0]]
    with pytest.raises(ConversionError) as error:
        FastformerPretrainedModel.from_torch_state_dict("lucidrains", state)
    assert str(error.value) == ("state_dict: key 'token_emb.weight' holds the list [[0.0, 1.0]]; expected a state_dict "
                                "whose every value is a weight tensor")  # fmt: skip


def test_from_torch_state_dict_takes_a_modules_tensors_as_they_are():
    reference = lucidrains_absolute()
    from_tensors = FastformerPretrainedModel.from_torch_state_dict("lucidrains", reference.state_dict())
    from_arrays = FastformerPretrainedModel.from_torch_state_dict("lucidrains", state_dict_numpy(reference))
    for (name, a), (_, b) in zip(from_tensors.state_dict().items(), from_arrays.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


@pytest.mark.parametrize("text, needle", [
    ('{"hidden_size": 32,', "not valid JSON"),
    ("", "not valid JSON"),
])
def test_broken_config_json(tool_main, workspace, text, needle):
    args = official_args(workspace, official().state_dict())
    (workspace / "inputs" / "fastformer.json").write_text(text)
    assert_fails_cleanly(run_cli(tool_main, *args), [needle, "fastformer.json"], workspace / "out")


def test_config_json_missing_a_field(tool_main, workspace):
    config = official_json()
    del config["num_attention_heads"]
    result = run_cli(tool_main, *official_args(workspace, official().state_dict(), config))
    assert_fails_cleanly(result, ["missing", "num_attention_heads"], workspace / "out")


def test_config_file_not_found(tool_main, workspace):
    args = official_args(workspace, official().state_dict())
    os.remove(workspace / "inputs" / "fastformer.json")
    assert_fails_cleanly(run_cli(tool_main, *args), ["fastformer.json", "not found"], workspace / "out")


def test_config_json_with_inconsistent_values(tool_main, workspace):
    config = official_json()
    config["hidden_size"] = 30  # not a multiple of num_attention_heads=4
    result = run_cli(tool_main, *official_args(workspace, official().state_dict(), config))
    assert_fails_cleanly(result, ["hidden_size", "num_attention_heads"], workspace / "out")


def test_non_empty_output_dir_without_overwrite_is_untouched(tool_main, workspace):
    out_dir = workspace / "out" / "model"
    (out_dir / "sub").mkdir(parents=True)
    (out_dir / "keep.txt").write_text("precious")
    (out_dir / "sub" / "model_state.pdparams").write_bytes(b"old weights")
    args = lucidrains_args(workspace, lucidrains_state())
    assert_fails_cleanly(run_cli(tool_main, *args), [str(out_dir), "exists"], workspace / "out", ["model"])
    assert sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")) == ["keep.txt", "sub", "sub/model_state.pdparams"]
    assert (out_dir / "keep.txt").read_text() == "precious"
    assert (out_dir / "sub" / "model_state.pdparams").read_bytes() == b"old weights"


def test_overwrite_replaces_the_directory_completely(tool_main, workspace):
    out_dir = workspace / "out" / "model"
    (out_dir / "sub").mkdir(parents=True)
    (out_dir / "keep.txt").write_text("old")
    (out_dir / "model_state.pdparams").write_bytes(b"stale")
    code, _, stderr = run_cli(tool_main, *lucidrains_args(workspace, lucidrains_state(), ["--overwrite"]))
    assert code == 0, stderr
    assert set(os.listdir(out_dir)) == SAFETENSORS
    assert os.listdir(workspace / "out") == ["model"], "retired or staging directory left behind"
    FastformerForMaskedLM.from_pretrained(str(out_dir))  # the new directory is whole


def test_empty_existing_output_dir_is_used(tool_main, workspace):
    (workspace / "out" / "model").mkdir()
    code, _, stderr = run_cli(tool_main, *lucidrains_args(workspace, lucidrains_state()))
    assert code == 0, stderr
    assert set(os.listdir(workspace / "out" / "model")) == SAFETENSORS


def test_failed_conversion_with_overwrite_keeps_the_old_directory(tool_main, workspace):
    out_dir = workspace / "out" / "model"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("old")
    state = lucidrains_state()
    del state["to_logits.1.weight"]
    result = run_cli(tool_main, *lucidrains_args(workspace, state, ["--overwrite"]))
    assert_fails_cleanly(result, ["to_logits.1.weight"], workspace / "out", ["model"])
    assert os.listdir(out_dir) == ["keep.txt"]


def test_output_path_that_is_a_file(tool_main, workspace):
    target = workspace / "out" / "model"
    target.write_text("a file")
    result = run_cli(tool_main, *lucidrains_args(workspace, lucidrains_state()))
    assert_fails_cleanly(result, [str(target)], workspace / "out", ["model"])
    assert target.read_text() == "a file"


# ----------------------------------------------------------------------------------------------
# tied score projections and rotary buffers
# ----------------------------------------------------------------------------------------------
def test_tied_lucidrains_keys_are_accepted_and_shared(tool_main, workspace):
    reference = lucidrains_model(VOCAB, 32, 3, 4, 8, SEQ_LEN, absolute=False, seed=8)
    state = reference.state_dict()
    for i in range(3):  # torch's state_dict repeats the tied tensors under every layer
        assert f"layers.{i}.0.fn.to_q_attn_logits.weight" in state
        assert f"layers.{i}.0.fn.to_k_attn_logits.weight" in state
    model = FastformerPretrainedModel.from_torch_state_dict("lucidrains", state_dict_numpy(reference), max_seq_len=SEQ_LEN)
    layers = model.fastformer.layers
    assert all(layer.attention.to_q_attn_logits.weight is layers[0].attention.to_q_attn_logits.weight for layer in layers)
    assert np.allclose(layers[2].attention.to_k_attn_logits.weight.numpy(), state["layers.0.0.fn.to_k_attn_logits.weight"].numpy().T)

    code, _, stderr = run_cli(tool_main, *lucidrains_args(workspace, state, ["--max-seq-len", SEQ_LEN]))
    assert code == 0, stderr


def test_tied_key_missing_under_one_layer_is_named(workspace):
    state = state_dict_numpy(lucidrains_absolute())
    del state["layers.1.0.fn.to_q_attn_logits.weight"]
    with pytest.raises(ConversionError, match=r"missing key\(s\) \['layers\.1\.0\.fn\.to_q_attn_logits\.weight'\]"):
        FastformerPretrainedModel.from_torch_state_dict("lucidrains", state)


def test_tied_keys_with_different_values_are_rejected():
    state = state_dict_numpy(lucidrains_absolute())
    state["layers.0.0.fn.to_q_attn_logits.weight"] = state["layers.0.0.fn.to_q_attn_logits.weight"] + 1.0
    with pytest.raises(ConversionError, match="to_q_attn_logits"):
        FastformerPretrainedModel.from_torch_state_dict("lucidrains", state)


def test_non_standard_rotary_frequencies_are_rejected(tool_main, workspace):
    state = lucidrains_state(lucidrains_rotary)
    key = "layers.1.0.fn.pos_emb.freqs"
    assert key in state
    state[key] = state[key] * 2.0
    result = run_cli(tool_main, *lucidrains_args(workspace, state, ["--max-seq-len", SEQ_LEN]))
    assert_fails_cleanly(result, [key, "rotary"], workspace / "out")

    state = lucidrains_state(lucidrains_rotary)
    state[key] = torch.ones(3)
    result = run_cli(tool_main, *lucidrains_args(workspace, state, ["--max-seq-len", SEQ_LEN]))
    assert_fails_cleanly(result, [key], workspace / "out")


def test_unknown_source_is_an_argparse_error(tool_main, workspace):
    checkpoint = save_checkpoint(lucidrains_state(), workspace / "inputs" / "x.pt")
    code, _, stderr = run_cli(tool_main, "--source", "bert", "--checkpoint", checkpoint, "--output-dir", workspace / "out" / "model")
    assert code == 2 and "--source" in last_line(stderr)
    assert os.listdir(workspace / "out") == []
