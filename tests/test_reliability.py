"""Faults and bad input: one run per output directory, nothing non-finite saved, resume only what can be
resumed, Ctrl-C, a self-healing kernel cache, and one-line errors (exit 2, no traceback) for the rest."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import PROJECT_ROOT, assert_one_line_error, run_main, seed_kernel_cache, write_tiny_config
from fastformer_zoo.scoring import classification_metrics, format_metrics_table
from paddlenlp_fastformer.serialization import load_weights

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import convert_torch_checkpoint  # noqa: E402
import prepare_data  # noqa: E402
import train as train_tool  # noqa: E402


def tool_process(*argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *map(str, argv)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **kwargs,
    )  # fmt: skip


def error_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------
# two runs, one output directory; Ctrl-C
# ----------------------------------------------------------------------------------------------
def wait_for(condition, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_second_run_on_a_busy_output_dir_is_refused_and_a_dead_runs_lock_is_taken_over(tmp_path, tiny_data_dir, capsys):
    out = tmp_path / "out"
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, out, Global={"epochs": 100})
    first = tool_process("tools/train.py", "-c", config)
    try:
        assert wait_for(lambda: (out / "train.log").is_file() and "step 1/" in (out / "train.log").read_text())
        # The lock is an flock on a file of the output dir: a run in this process is refused like another process.
        second = run_main(train_tool.main, ["-c", str(config), "-o", "Global.max_steps=1"], capsys)
        assert_one_line_error(second, f"is in use by another training run (process {first.pid})")
    finally:
        first.kill()
        first.wait()
    # The killed run's lock died with it: the next run takes the directory over (and resumes nothing: no last/).
    third = run_main(train_tool.main, ["-c", str(config), "-o", "Global.max_steps=2", "Global.epochs=1"], capsys)
    assert third[0] == 0, third[1][-20:]


@pytest.mark.slow
def test_ctrl_c_ends_in_one_line_with_code_130_and_intact_checkpoints(tmp_path, tiny_data_dir):
    out = tmp_path / "out"
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, out, Global={"epochs": 100, "save_steps": 3})
    run = tool_process("tools/train.py", "-c", config)
    assert wait_for(lambda: (out / "last" / "trainer_state.json").is_file())
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 130 and error_lines(stderr)[-1].startswith("error: interrupted"), stderr[-2000:]
    assert "Traceback" not in stderr
    assert load_weights(out / "last") and json.loads((out / "last" / "trainer_state.json").read_text())["progress"]


# ----------------------------------------------------------------------------------------------
# nothing non-finite is saved; settings must be finite
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, fragment",
    [
        ("Optimizer.lr=.inf", "'Optimizer.lr' in override 'Optimizer.lr=.inf' has value inf; expected a value > 0 (and finite)"),
        ("Optimizer.lr=.nan", "'Optimizer.lr'"),
        ("Optimizer.grad_clip=.inf", "'Optimizer.grad_clip'"),
        ("Model.layer_norm_eps=.inf", "'Model.layer_norm_eps' in override 'Model.layer_norm_eps=.inf': got inf; expected a finite number > 0"),
        ("Model.initializer_range=.inf", "'Model.initializer_range'"),
        ("Model.hidden_dropout_prob=.nan", "'Model.hidden_dropout_prob'"),
        ("Model.hidden_act=swish2", "'Model.hidden_act' in override 'Model.hidden_act=swish2': got 'swish2'; expected one of"),
        ("Global.seed=-1", "'Global.seed'"),
    ],
)
def test_non_finite_and_unknown_settings_are_refused(tmp_path, tiny_data_dir, override, fragment, capsys):
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out")
    assert_one_line_error(run_main(train_tool.main, ["-c", str(config), "-o", override], capsys), fragment)
    assert not (tmp_path / "out" / "last").exists()


def test_a_diverging_run_saves_nothing_non_finite(tmp_path, tiny_data_dir, capsys):
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, tmp_path / "out", Global={"save_steps": 1})
    result = run_main(train_tool.main, ["-c", str(config), "-o", "Optimizer.lr=1e30"], capsys)
    assert_one_line_error(result, "training diverged, most likely from too large a learning rate (Optimizer.lr=1e+30)", alone=False)
    for name in ("last", "best"):
        if (tmp_path / "out" / name).exists():
            assert all(np.isfinite(value).all() for value in load_weights(tmp_path / "out" / name).values())


# ----------------------------------------------------------------------------------------------
# resume only what can be resumed
# ----------------------------------------------------------------------------------------------
def test_resume_refuses_a_changed_dataset(tmp_path, tiny_data_dir, capsys):
    data = tmp_path / "data"
    prepare_data.main(["--input", str(tiny_data_dir.parent / "raw.json"), "--output-dir", str(data), "--splits", "320,40,40"])
    config = write_tiny_config(tmp_path / "c.yaml", data, tmp_path / "out", Global={"max_steps": 3, "save_steps": 2})
    assert run_main(train_tool.main, ["-c", str(config)], capsys)[0] == 0
    # Re-prepared with another seed: the same sizes, other reviews in each split.
    prepare_data.main(["--input", str(tiny_data_dir.parent / "raw.json"), "--output-dir", str(data), "--splits",
                       "320,40,40", "--seed", "5", "--overwrite"])  # fmt: skip
    result = run_main(train_tool.main, ["-c", str(config), "-o", "Global.max_steps=6"], capsys)
    assert_one_line_error(result, f"{data / 'train.jsonl'} is not the file", "resuming would mix two datasets", alone=False)


# ----------------------------------------------------------------------------------------------
# bad input, each a one-line error
# ----------------------------------------------------------------------------------------------
def test_paths_that_are_files_where_directories_belong(tmp_path, tiny_data_dir, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, blocker)
    assert_one_line_error(run_main(train_tool.main, ["-c", str(config)], capsys), str(blocker))
    argv = ["--synthetic", "50", "--output-dir", str(blocker), "--splits", "40,5,5"]
    assert_one_line_error(run_main(prepare_data.main, argv, capsys), str(blocker), "not a directory")


@pytest.mark.parametrize("flag", ["--num-samples", "--synthetic"])
@pytest.mark.parametrize("value", ["-5", "0", "many"])
def test_prepare_data_counts_must_be_positive(tmp_path, flag, value, capsys):
    argv = ["--synthetic", "50"] if flag == "--num-samples" else []
    argv += [flag, value, "--output-dir", str(tmp_path / "out")]
    assert_one_line_error(run_main(prepare_data.main, argv, capsys), flag, "expected a positive integer")


def test_prepare_data_without_a_usable_row_names_files_and_reasons(tmp_path, capsys):
    raw = tmp_path / "raw.json"
    raw.write_text('{"overall": 9, "reviewText": "x"}\n{"overall": 4, "reviewText": " "}\n', encoding="utf-8")
    argv = ["--input", str(raw), "--output-dir", str(tmp_path / "out"), "--splits", "1,0,0"]
    assert_one_line_error(run_main(prepare_data.main, argv, capsys), "no usable row", str(raw),
                          "rating_out_of_range 1", "empty_text 1")  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field, value", [("hidden_size", "32"), ("layer_norm_eps", "tiny"), ("hidden_act", "swish2")])
def test_converter_json_with_wrong_values(tmp_path, field, value, capsys):
    torch = pytest.importorskip("torch")
    from benchmarks.torch_reference import official_config_json
    from torch_models import official_model

    config = official_config_json(32, 1, 4, 48, 16)
    torch.save(official_model(60, 32, 1, 4, 48, 16).state_dict(), tmp_path / "m.pt")
    config[field] = value
    (tmp_path / "fastformer.json").write_text(json.dumps(config))
    argv = ["--source", "official", "--checkpoint", str(tmp_path / "m.pt"), "--config", str(tmp_path / "fastformer.json"),
            "--output-dir", str(tmp_path / "out")]  # fmt: skip
    assert_one_line_error(run_main(convert_torch_checkpoint.main, argv, capsys), f"FastformerConfig.{field}: got {value!r}")


# ----------------------------------------------------------------------------------------------
# metrics, kernel cache
# ----------------------------------------------------------------------------------------------
def test_metrics_of_a_model_that_predicts_one_class_still_print():
    metrics = classification_metrics([0, 1, 2, 2, 4], [4, 4, 4, 4, 4], 5, ["a", "b", "c", "d", "e"])
    assert all(type(count) is int for count in metrics["per_class_support"].values())
    table = format_metrics_table(metrics)
    assert "accuracy: 0.2000" in table and table.count("\n") > 10


@pytest.mark.slow
def test_a_damaged_kernel_cache_is_rebuilt_and_a_failed_build_fails_loudly(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    seed_kernel_cache(tmp_path / "cache")  # a built library to damage, without compiling it once more
    build = [sys.executable, "-m", "paddlenlp_fastformer.kernels"]
    assert subprocess.run(build, cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=600).returncode == 0
    (library,) = (tmp_path / "cache").rglob("fastformer_cpu_ops.so")
    library.write_bytes(library.read_bytes()[:4096])  # truncated, as by a full disk or a killed copy
    use = [sys.executable, "-c", "import paddle; from paddlenlp_fastformer.kernels import library, fused_ops; "
           "assert library.load() is not None; x = paddle.ones([2, 3]); "
           "print(float(fused_ops.scale_tokens(x.unsqueeze(0), x[:1].unsqueeze(0), True).sum()))"]  # fmt: skip
    healed = subprocess.run(use, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert healed.returncode == 0 and healed.stdout.strip() == "6.0", healed.stderr[-2000:]
    # No compiler on the PATH: the build command says so and exits 1 (the model would fall back to the reference ops).
    no_compiler = {**env, "XDG_CACHE_HOME": str(tmp_path / "empty-cache"), "PATH": str(tmp_path)}
    failed = subprocess.run(build, cwd=PROJECT_ROOT, env=no_compiler, capture_output=True, text=True, timeout=600)
    assert failed.returncode == 1 and "could not be built" in failed.stderr, failed.stderr[-2000:]


# ----------------------------------------------------------------------------------------------
# an interrupted dataset swap: repaired with one log line, and the command goes on
# ----------------------------------------------------------------------------------------------
def prepare_argv(out, seed, *extra):
    return ["--synthetic", "60", "--splits", "0.8,0.1,0.1", "--seed", str(seed), "--output-dir", str(out), *extra]


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """Two complete datasets (seeds 1 and 2) to plant as the halves of an interrupted replacement."""
    root = tmp_path_factory.mktemp("datasets")
    for seed in (1, 2):
        with pytest.raises(SystemExit) as exit_info:
            prepare_data.main(prepare_argv(root / f"seed{seed}", seed))
            raise SystemExit(0)
        assert exit_info.value.code == 0
    return root / "seed1", root / "seed2"


def plant(source, destination, complete=False):
    import shutil

    shutil.copytree(source, destination)
    if complete:  # what a writer leaves in a staging directory it finished (directories.COMPLETE_MARKER)
        (destination / ".complete").touch()


@pytest.mark.parametrize("state", ["new only", "new and old", "new beside the dataset"])
def test_an_interrupted_dataset_swap_is_repaired_said_and_the_command_goes_on(tmp_path, two_datasets, state, capsys):
    """Killed inside the swap (steps 2 to 4 of fastformer_zoo.directories), then the same command again: the
    repair is one log line naming the folder, and the command, without --overwrite, is not refused for what
    the repair put there (the interrupted command's own output)."""
    seed1, seed2 = two_datasets
    data = tmp_path / "data"
    plant(seed2, tmp_path / ".data.new", complete=True)  # the interrupted command's complete output
    if state == "new and old":
        plant(seed1, tmp_path / ".data.old")
    elif state == "new beside the dataset":
        plant(seed1, data)
    code, lines = run_main(prepare_data.main, prepare_argv(data, 1), capsys)
    assert code == 0, lines[-3:]
    repairs = [line for line in lines if "interrupted" in line]
    assert len(repairs) == 1 and f"WARNING {data}: finished an interrupted replacement (put the complete .data.new " \
        "in its place)" in repairs[0], lines  # fmt: skip
    assert (data / "train.jsonl").read_bytes() == (seed1 / "train.jsonl").read_bytes()  # this command's dataset
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]


