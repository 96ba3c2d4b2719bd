"""Loading never runs code from a file, and a broken checkpoint is an error, not a warning.

Every load path of the project meets a crafted pickle whose payload would create a marker file; the
payload must not run, and the tools must end with one line naming the file (exit 2). The same one-line
contract holds for damaged, incomplete or inconsistent checkpoints and exports.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT, Payload, assert_one_line_error, run_main, write_tiny_config
from fastformer_zoo.deploy.export import export_inference_model
from paddlenlp_fastformer.serialization import CheckpointError, load_weights, save_arrays

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import convert_torch_checkpoint  # noqa: E402  (the tools, run in this process)
import eval as eval_tool  # noqa: E402
import export_model  # noqa: E402
import infer  # noqa: E402
import train as train_tool  # noqa: E402


def write_bfloat16(directory: Path, name: str) -> None:
    """Rewrite the safetensors weights of ``directory`` with ``name`` in bfloat16 (through torch: numpy has no such type)."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    tensors = {key: torch.from_numpy(value) for key, value in load_weights(directory).items()}
    tensors[name] = tensors[name].to(torch.bfloat16)
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "np"})


def plant_pickle(directory: Path, name: str, marker: Path) -> None:
    """Replace the weights of ``directory`` by a pickle that carries the payload beside real-looking arrays."""
    for weights in ("model.safetensors", "model_state.pdparams"):
        (directory / weights).unlink(missing_ok=True)
    with open(directory / name, "wb") as stream:
        pickle.dump({"fastformer.embeddings.word_embeddings.weight": np.zeros([2, 2]), "x": Payload(marker)}, stream)


# ----------------------------------------------------------------------------------------------
# no code runs from a file
# ----------------------------------------------------------------------------------------------
def test_eval_and_export_refuse_a_pickle_that_runs_code(tmp_path, trained, copy_of, capsys):
    config, _ = trained
    checkpoint, marker = copy_of(), tmp_path / "ran"
    plant_pickle(checkpoint, "model_state.pdparams", marker)
    expected = ("model_state.pdparams", "refusing to unpickle 'posix.system'")
    assert_one_line_error(run_main(eval_tool.main, ["-c", str(config), "-o", f"Global.checkpoint={checkpoint}"], capsys), *expected)
    export = ["-c", str(config), "-o", f"Global.pretrained_model={checkpoint}", f"Global.save_inference_dir={tmp_path / 'x'}"]
    assert_one_line_error(run_main(export_model.main, export, capsys), *expected)
    assert not marker.exists()


def test_from_pretrained_refuses_a_pickle_that_runs_code(tmp_path, copy_of):
    from paddlenlp.transformers import AutoModelForSequenceClassification

    from paddlenlp_fastformer import FastformerForSequenceClassification, FastformerModel

    checkpoint, marker = copy_of(), tmp_path / "ran"
    plant_pickle(checkpoint, "model_state.pdparams", marker)
    for load in (AutoModelForSequenceClassification.from_pretrained, FastformerForSequenceClassification.from_pretrained,
                 FastformerModel.from_pretrained):  # fmt: skip
        with pytest.raises(CheckpointError, match="refusing to unpickle 'posix.system'"):
            load(str(checkpoint))
    assert not marker.exists()


def test_a_genuine_pickled_checkpoint_still_loads(tmp_path, copy_of):
    from paddlenlp_fastformer import FastformerForSequenceClassification

    checkpoint = copy_of()
    model = FastformerForSequenceClassification.from_pretrained(str(checkpoint))
    (checkpoint / "model.safetensors").unlink()
    model.save_pretrained(str(checkpoint), safe_serialization=False)  # a pickle of arrays, as earlier versions wrote
    reloaded = FastformerForSequenceClassification.from_pretrained(str(checkpoint))
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


@pytest.mark.parametrize("planted", ["model_state.pdparams", "trainer_state.pdparams"])
def test_resume_refuses_pickles(tmp_path, trained, planted, capsys):
    config, output = trained
    run_dir, marker = tmp_path / "run", tmp_path / "ran"
    shutil.copytree(output, run_dir)
    last = run_dir / "last"
    if planted == "trainer_state.pdparams":  # the format of earlier versions: never unpickled
        (last / "trainer_state.json").unlink()
        with open(last / planted, "wb") as stream:
            pickle.dump({"progress": Payload(marker)}, stream)
    else:
        plant_pickle(last, planted, marker)
    result = run_main(train_tool.main, ["-c", str(config), "-o", f"Global.output_dir={run_dir}", "Global.max_steps=6"], capsys)
    assert_one_line_error(result, planted)
    assert not marker.exists()


