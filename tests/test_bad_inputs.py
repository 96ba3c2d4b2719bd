"""A wider probe of the promises of ../README.md ("What is guaranteed on disk"): each case here once broke one
(a traceback, code that ran, a silently wrong or lost result) and must now end in one ``error:`` line, exit 2,
or be handled as documented."""
import json
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT, Payload, assert_one_line_error, run_main, write_tiny_config
from fastformer_zoo.data.readers import read_prepared, read_reviews
from fastformer_zoo.errors import UserError
from fastformer_zoo.directories import write_directory_atomically
from paddlenlp_fastformer.serialization import CheckpointError, load_weights, save_arrays

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import eval as eval_tool  # noqa: E402
import export_model  # noqa: E402
import infer  # noqa: E402
import prepare_data  # noqa: E402
import results_table  # noqa: E402
import train as train_tool  # noqa: E402


def evaluate(config, checkpoint, capsys):
    return run_main(eval_tool.main, ["-c", str(config), "-o", f"Global.checkpoint={checkpoint}"], capsys)


def export(config, checkpoint, target, capsys):
    argv = ["-c", str(config), "-o", f"Global.pretrained_model={checkpoint}", f"Global.save_inference_dir={target}"]
    return run_main(export_model.main, argv, capsys)


# ----------------------------------------------------------------------------------------------
# checkpoints PaddleNLP would read past our checks
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["pdparams", "safetensors"])
def test_sharded_checkpoints_are_refused_before_any_shard_is_read(tmp_path, trained, copy_of, kind, capsys):
    checkpoint, marker = copy_of(), tmp_path / "ran"
    shard = "model_state-00001-of-00001.pdparams" if kind == "pdparams" else "model-00001-of-00001.safetensors"
    index = "model_state.pdparams.index.json" if kind == "pdparams" else "model.safetensors.index.json"
    if kind == "pdparams":
        with open(checkpoint / shard, "wb") as stream:
            pickle.dump({"x": Payload(marker)}, stream)
    else:
        weights = load_weights(checkpoint)
        save_arrays({key: np.full_like(value, np.nan) for key, value in weights.items()}, checkpoint / shard)
    (checkpoint / index).write_text(json.dumps({"metadata": {}, "weight_map": {"classifier.weight": shard}}))
    assert_one_line_error(evaluate(trained[0], checkpoint, capsys), index, "sharded checkpoints are not read")
    from paddlenlp_fastformer import FastformerModel

    with pytest.raises(CheckpointError, match="sharded"):
        FastformerModel.from_pretrained(str(checkpoint))
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda c: save_arrays({k: v.astype("int32") for k, v in load_weights(c).items()}, c / "model.safetensors"), "dtype int32"),
        (lambda c: save_arrays({k: v.astype("float16") for k, v in load_weights(c).items()}, c / "model.safetensors"), "dtype float16"),
        (lambda c: _edit_json(c / "config.json", dtype="float16"), "'dtype' is 'float16'"),
        (lambda c: _edit_json(c / "config.json", id2label=["a", "b", "c", "d", "e"]), "'id2label' is a list"),
        (lambda c: _edit_json(c / "config.json", id2label={str(i): "same" for i in range(5)}), "must name each of the 5"),
        (lambda c: _edit_json(c / "config.json", vocab_size="149"), "'vocab_size' is '149'; expected an integer"),
        (lambda c: (c / "special_tokens_map.json").write_text("[1, 2]"), "cannot be loaded"),
        (lambda c: _edit_json(c / "tokenizer_config.json", model_max_length=float("nan")), "'model_max_length' is nan"),
        (lambda c: _edit_json(c / "tokenizer_config.json", model_max_length=-5), "'model_max_length' is -5"),
        (lambda c: _edit_json(c / "tokenizer_config.json", do_lower_case="false"), "do_lower_case"),
        (lambda c: _resave_without_metadata(c), "lacks the metadata"),
        (lambda c: _add_weight(c, "classifier.extra"), "unexpected weight(s) ['classifier.extra']"),
        (lambda c: _scale_weight(c, "classifier.weight", 3e38), "NaN or inf"),
    ],
)
def test_checkpoints_that_would_break_a_run_are_refused(tmp_path, trained, copy_of, damage, fragment, capsys):
    checkpoint = copy_of()
    damage(checkpoint)
    # Evaluation shows its progress bar before it finds the NaN outputs of the last case: not alone.
    assert_one_line_error(evaluate(trained[0], checkpoint, capsys), fragment, alone=False)
    assert_one_line_error(export(trained[0], checkpoint, tmp_path / "x", capsys), fragment)
    assert not (tmp_path / "x").exists()


