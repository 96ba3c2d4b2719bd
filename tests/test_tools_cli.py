"""Command-line behaviour of tools/train.py, tools/eval.py and tools/prepare_data.py.

A user mistake must end with exit code 2 and one line on stderr naming the problem, without a
traceback. Paddle and PaddleNLP may print warnings on stderr first, so the checks look at the
LAST stderr line. The tools' main() runs in this process (a subprocess would add seconds of imports
and nothing else); one test runs a tool as its own process, as a user does, to hold the whole console.
"""
import contextlib
import importlib
import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
TIMEOUT = 300


def run_tool(script, *args) -> subprocess.CompletedProcess:
    """``tools/<script>``'s main() in this process: its exit code and what it printed."""
    main = importlib.import_module(Path(script).stem).main
    stdout, stderr = io.StringIO(), io.StringIO()
    sigint = signal.getsignal(signal.SIGINT)  # main() takes Ctrl-C over, as a tool does
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main([str(arg) for arg in args]) or 0
    except SystemExit as exit_info:
        code = exit_info.code if isinstance(exit_info.code, int) else (0 if exit_info.code is None else 1)
    finally:
        signal.signal(signal.SIGINT, sigint)
    return subprocess.CompletedProcess([script, *args], code, stdout.getvalue(), stderr.getvalue())


def run_tool_process(script, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"tools/{script}", *map(str, args)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=TIMEOUT
    )


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_usage_error(completed, *fragments, prefixes=("error: ", "config error: ")):
    """Exit code 2, no traceback, and a last stderr line ``error: ...`` holding every fragment."""
    line = last_line(completed.stderr)
    context = f"exit {completed.returncode}; stderr ends:\n{completed.stderr[-2000:]}"
    assert completed.returncode == 2, context
    assert "Traceback" not in completed.stderr, context
    assert line.startswith(prefixes), context
    for fragment in fragments:
        assert str(fragment) in line, context
    return line