def test_the_converter_refuses_pickled_code(tmp_path, capsys):
    marker = tmp_path / "ran"
    with open(tmp_path / "evil.pt", "wb") as stream:
        pickle.dump({"token_emb.weight": Payload(marker)}, stream)
    argv = ["--source", "lucidrains", "--checkpoint", str(tmp_path / "evil.pt"), "--output-dir", str(tmp_path / "out")]
    assert_one_line_error(run_main(convert_torch_checkpoint.main, argv, capsys), "evil.pt")
    assert not marker.exists() and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# a broken checkpoint is an error
# ----------------------------------------------------------------------------------------------
def damage_missing_weight(checkpoint: Path) -> str:
    weights = load_weights(checkpoint)
    del weights["classifier.weight"]
    save_arrays(weights, checkpoint / "model.safetensors")
    return "missing weight(s) ['classifier.weight']"


def damage_vocabulary(checkpoint: Path) -> str:
    with open(checkpoint / "vocab.txt", "a", encoding="utf-8") as stream:
        stream.write("surplus\n")
    return "vocab.txt: holds"


def damage_shape(checkpoint: Path) -> str:
    config = json.loads((checkpoint / "config.json").read_text())
    config["intermediate_size"] = 48
    (checkpoint / "config.json").write_text(json.dumps(config))
    return "config.json: intermediate_size is 48, but model.safetensors holds 'fastformer.layers.0.ffn_in.weight' of shape [32, 64]"


def damage_bfloat16(checkpoint: Path) -> str:
    write_bfloat16(checkpoint, "classifier.bias")
    return "model.safetensors: tensor 'classifier.bias' has dtype bfloat16, the model expects float32"


def damage_non_finite(checkpoint: Path) -> str:
    weights = load_weights(checkpoint)
    weights["classifier.bias"][0] = np.nan
    save_arrays(weights, checkpoint / "model.safetensors")
    return "weight 'classifier.bias' holds 1 non-finite value(s)"