def _edit_json(path: Path, **fields):
    content = json.loads(path.read_text())
    content.update(fields)
    path.write_text(json.dumps(content))


def _resave_without_metadata(checkpoint: Path):
    from safetensors.numpy import save_file

    save_file(load_weights(checkpoint), str(checkpoint / "model.safetensors"))


def _add_weight(checkpoint: Path, name: str):
    weights = load_weights(checkpoint)
    weights[name] = np.zeros([2], dtype="float32")
    save_arrays(weights, checkpoint / "model.safetensors")


def _scale_weight(checkpoint: Path, name: str, value: float):
    weights = load_weights(checkpoint)
    weights[name] = np.where(np.arange(weights[name].size).reshape(weights[name].shape) % 2, value, -value).astype("float32")
    save_arrays(weights, checkpoint / "model.safetensors")


def test_a_checkpoint_of_other_classes_is_not_scored_against_these_labels(trained, copy_of, capsys):
    checkpoint = copy_of()
    weights = load_weights(checkpoint)
    weights["classifier.weight"] = np.zeros([32, 10], dtype="float32")
    weights["classifier.bias"] = np.zeros([10], dtype="float32")
    save_arrays(weights, checkpoint / "model.safetensors")
    _edit_json(checkpoint / "config.json", num_labels=10, id2label={str(i): f"c{i}" for i in range(10)},
               label2id={f"c{i}": i for i in range(10)})  # fmt: skip
    assert_one_line_error(evaluate(trained[0], checkpoint, capsys), "'1 star'", "which the model does not know", "'c0'")


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda d: _edit_json(d / "inference_config.json", label_names=["same"] * 5), "'label_names' must be distinct"),
        (lambda d: _edit_json(d / "inference_config.json", max_seq_len=100000), "exceeds the model's 64 positions"),
        (lambda d: _edit_json(d / "inference_config.json", vocab_size="149"), "'vocab_size' must be a positive integer"),
        (lambda d: (d / "tokenizer_config.json").write_text("[]"), "cannot be loaded"),
        (lambda d: (d / "added_tokens.json").write_text("[1, 2]"), "cannot be loaded"),
    ],
)
def test_exports_that_would_break_prediction_are_refused(tmp_path, trained, damage, fragment, capsys):
    from fastformer_zoo.deploy.export import export_inference_model

    export_dir = tmp_path / "export"
    export_inference_model(str(trained[1] / "best"), str(export_dir), onnx=True)
    damage(export_dir)
    assert_one_line_error(run_main(infer.main, ["--model_dir", str(export_dir), "--text", "fine"], capsys), fragment)


@pytest.mark.parametrize("content", [b"", b"\x08\x01garbage", b"not onnx at all"])
def test_a_damaged_onnx_file_is_one_line(tmp_path, trained, content, capsys):
    from fastformer_zoo.deploy.export import export_inference_model

    export_dir = tmp_path / "export"
    export_inference_model(str(trained[1] / "best"), str(export_dir), onnx=True)
    for graph_file in ("inference.onnx", "inference_packed.onnx"):
        (export_dir / graph_file).write_bytes(content)
    argv = ["--model_dir", str(export_dir), "--text", "fine", "--backend", "onnxruntime"]
    for graph in ("auto", "portable"):  # auto runs the packed graph on onnxruntime
        assert_one_line_error(run_main(infer.main, argv + ["--graph", graph], capsys), "cannot be loaded")


# ----------------------------------------------------------------------------------------------
# directories: symbolic links, planted staging names, data that changes under a run
# ----------------------------------------------------------------------------------------------
def test_writing_through_a_symbolic_link_replaces_its_target_and_leaves_nothing(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "current").symlink_to(tmp_path / "v1", target_is_directory=True)
    for content in ("first", "second", "third"):
        write_directory_atomically(lambda d, c=content: Path(d, "f.txt").write_text(c), str(tmp_path / "current"), overwrite=True)
        assert (tmp_path / "current" / "f.txt").read_text() == content
    assert (tmp_path / "current").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "v1"]