def copy_data(source, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(source, target)
    return target


def replace_line(path, number, text):
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- tools/train.py


def test_train_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_usage_error(run_tool("train.py", "-c", missing), "not found", missing)


def test_train_unknown_override_key(tiny_config_path):
    # As a user runs it: its own process, paddle's own start-up output included.
    line = assert_usage_error(run_tool_process("train.py", "-c", tiny_config_path, "-o", "Data.batchsize=4"), "Data.batchsize")
    assert "allowed keys" in line
    for allowed in ("batch_size", "eval_batch_size", "max_seq_len", "data_dir"):
        assert allowed in line


def test_train_wrong_override_type(tiny_config_path):
    line = assert_usage_error(run_tool("train.py", "-c", tiny_config_path, "-o", "Data.batch_size=abc"), "Data.batch_size")
    assert "abc" in line and "int" in line


def test_train_missing_data_dir(tmp_path, tiny_config_path):
    missing = tmp_path / "no_such_data"
    assert_usage_error(run_tool("train.py", "-c", tiny_config_path, "-o", f"Data.data_dir={missing}"), missing)
    assert not (tmp_path / "out" / "last").exists()


def test_train_corrupt_train_line(tmp_path, tiny_data_dir, tiny_config_path):
    data_dir = copy_data(tiny_data_dir, tmp_path)
    replace_line(data_dir / "train.jsonl", 3, '{"label": 4, "text": "unterminated')
    completed = run_tool("train.py", "-c", tiny_config_path, "-o", f"Data.data_dir={data_dir}")
    assert_usage_error(completed, f"{data_dir / 'train.jsonl'}:3", "JSON")


def test_train_label_out_of_range_in_prepared_file(tmp_path, tiny_data_dir, tiny_config_path):
    data_dir = copy_data(tiny_data_dir, tmp_path)
    replace_line(data_dir / "train.jsonl", 5, json.dumps({"label": 5, "text": "Five is not a class id."}))
    completed = run_tool("train.py", "-c", tiny_config_path, "-o", f"Data.data_dir={data_dir}")
    assert_usage_error(completed, f"{data_dir / 'train.jsonl'}:5", "label")


def test_train_label_out_of_range_in_dev_file(tmp_path, tiny_data_dir, tiny_config_path):
    data_dir = copy_data(tiny_data_dir, tmp_path)
    replace_line(data_dir / "dev.jsonl", 2, json.dumps({"label": -1, "text": "Negative class id."}))
    completed = run_tool("train.py", "-c", tiny_config_path, "-o", f"Data.data_dir={data_dir}")
    assert_usage_error(completed, f"{data_dir / 'dev.jsonl'}:2", "label")


@pytest.mark.parametrize("text", ["", "   "])
def test_train_empty_text_in_prepared_file(tmp_path, tiny_data_dir, tiny_config_path, text):
    data_dir = copy_data(tiny_data_dir, tmp_path)
    replace_line(data_dir / "train.jsonl", 2, json.dumps({"label": 3, "text": text}))
    completed = run_tool(
        "train.py", "-c", tiny_config_path, "-o", f"Data.data_dir={data_dir}", "Global.max_steps=1"
    )
    assert_usage_error(completed, f"{data_dir / 'train.jsonl'}:2", "text")


# --------------------------------------------------------------------------- tools/prepare_data.py


def write_mcauley(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def review(stars, text):
    return {"overall": stars, "reviewText": text, "summary": "s", "asin": "B0"}


def test_prepare_data_missing_input(tmp_path):
    missing = tmp_path / "missing.json"
    completed = run_tool("prepare_data.py", "--input", missing, "--output-dir", tmp_path / "out", "--splits", "0.8,0.1,0.1")
    assert_usage_error(completed, missing, prefixes=("error: ",))
    assert not (tmp_path / "out" / "stats.json").exists()


def test_prepare_data_corrupt_json_line(tmp_path):
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(review(5, "Fine.")) + "\n" + '{"overall": 4, "reviewText": \n', encoding="utf-8")
    completed = run_tool("prepare_data.py", "--input", raw, "--output-dir", tmp_path / "out", "--splits", "0.8,0.1,0.1")
    assert_usage_error(completed, f"{raw}:2", "JSON", prefixes=("error: ",))
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_prepare_data_reports_skipped_rows(tmp_path):
    good = [review(stars, f"Review number {i} rated {stars}.") for i, stars in enumerate([1, 2, 3, 4, 5] * 2)]
    raw = write_mcauley(tmp_path / "raw.json", good[:3] + [review(0, "Zero stars?")] + good[3:6]
                        + [review(7, "Seven stars!"), review(4, "")] + good[6:])
    # Lines of the bad rows: 4 (rating 0), 8 (rating 7), 9 (empty text).
    out = tmp_path / "out"
    completed = run_tool("prepare_data.py", "--input", raw, "--output-dir", out, "--splits", "0.8,0.1,0.1")
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = completed.stdout
    assert "13 rows, 10 kept" in summary
    assert "rating_out_of_range 2" in summary and "empty_text 1" in summary
    for location in (f"{raw}:4 (rating_out_of_range)", f"{raw}:8 (rating_out_of_range)", f"{raw}:9 (empty_text)"):
        assert location in summary

    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    (report,) = stats["inputs"]
    assert (report["rows"], report["kept"]) == (13, 10)
    assert report["skipped"] == {"rating_out_of_range": 2, "empty_text": 1}
    assert sum(split["count"] for split in stats["splits"].values()) == 10
    written = [
        json.loads(line)
        for name in ("train", "dev", "test")
        for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(row["text"] for row in written) == sorted(row["reviewText"] for row in good)
    assert all(row["label"] == int(row["text"].rstrip(".").split()[-1]) - 1 for row in written)


# --------------------------------------------------------------------------- tools/eval.py


@pytest.fixture
def checkpoint(trained):
    """The session's tiny trained run: its config and its last/ checkpoint."""
    config, output = trained
    return {"config": config, "dir": output / "last"}


def test_eval_without_checkpoint(checkpoint):
    assert_usage_error(run_tool("eval.py", "-c", checkpoint["config"]), "Global.checkpoint")


def test_eval_checkpoint_does_not_exist(tmp_path, checkpoint):
    missing = tmp_path / "no_checkpoint"
    completed = run_tool("eval.py", "-c", checkpoint["config"], "-o", f"Global.checkpoint={missing}")
    assert_usage_error(completed, "Global.checkpoint", str(missing), "not a directory")


def test_eval_checkpoint_without_config_json(tmp_path, checkpoint):
    incomplete = tmp_path / "incomplete"
    shutil.copytree(checkpoint["dir"], incomplete)
    (incomplete / "config.json").unlink()
    completed = run_tool("eval.py", "-c", checkpoint["config"], "-o", f"Global.checkpoint={incomplete}")
    assert_usage_error(completed, str(incomplete), "config.json")


def test_eval_prints_table_then_json(checkpoint):
    completed = run_tool("eval.py", "-c", checkpoint["config"], "-o", f"Global.checkpoint={checkpoint['dir']}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    metrics = json.loads(last_line(completed.stdout))
    assert {"accuracy", "macro_f1", "per_class_f1", "confusion_matrix", "num_examples"} <= set(metrics)
    assert metrics["num_examples"] == 40
    assert sum(map(sum, metrics["confusion_matrix"])) == 40
    assert list(metrics["per_class_f1"]) == ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"]
    table = completed.stdout[: completed.stdout.rindex(last_line(completed.stdout))]
    assert f"examples: 40  accuracy: {metrics['accuracy']:.4f}  macro-F1: {metrics['macro_f1']:.4f}" in table
    assert "confusion matrix" in table
    for name in metrics["per_class_f1"]:
        assert name in table