def damage_truncated_weights(checkpoint: Path) -> str:
    data = (checkpoint / "model.safetensors").read_bytes()
    (checkpoint / "model.safetensors").write_bytes(data[: len(data) // 2])
    return "model.safetensors: not a readable safetensors file"


def damage_random_pickle(checkpoint: Path) -> str:
    (checkpoint / "model.safetensors").unlink()
    (checkpoint / "model_state.pdparams").write_bytes(os.urandom(4096))
    return "model_state.pdparams: not a readable weights file"


def damage_empty_config(checkpoint: Path) -> str:
    (checkpoint / "config.json").write_text("")
    return "config.json: not valid JSON"


def damage_tokenizer_config(checkpoint: Path) -> str:
    (checkpoint / "tokenizer_config.json").write_text("{not json")
    return "tokenizer_config.json: not valid JSON (Expecting property name"


DAMAGES = [damage_missing_weight, damage_vocabulary, damage_shape, damage_non_finite, damage_truncated_weights,
           damage_random_pickle, damage_empty_config, damage_tokenizer_config, damage_bfloat16]  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda damage: damage.__name__[len("damage_"):])
def test_eval_and_export_refuse_a_broken_checkpoint(tmp_path, trained, copy_of, damage, capsys):
    config, _ = trained
    checkpoint = copy_of()
    fragment = damage(checkpoint)
    assert_one_line_error(run_main(eval_tool.main, ["-c", str(config), "-o", f"Global.checkpoint={checkpoint}"], capsys), fragment)
    export = ["-c", str(config), "-o", f"Global.pretrained_model={checkpoint}", f"Global.save_inference_dir={tmp_path / 'x'}"]
    assert_one_line_error(run_main(export_model.main, export, capsys), fragment)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("damage", [damage_missing_weight, damage_vocabulary, damage_shape, damage_non_finite])
def test_from_pretrained_refuses_a_broken_checkpoint(copy_of, damage):
    from paddlenlp_fastformer import FastformerForSequenceClassification

    checkpoint = copy_of()
    fragment = damage(checkpoint)
    with pytest.raises(CheckpointError) as info:
        FastformerForSequenceClassification.from_pretrained(str(checkpoint))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_new_task_head_on_a_pretrained_encoder_is_allowed(copy_of):
    """Fine-tuning: a checkpoint of another architecture may lack the head, which starts fresh."""
    from paddlenlp_fastformer import FastformerForTokenClassification

    model = FastformerForTokenClassification.from_pretrained(str(copy_of()))
    assert model.classifier.weight.shape[0] == 32


def test_infer_refuses_an_export_whose_vocabulary_does_not_fit(tmp_path, trained, capsys):
    export_dir = tmp_path / "export"
    export_inference_model(str(trained[1] / "best"), str(export_dir))
    with open(export_dir / "vocab.txt", "a", encoding="utf-8") as stream:
        stream.write("surplus\n")
    result = run_main(infer.main, ["--model_dir", str(export_dir), "--text", "fine"], capsys)
    assert_one_line_error(result, "vocab.txt: holds", "the exported model has")


def test_infer_refuses_a_damaged_inference_config(tmp_path, trained, capsys):
    export_dir = tmp_path / "export"
    export_inference_model(str(trained[1] / "best"), str(export_dir))
    (export_dir / "inference_config.json").write_text("[]")
    result = run_main(infer.main, ["--model_dir", str(export_dir), "--text", "fine"], capsys)
    assert_one_line_error(result, "inference_config.json: not a valid inference config")


@pytest.mark.slow
def test_infer_refuses_non_finite_outputs(tmp_path, trained):
    """A graph with NaN weights (written past every check, as a damaged file would be) is never served."""
    import paddle

    from fastformer_zoo.deploy import export as export_module
    from fastformer_zoo.deploy.predictor import Predictor
    from fastformer_zoo.engine.checkpoint import load_checkpoint
    from fastformer_zoo.errors import UserError

    export_dir = tmp_path / "export"
    export_inference_model(str(trained[1] / "best"), str(export_dir))
    model, _ = load_checkpoint(str(trained[1] / "best"))
    model.classifier.bias.set_value(paddle.full(model.classifier.bias.shape, float("nan")))
    from paddlenlp_fastformer.kernels import library

    graphs = ("portable", "fused") if library.load() is not None else ("portable",)
    for graph in graphs:  # every graph of the export damaged alike
        export_module._save_static_graph(model, str(export_dir), fused=graph == "fused")
    export_module._save_packed_graph(model, str(export_dir))
    for graph in graphs + ("packed",):
        with pytest.raises(UserError, match="NaN or inf probabilities"):
            Predictor(str(export_dir), cpu_threads=1, graph=graph).predict(["fine"])


def test_conversion_refuses_non_finite_weights(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from torch_models import lucidrains_model

    state = lucidrains_model(50, 32, 1, 4, 8, 16, absolute=True).state_dict()
    state["to_logits.1.bias"][0] = float("inf")
    torch.save(state, tmp_path / "m.pt")
    argv = ["--source", "lucidrains", "--checkpoint", str(tmp_path / "m.pt"), "--output-dir", str(tmp_path / "out")]
    assert_one_line_error(run_main(convert_torch_checkpoint.main, argv, capsys), "to_logits.1.bias", "non-finite")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_crafted_pickle_never_runs_in_a_fresh_process(tmp_path, copy_of):
    """The same refusal through the real command, in its own process: exit 2, one line, no marker."""
    checkpoint, marker = copy_of(), tmp_path / "ran"
    plant_pickle(checkpoint, "model_state.pdparams", marker)
    config = write_tiny_config(tmp_path / "c.yaml", tmp_path, tmp_path / "out")
    completed = subprocess.run(
        [sys.executable, "tools/eval.py", "-c", str(config), "-o", f"Global.checkpoint={checkpoint}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert completed.returncode == 2 and len(lines) == 1 and "refusing to unpickle" in lines[0], completed.stderr
    assert not marker.exists()


@pytest.mark.parametrize("opcode", [b"\x96", b"\x8e"])  # BYTEARRAY8, BINBYTES8
def test_a_pickle_declaring_more_bytes_than_it_holds_is_one_error_and_nothing_more(tmp_path, opcode, capfd):
    """Damaged bytes whose opcode claims exabytes are refused before anything is allocated, saying so (the
    unpickler itself would try: an empty MemoryError, and CPython's stray 'SystemError' line on stderr)."""
    from paddlenlp_fastformer.serialization import CheckpointError, load_pickled_arrays

    path = tmp_path / "model_state.pdparams"
    path.write_bytes(b"\x80\x05" + opcode + (0x72EBD207E504FB9B).to_bytes(8, "little") + b"abc")
    with pytest.raises(CheckpointError, match="model_state.pdparams: not a readable weights file") as error:
        load_pickled_arrays(path)
    assert "only 3 remain" in str(error.value) and "MemoryError" not in str(error.value), error.value
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------------------------------
# files of the wrong kind, written here: bfloat16 weights, broken tokenizer configs, absurd sizes
# ----------------------------------------------------------------------------------------------
TINY = dict(vocab_size=8, hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=32,
            max_position_embeddings=16)  # fmt: skip


@pytest.fixture
def tiny_pretrained(tmp_path):
    """A from_pretrained directory of an untrained classifier with its vocabulary (8 tokens), in a second."""
    from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification
    from paddlenlp_fastformer.tokenizer import FastformerTokenizer

    directory = tmp_path / "tiny"
    FastformerForSequenceClassification(FastformerConfig(**TINY)).save_pretrained(str(directory))
    FastformerTokenizer.build_from_corpus(["a b c"]).save_pretrained(str(directory))
    return directory


def load_refused(directory: Path, model_class=None) -> str:
    """The one-line CheckpointError that from_pretrained raises for ``directory``."""
    from paddlenlp_fastformer import FastformerForSequenceClassification

    with pytest.raises(CheckpointError) as error:
        (model_class or FastformerForSequenceClassification).from_pretrained(str(directory))
    assert "\n" not in str(error.value)
    return str(error.value)


def test_bfloat16_weights_are_named_with_file_tensor_and_dtypes(tiny_pretrained):
    write_bfloat16(tiny_pretrained, "classifier.bias")
    expected = (f"{tiny_pretrained / 'model.safetensors'}: tensor 'classifier.bias' has dtype bfloat16, the model expects "
                "float32")  # fmt: skip
    assert load_refused(tiny_pretrained).startswith(expected)
    with pytest.raises(CheckpointError, match="tensor 'classifier.bias' has dtype bfloat16, the model expects float32"):
        load_weights(tiny_pretrained)  # what Global.init_from reads
    from paddlenlp_fastformer.serialization import load_arrays

    with pytest.raises(CheckpointError, match="tensor 'classifier.bias' has dtype bfloat16, which numpy cannot hold"):
        load_arrays(tiny_pretrained / "model.safetensors")


def test_bfloat16_in_a_pickled_checkpoint_is_named_too(tiny_pretrained):
    """Paddle pickles bfloat16 as uint16 bits: loaded as they are, they would be silently wrong numbers."""
    import paddle

    from paddlenlp_fastformer import FastformerForSequenceClassification

    model = FastformerForSequenceClassification.from_pretrained(str(tiny_pretrained))
    state = model.state_dict()
    state["classifier.weight"] = state["classifier.weight"].astype("bfloat16")
    (tiny_pretrained / "model.safetensors").unlink()
    paddle.save(state, str(tiny_pretrained / "model_state.pdparams"))
    expected = "model_state.pdparams: tensor 'classifier.weight' has dtype bfloat16 (stored as uint16), the model expects float32"
    assert expected in load_refused(tiny_pretrained)
    with pytest.raises(CheckpointError, match=r"has dtype bfloat16 \(stored as uint16\)"):
        load_weights(tiny_pretrained)


@pytest.mark.parametrize("content, said", [
    ("{not json", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2"),
    ("[]", "holds a JSON list; expected an object"),
    ({"unk_token": 5}, "'unk_token' is 5; expected a token (a string) or null"),
    ({"do_lower_case": "false"}, "'do_lower_case' is 'false'; expected true or false"),
    ({"model_max_length": "512"}, "'model_max_length' is '512'; expected a positive integer"),
    ({"model_max_length": 0}, "'model_max_length' is 0; expected a positive integer"),
    ({"additional_special_tokens": "[X]"}, "'additional_special_tokens' is '[X]'; expected a list of tokens"),
    ({"padding_side": "middle"}, "'padding_side' is 'middle'; expected 'right' or 'left'"),
])  # fmt: skip
def test_a_broken_tokenizer_config_is_named(tiny_pretrained, content, said):
    from paddlenlp_fastformer.tokenizer import FastformerTokenizer

    path = tiny_pretrained / "tokenizer_config.json"
    if isinstance(content, dict):
        content = json.dumps({**json.loads(path.read_text()), **content})
    path.write_text(content)
    with pytest.raises(CheckpointError) as error:
        FastformerTokenizer.from_pretrained(str(tiny_pretrained))
    assert str(error.value).startswith(f"{path}: {said}"), error.value


def test_a_field_given_to_from_pretrained_replaces_the_files(tiny_pretrained):
    from paddlenlp_fastformer.tokenizer import FastformerTokenizer

    path = tiny_pretrained / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "model_max_length": "512"}))
    assert FastformerTokenizer.from_pretrained(str(tiny_pretrained), model_max_length=64).model_max_length == 64


def edit_config(directory: Path, **fields) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


@pytest.mark.parametrize("field, weight, shape", [
    ("hidden_size", "fastformer.embeddings.word_embeddings.weight", [8, 16]),
    ("vocab_size", "fastformer.embeddings.word_embeddings.weight", [8, 16]),
    ("intermediate_size", "fastformer.layers.0.ffn_in.weight", [16, 32]),
    ("max_position_embeddings", "fastformer.embeddings.position_embeddings.weight", [16, 16]),
    ("num_attention_heads", "fastformer.layers.0.attention.query_att.weight", [16, 2]),
    ("num_hidden_layers", "fastformer.layers.0.", None),
])  # fmt: skip
def test_absurd_sizes_in_config_json_never_reach_the_allocator(tiny_pretrained, field, weight, shape):
    """2**31 of anything would ask Paddle for gigabytes to terabytes: refused from the weights' header first."""
    edit_config(tiny_pretrained, **{field: 2**31})
    message = load_refused(tiny_pretrained)
    assert message.startswith(f"{tiny_pretrained / 'config.json'}: {field} is 2147483648, but model.safetensors holds "
                              f"'{weight}"), message  # fmt: skip
    assert shape is None or f"of shape {shape}" in message
    assert message.endswith("expected config.json and the weights of one save_pretrained")


def test_sizes_are_checked_against_a_pickled_checkpoint_too(tiny_pretrained):
    from paddlenlp_fastformer import FastformerForSequenceClassification

    model = FastformerForSequenceClassification.from_pretrained(str(tiny_pretrained))
    (tiny_pretrained / "model.safetensors").unlink()
    model.save_pretrained(str(tiny_pretrained), safe_serialization=False)
    edit_config(tiny_pretrained, hidden_size=2**31 - 1)
    assert "config.json: hidden_size is 2147483647, but model_state.pdparams holds" in load_refused(tiny_pretrained)


def test_lucidrains_head_counts_are_checked_against_the_projection(tmp_path):
    from paddlenlp_fastformer import FastformerConfig, FastformerForMaskedLM

    directory = tmp_path / "lucidrains"
    config = FastformerConfig(**TINY, formulation="lucidrains", attention_head_size=8)
    FastformerForMaskedLM(config).save_pretrained(str(directory))
    edit_config(directory, num_attention_heads=2**20)
    message = load_refused(directory, FastformerForMaskedLM)
    assert "num_attention_heads is 1048576, but model.safetensors holds 'fastformer.layers.0.attention.to_qkv.weight' of " \
           "shape [16, 48] (3 x heads x 8 features per head)" in message, message


def test_a_size_given_to_from_pretrained_is_not_held_against_config_json(tiny_pretrained):
    from paddlenlp_fastformer import FastformerForSequenceClassification

    edit_config(tiny_pretrained, num_hidden_layers=3)
    assert "num_hidden_layers is 3" in load_refused(tiny_pretrained)
    model = FastformerForSequenceClassification.from_pretrained(str(tiny_pretrained), num_hidden_layers=1)
    assert len(model.fastformer.layers) == 1