@pytest.mark.parametrize("planted", ["empty .last.new", "file .last.new", "file .best.old", "link .last.old"])
def test_staging_names_planted_by_hand_are_not_trusted(tmp_path, trained, planted, capsys):
    config, output = trained
    run_dir = tmp_path / "run"
    shutil.copytree(output, run_dir)
    kind, name = planted.split()
    if kind == "empty":
        (run_dir / name).mkdir()
    elif kind == "file":
        (run_dir / name).write_text("x")
    else:
        (run_dir / name).symlink_to(tmp_path)
    argv = ["-c", str(config), "-o", f"Global.output_dir={run_dir}", "Global.max_steps=5"]
    assert run_main(train_tool.main, argv, capsys)[0] == 0
    assert "resumed from" in (run_dir / "train.log").read_text()
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == [".lock"]
    assert tmp_path.is_dir() and (tmp_path / "run").is_dir()  # a link was removed, not what it points to


def test_a_lock_that_is_a_symbolic_link_is_refused_and_its_target_kept(tmp_path, tiny_data_dir, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".lock").symlink_to(precious)
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out")
    assert_one_line_error(run_main(train_tool.main, ["-c", str(config)], capsys), ".lock: cannot be used as the run's lock")
    assert precious.read_text() == "keep me"


def test_data_re_prepared_during_a_run_is_refused_on_resume(tmp_path, tiny_data_dir, capsys):
    from fastformer_zoo.engine.trainer import train
    from fastformer_zoo.settings import load_config

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    config = write_tiny_config(tmp_path / "c.yaml", data, tmp_path / "out", Global={"max_steps": 4, "save_steps": 2})

    def re_prepare(step, loss):
        if step == 1:  # the run read the old file; the file now changes under it
            lines = (data / "train.jsonl").read_text().splitlines()
            (data / "train.jsonl").write_text("\n".join(reversed(lines)) + "\n")

    train(load_config(config), on_step_end=re_prepare)
    result = run_main(train_tool.main, ["-c", str(config), "-o", "Global.max_steps=6"], capsys)
    assert_one_line_error(result, f"{data / 'train.jsonl'} is not the file", alone=False)


def test_prepare_data_overwrite_replaces_only_a_dataset_and_never_its_input(tmp_path, tiny_data_dir, capsys):
    run_dir = tmp_path / "a_run"
    (run_dir / "best").mkdir(parents=True)
    raw = tiny_data_dir.parent / "raw.json"
    argv = ["--input", str(raw), "--output-dir", str(run_dir), "--splits", "10,5,5", "--overwrite"]
    assert_one_line_error(run_main(prepare_data.main, argv, capsys), "holds files but no earlier dataset")
    assert (run_dir / "best").is_dir()
    dataset = tmp_path / "dataset"
    shutil.copytree(tiny_data_dir, dataset)
    shutil.copy(raw, dataset / "raw.json")
    argv = ["--input", str(dataset / "raw.json"), "--output-dir", str(dataset), "--splits", "10,5,5", "--overwrite"]
    assert_one_line_error(run_main(prepare_data.main, argv, capsys), "lies inside it and would be deleted")
    assert (dataset / "raw.json").is_file()


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
def test_lone_surrogates_are_skipped_in_raw_reviews_and_refused_in_prepared_splits(tmp_path):
    raw = tmp_path / "raw.json"
    raw.write_text('{"overall": 5, "reviewText": "fine \\ud800 text"}\n{"overall": 4, "reviewText": "good"}\n')
    examples, report = read_reviews(raw)
    assert [e["text"] for e in examples] == ["good"] and report.skipped == {"text_not_valid_unicode": 1}
    prepared = tmp_path / "train.jsonl"
    prepared.write_text('{"text": "ok", "label": 1}\n{"text": "bad \\udc80", "label": 2}\n')
    with pytest.raises(UserError, match=rf"{prepared}:2: expected .*valid Unicode"):
        read_prepared(prepared, 5)