def test_a_rolled_back_dataset_is_the_users_own_again(tmp_path, two_datasets, capsys):
    """Only the moved-aside previous dataset left: it is put back, said so, and then protected as ever."""
    data = tmp_path / "data"
    plant(two_datasets[0], tmp_path / ".data.old")
    code, lines = run_main(prepare_data.main, prepare_argv(data, 2), capsys)
    assert code == 2 and f"{data}: rolled back an interrupted replacement (put the previous .data.old back)" in lines[0]
    assert lines[-1] == f"error: {data}: already holds files; pass --overwrite to replace the dataset there"
    assert (data / "train.jsonl").read_bytes() == (two_datasets[0] / "train.jsonl").read_bytes()


def test_only_the_directory_the_repair_completed_may_be_replaced_without_overwrite(tmp_path, two_datasets, capsys):
    """Another writer's folder put there after the repair is refused as before: the inode tells them apart."""
    from fastformer_zoo.directories import check_output_directory, write_directory_atomically
    from fastformer_zoo.errors import UserError

    data = tmp_path / "data"
    plant(two_datasets[1], tmp_path / ".data.new", complete=True)
    check_output_directory(data, False, "dataset", "stats.json")
    assert f"{data}: finished an interrupted replacement" in capsys.readouterr().err
    plant(two_datasets[0], tmp_path / "theirs")
    os.replace(data, tmp_path / "gone")
    os.replace(tmp_path / "theirs", data)  # another writer's swap, since
    with pytest.raises(UserError, match="exists and is not empty"):
        write_directory_atomically(lambda staging: None, str(data))
    assert (data / "train.jsonl").read_bytes() == (two_datasets[0] / "train.jsonl").read_bytes()
