"""TIPC chains end to end: prepare.sh + test_train_inference_python.sh (lite_train_lite_infer), the
paddle2onnx chain, and a chain broken on purpose that must fail loudly.

The scripts run in a temporary copy of the project (never in the working tree), with the copy's
``../shared`` pointing at this checkout's ``../shared`` when it exists; without it, prepare.sh falls back
to generated reviews and the chains run all the same. The lite chain trains twice (one process, then two
processes), evaluates, exports and runs 8 + 1 inference variants: about 3 minutes on 2 busy CPU cores.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
CONFIG = "test_tipc/configs/fastformer/train_infer_python.txt"
P2O_CONFIG = "test_tipc/configs/fastformer/train_infer_python_paddle2onnx.txt"
MODE = "lite_train_lite_infer"
LITE_LOG = f"test_tipc/output/fastformer/{MODE}/results_python.log"
SINGLE_RUN = f"test_tipc/output/fastformer/{MODE}/norm_train_gpus_-1_autocast_null"
TIMEOUT = 1200  # seconds per script; the lite chain takes about 3 minutes

# Top-level folders that are outputs or caches, and never part of the project's files.
_IGNORED_TOP = {".git", "output", "data", "inference", "profiler_log", "build", ".pytest_cache", ".ruff_cache"}
_IGNORED_ANYWHERE = {"__pycache__"}
_IGNORED_TIPC = {"output", "data"}


def _ignore(root: Path):
    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).resolve().relative_to(root)
        skipped = {name for name in names if name in _IGNORED_ANYWHERE or name.endswith(".egg-info")}
        if relative == Path("."):
            skipped |= {name for name in names if name in _IGNORED_TOP}
        elif relative == Path("test_tipc"):
            skipped |= {name for name in names if name in _IGNORED_TIPC}
        return skipped

    return ignore


def _env() -> dict:
    env = dict(os.environ)
    # `python` in the TIPC configs is this interpreter
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("FASTFORMER_TIPC_CHECKPOINT", None)
    env.pop("FASTFORMER_TIPC_PAPER_FILE", None)
    return env


def _run(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", *args], check=False, cwd=repo, env=env or _env(), capture_output=True, text=True, timeout=TIMEOUT
    )


def _explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout (tail) ---\n{result.stdout[-6000:]}\n--- stderr (tail) ---\n{result.stderr[-3000:]}"


def _log_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tipc_repo(tmp_path_factory) -> Path:
    """A copy of the project in <tmp>/repo, its ../shared linked to the real one, lite data prepared."""
    base = tmp_path_factory.mktemp("tipc")
    repo = base / "repo"
    shutil.copytree(PROJECT_ROOT, repo, ignore=_ignore(PROJECT_ROOT.resolve()), symlinks=True)
    if SHARED.exists():
        (base / "shared").symlink_to(SHARED.resolve(), target_is_directory=True)
    result = _run(repo, "test_tipc/prepare.sh", CONFIG, MODE)
    assert result.returncode == 0, _explain(result)
    source = (repo / "test_tipc/data/lite/DATA_SOURCE").read_text(encoding="utf-8")
    expected = "REAL" if (SHARED / "data/amazon_electronics_sample/Electronics_sample.json.gz").exists() else "SYNTHETIC"
    assert source.startswith(expected), source
    return repo


@pytest.fixture(scope="module")
def lite_chain(tipc_repo) -> subprocess.CompletedProcess:
    return _run(tipc_repo, "test_tipc/test_train_inference_python.sh", CONFIG, MODE)


def test_config_parsing_helpers(tmp_path):
    """The positional parser: per-mode values, plain values, lists, null handling."""
    script = f"""
    source {PROJECT_ROOT}/test_tipc/common_func.sh
    echo "[$(func_parser_key 'Global.epochs:lite_train_lite_infer=1|whole_train_whole_infer=3')]"
    echo "[$(func_parser_value_by_mode 'Global.epochs:lite_train_lite_infer=1|whole_train_whole_infer=3' whole_train_whole_infer)]"
    echo "[$(func_parser_value_by_mode 'Global.epochs:lite_train_lite_infer=1|whole_train_whole_infer=3' whole_infer)]"
    echo "[$(func_parser_value_by_mode 'norm_train:tools/train.py -c a.yaml -o Global.resume=False' whole_infer)]"
    echo "[$(func_parser_value '--cpu_threads:1|2')]"
    echo "[$(func_set_params Data.batch_size 16)]"
    echo "[$(func_set_params null 16)][$(func_set_params --save_log_path null)]"
    """
    result = subprocess.run(["bash", "-c", script], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "[Global.epochs]",
        "[3]",
        "[]",
        "[tools/train.py", "-c", "a.yaml", "-o", "Global.resume=False]",
        "[1|2]",
        "[Data.batch_size=16]",
        "[][]",
    ]


def test_config_layout_is_checked(tmp_path):
    """A blank line shifts every key: the script refuses such a config before running anything."""
    lines = (PROJECT_ROOT / CONFIG).read_text(encoding="utf-8").splitlines()
    shifted = tmp_path / "shifted.txt"
    shifted.write_text("\n".join(lines[:10] + [""] + lines[10:]) + "\n", encoding="utf-8")
    result = _run(PROJECT_ROOT, "test_tipc/test_train_inference_python.sh", str(shifted), MODE)
    assert result.returncode == 2
    assert "52 lines" in result.stderr and "51" in result.stderr
    assert len((PROJECT_ROOT / CONFIG).read_text(encoding="utf-8").splitlines()) == 51
    assert len((PROJECT_ROOT / P2O_CONFIG).read_text(encoding="utf-8").splitlines()) == 18


@pytest.mark.slow
def test_lite_train_lite_infer_chain(tipc_repo, lite_chain):
    assert lite_chain.returncode == 0, _explain(lite_chain)
    lines = _log_lines(tipc_repo / LITE_LOG)
    assert lines, "results_python.log is empty"
    failed = [line for line in lines if not line.startswith("Run successfully with command - ")]
    assert not failed, "\n".join(failed)

    def count(pattern: str) -> int:
        return sum(1 for line in lines if re.search(pattern, line))

    assert count(r"- python tools/train\.py -c configs/amazon\.yaml ") == 1
    assert count(r"- python -m paddle\.distributed\.launch --nproc_per_node 2 .*tools/train\.py ") == 1
    assert count(r"- python tools/eval\.py ") == 2
    assert count(r"- python tools/export_model\.py ") == 2
    single_model = re.escape(f"--model_dir=./{SINGLE_RUN}/inference ")
    for mkldnn in ("True", "False"):
        for threads in (1, 2):
            for batch in (1, 2):
                variant = rf"--enable_mkldnn={mkldnn} --cpu_threads={threads} --batch_size={batch} .*{single_model}"
                assert count(rf"- python tools/infer\.py .*{variant}") == 1, f"missing inference {variant}"
    # the multi-process run's export gets one inference variant
    assert count(r"- python tools/infer\.py .*norm_train_gpus_cpu2_autocast_null/inference") == 1
    assert len(lines) == 1 + 1 + 2 + 2 + 8 + 1
    # the steps did what they say: checkpoints, an exported model, benchmark reports
    run = tipc_repo / SINGLE_RUN
    assert (run / "best/model.safetensors").is_file()
    assert (run / "inference/inference.json").is_file()
    infer_logs = sorted((tipc_repo / f"{SINGLE_RUN}_infer").glob("python_infer_cpu_*.log"))
    assert len(infer_logs) == 8
    for log in infer_logs:
        text = log.read_text(encoding="utf-8")
        assert "accuracy:" in text and "throughput:" in text, log.name
    assert "data " in lite_chain.stdout and ("REAL" in lite_chain.stdout or "SYNTHETIC" in lite_chain.stdout)


@pytest.mark.slow
def test_paddle2onnx_chain(tipc_repo, lite_chain):
    env = _env()
    trained = tipc_repo / SINGLE_RUN / "best"
    if trained.is_dir():  # reuse the lite chain's checkpoint rather than training another one
        env["FASTFORMER_TIPC_CHECKPOINT"] = str(trained)
    prepared = _run(tipc_repo, "test_tipc/prepare.sh", P2O_CONFIG, "paddle2onnx_infer", env=env)
    assert prepared.returncode == 0, _explain(prepared)
    result = _run(tipc_repo, "test_tipc/test_paddle2onnx.sh", P2O_CONFIG, "paddle2onnx_infer", env=env)
    assert result.returncode == 0, _explain(result)
    lines = _log_lines(tipc_repo / "test_tipc/output/fastformer/paddle2onnx_infer/results_paddle2onnx.log")
    assert lines and all(line.startswith("Run successfully with command - ") for line in lines), "\n".join(lines)
    assert sum("tools/export_model.py -c configs/amazon.yaml --onnx" in line for line in lines) == 1
    assert sum("--backend onnxruntime" in line for line in lines) == 4
    assert sum("compare_predictions.py" in line for line in lines) == 1
    assert (tipc_repo / "test_tipc/output/fastformer/paddle2onnx_infer/onnx_model/inference.onnx").is_file()
    assert re.search(r"0 label\(s\) differ", result.stdout)


def _reduced_config(repo: Path, name: str, replaced: dict) -> Path:
    """A copy of the lite config with the given lines replaced (line number -> text), checked key by key."""
    lines = (repo / CONFIG).read_text(encoding="utf-8").splitlines()
    for number, text in replaced.items():
        assert lines[number - 1].split(":")[0] == text.split(":")[0], (number, lines[number - 1])
        lines[number - 1] = text
    path = repo / f"test_tipc/configs/fastformer/{name}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_chain_on_a_topic_task(tmp_path_factory):
    """The lite chain (one training, one export, one inference variant) on 4-topic news instead of ratings."""
    repo = tmp_path_factory.mktemp("tipc_news") / "repo"
    shutil.copytree(PROJECT_ROOT, repo, ignore=_ignore(PROJECT_ROOT.resolve()), symlinks=True)
    env = {**_env(), "FASTFORMER_TIPC_TASK": "news"}
    prepared = _run(repo, "test_tipc/prepare.sh", CONFIG, MODE, env=env)
    assert prepared.returncode == 0, _explain(prepared)
    assert (repo / "test_tipc/data/lite/DATA_SOURCE").read_text().startswith("SYNTHETIC: 448 AG News-style stories")
    topics = ["Business", "Sci/Tech", "Sports", "World"]
    assert (repo / "test_tipc/data/lite/label.txt").read_text().split("\n")[:4] == topics
    config = _reduced_config(repo, "news", {
        2: "model_name:fastformer_news", 4: "gpu_list:-1", 21: "Global.max_steps:lite_train_lite_infer=20",
        42: "--enable_mkldnn:False", 43: "--cpu_threads:1", 44: "--batch_size:2",
    })  # fmt: skip
    result = _run(repo, "test_tipc/test_train_inference_python.sh", str(config), MODE, env=env)
    assert result.returncode == 0, _explain(result)
    lines = _log_lines(repo / f"test_tipc/output/fastformer_news/{MODE}/results_python.log")
    assert lines and all(line.startswith("Run successfully with command - ") for line in lines), "\n".join(lines)
    run = repo / f"test_tipc/output/fastformer_news/{MODE}/norm_train_gpus_-1_autocast_null"
    assert json.loads((run / "inference/inference_config.json").read_text())["label_names"] == topics
    infer_log = next((repo / f"test_tipc/output/fastformer_news/{MODE}/norm_train_gpus_-1_autocast_null_infer").glob("*.log"))
    predictions = [json.loads(line) for line in infer_log.read_text().splitlines() if line.startswith("{")]
    assert predictions and all(p["label"] in topics and list(p["probabilities"]) == topics for p in predictions)


@pytest.mark.slow
def test_broken_step_fails_the_chain(tipc_repo):
    """A config whose export line names a missing script: the chain goes on, logs the failure, exits 1."""
    broken = _reduced_config(tipc_repo, "broken_export", {
        2: "model_name:fastformer_broken",  # its own output folder
        4: "gpu_list:-1",
        21: "Global.max_steps:lite_train_lite_infer=3",
        30: "norm_export:tools/export_model_missing.py -c configs/amazon.yaml -o",
        42: "--enable_mkldnn:False",
        43: "--cpu_threads:1",
        44: "--batch_size:2",
    })  # fmt: skip

    result = _run(tipc_repo, "test_tipc/test_train_inference_python.sh", str(broken), MODE)
    assert result.returncode == 1, _explain(result)
    log = _log_lines(tipc_repo / f"test_tipc/output/fastformer_broken/{MODE}/results_python.log")
    assert all(line.startswith(("Run successfully with command - ", "Run failed with command - ")) for line in log)
    assert any(line.startswith("Run successfully") and "tools/train.py" in line for line in log), log
    assert any(line.startswith("Run failed") and "export_model_missing.py" in line for line in log), log
    # nothing was exported, so the inference that follows fails too, and says so
    assert any(line.startswith("Run failed") and "tools/infer.py" in line for line in log), log
    assert "2 failed" in result.stdout