@pytest.mark.parametrize(
    "line, fragment",
    [
        ('{"overall": 5' + "0" * 5000 + ', "reviewText": "x"}', "unreadable JSON"),
        ('{"overall": 5, "reviewText": ' + "[" * 100000 + "]" * 100000 + "}", "unreadable JSON"),
    ],
    ids=["huge integer", "deep nesting"],
)
def test_json_lines_no_parser_should_read_are_one_line(tmp_path, line, fragment, capsys):
    raw = tmp_path / "raw.json"
    raw.write_text(line + "\n")
    argv = ["--input", str(raw), "--output-dir", str(tmp_path / "out"), "--splits", "1,0,0"]
    assert_one_line_error(run_main(prepare_data.main, argv, capsys), f"{raw}:1", fragment)


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path, capsys):
    raw = tmp_path / "raw.csv"
    raw.write_text("rating,review,review\n5,good,bad\n")
    argv = ["--input", str(raw), "--output-dir", str(tmp_path / "out"), "--splits", "1,0,0"]
    assert_one_line_error(run_main(prepare_data.main, argv, capsys), "['review'] more than once")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--seed", "-1"], "--seed"),
        (["--synthetic", "99999999999999999999"], "--synthetic"),
        (["--splits", "0,0,0"], "at least one split with rows"),
    ],
)
def test_prepare_data_values_out_of_range(tmp_path, argv, fragment, capsys):
    base = ["--output-dir", str(tmp_path / "out")] + ([] if "--synthetic" in argv else ["--synthetic", "30"])
    assert_one_line_error(run_main(prepare_data.main, base + argv, capsys), fragment)


# ----------------------------------------------------------------------------------------------
# settings and resumption
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, fragment",
    [
        ("Data.max_vocab_size=2", "Data.max_vocab_size=2"),
        ("Global.num_threads=99999999999999999999", "'Global.num_threads'"),
        ("Model.max_position_embeddings=10000000000", "'Model.max_position_embeddings'"),
        ("Global.output_dir=''", "'Global.output_dir'"),
    ],
)
def test_settings_that_used_to_crash(tmp_path, tiny_data_dir, override, fragment, capsys):
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out")
    assert_one_line_error(run_main(train_tool.main, ["-c", str(config), "-o", override], capsys), fragment, alone=False)


def test_yaml_files_that_are_not_utf8_or_repeat_a_key(tmp_path, capsys):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("Data:\n  data_dir: caf\xe9\n".encode("latin-1"))
    assert_one_line_error(run_main(train_tool.main, ["-c", str(latin)], capsys), "not UTF-8")
    twice = tmp_path / "twice.yaml"
    twice.write_text("Data:\n  data_dir: d\nGlobal:\n  epochs: 1\n  epochs: 5\n")
    assert_one_line_error(run_main(train_tool.main, ["-c", str(twice)], capsys), "'epochs' appears twice")


def test_a_yaml_alias_bomb_gives_a_short_error(tmp_path, capsys):
    bomb = tmp_path / "bomb.yaml"
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(6)]
    bomb.write_text("\n".join(levels) + "\nData:\n  data_dir: *g\n")
    code, lines = run_main(train_tool.main, ["-c", str(bomb)], capsys)
    assert code == 2 and len(lines) == 1 and len(lines[0]) < 1000


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda last: _edit_json(last / "trainer_state.json", fingerprints=[]), "not a readable training state"),
        (lambda last: _edit_progress(last, epoch="x"), "not a readable training state"),
        (lambda last: _edit_progress(last, best_score=float("nan")), "not a readable training state"),
        (lambda last: _edit_json(last / "trainer_state.json", rng="abc"), "not a readable training state"),
        (lambda last: _edit_json(last / "trainer_state.json", schedule=[]), "not a readable training state"),
        (lambda last: _damage_optimizer(last, "nan"), "holds NaN or inf"),
        (lambda last: _damage_optimizer(last, "drop"), "the optimizer state does not fit this model"),
        (lambda last: _replace_by_directory(last / "trainer_state.json"), "trainer_state.json: missing"),
        (lambda last: (last / "train_config.yaml").write_text("Data: [1, 2]\n"), "every section must be a mapping"),
    ],
)
def test_a_damaged_training_state_is_refused_on_resume(tmp_path, trained, damage, fragment, capsys):
    config, output = trained
    run_dir = tmp_path / "run"
    shutil.copytree(output, run_dir)
    damage(run_dir / "last")
    argv = ["-c", str(config), "-o", f"Global.output_dir={run_dir}", "Global.max_steps=6"]
    assert_one_line_error(run_main(train_tool.main, argv, capsys), fragment, alone=False)


def _edit_progress(last: Path, **fields):
    state = json.loads((last / "trainer_state.json").read_text())
    state["progress"].update(fields)
    (last / "trainer_state.json").write_text(json.dumps(state))


def _damage_optimizer(last: Path, how: str):
    arrays = load_weights_from(last / "optimizer.safetensors")
    key = sorted(arrays)[0]
    if how == "nan":
        arrays[key] = np.full_like(arrays[key], np.nan)
    else:
        del arrays[key]
    save_arrays(arrays, last / "optimizer.safetensors")


def load_weights_from(path: Path) -> dict:
    from paddlenlp_fastformer.serialization import load_arrays

    return dict(load_arrays(path))


def _replace_by_directory(path: Path):
    path.unlink()
    path.mkdir()


def test_a_changed_seed_is_refused_on_resume(tmp_path, trained, capsys):
    config, output = trained
    run_dir = tmp_path / "run"
    shutil.copytree(output, run_dir)
    argv = ["-c", str(config), "-o", f"Global.output_dir={run_dir}", "Global.max_steps=6", "Global.seed=7"]
    assert_one_line_error(run_main(train_tool.main, argv, capsys), "Global.seed=42, now 7", alone=False)


# ----------------------------------------------------------------------------------------------
# kept results, start-up, files
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("record, fragment", [("[]", "holds a JSON list"), ('{"model": "bert"}', "field 'seed'")])
def test_results_table_refuses_records_it_cannot_read(tmp_path, record, fragment, capsys):
    (tmp_path / "run_seed1").mkdir()
    (tmp_path / "run_seed1" / "metrics.json").write_text(record)
    assert_one_line_error(run_main(results_table.main, ["--results-dir", str(tmp_path)], capsys), fragment)


def test_ctrl_c_while_a_tool_is_starting_is_one_line_with_code_130(tmp_path):
    run = subprocess.Popen([sys.executable, "tools/eval.py", "-c", "configs/amazon.yaml"], cwd=PROJECT_ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(1.5)  # paddle is still being imported
    run.send_signal(2)
    _, stderr = run.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert run.returncode == 130 and lines[-1].startswith("error: interrupted"), stderr[-2000:]
    assert "Traceback" not in stderr


def test_checkpoint_files_are_readable_by_others(trained):
    for path in (trained[1] / "best").iterdir():
        assert path.stat().st_mode & 0o644 == 0o644, path


def test_errors_name_the_file_asked_for_not_a_temporary_one(tmp_path, trained, capsys):
    (tmp_path / "predictions").mkdir()
    argv = ["-c", str(trained[0]), "-o", f"Global.checkpoint={trained[1] / 'best'}",
            f"Global.predictions_file={tmp_path / 'predictions'}"]  # fmt: skip
    assert_one_line_error(run_main(eval_tool.main, argv, capsys), f"Global.predictions_file='{tmp_path / 'predictions'}' is a directory")


def test_a_checkpoint_of_another_kind_of_model_is_named_before_anything_is_loaded(tmp_path, trained, copy_of, capsys):
    """Evaluating a classifier as a text writer (or the reverse) names both kinds, instead of starting a head of
    random weights on its encoder and failing inside Paddle (or blaming its labels)."""
    config, output = trained
    argv = ["-c", str(config), "-o", f"Global.checkpoint={output / 'best'}", "Global.task=seq2seq"]
    assert_one_line_error(run_main(eval_tool.main, argv, capsys), "holds a classifier", "this needs a text writer (Global.task=seq2seq)")
    writer = copy_of("best")
    saved = json.loads((writer / "config.json").read_text(encoding="utf-8"))
    (writer / "config.json").write_text(json.dumps({**saved, "architectures": ["FastformerForConditionalGeneration"]}), encoding="utf-8")
    argv = ["-c", str(config), "-o", f"Global.checkpoint={writer}"]
    assert_one_line_error(run_main(eval_tool.main, argv, capsys), "holds a text writer", "this needs a classifier")
