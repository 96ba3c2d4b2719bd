"""A crash at any instant loses nothing: training and dataset preparation killed (SIGKILL) at every step
that changes a checkpoint or a dataset on disk, then started again (tests/crash_driver.py forks the runs)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT, write_tiny_config
from fastformer_zoo.engine import checkpoint
from fastformer_zoo.directories import recover_directory
from paddlenlp_fastformer.serialization import load_weights

pytestmark = pytest.mark.slow  # every test here runs whole trainings or processes

DRIVER = PROJECT_ROOT / "tests" / "crash_driver.py"
SPLIT_FILES = ("train.jsonl", "dev.jsonl", "test.jsonl", "stats.json")


def drive(tmp_path, plan: dict, name: str) -> list:
    plan_path, result_path = tmp_path / f"{name}.plan.json", tmp_path / f"{name}.result.json"
    plan_path.write_text(json.dumps(plan))
    completed = subprocess.run(
        [sys.executable, str(DRIVER), str(plan_path), str(result_path)], capture_output=True, text=True, timeout=1800
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(result_path.read_text())


def leftovers(directory: Path) -> list:
    """Staging or retired directories next to the checkpoints (the run's .lock is no leftover)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") and p.name != ".lock")


def assert_complete_checkpoint(directory: Path, with_training_state: bool) -> None:
    checkpoint.check_model_dir(str(directory), "checkpoint")
    weights = load_weights(directory)
    assert weights and all(np.isfinite(value).all() for value in weights.values())
    json.loads((directory / "config.json").read_text())
    if with_training_state:
        state = checkpoint.load_training_state(directory)
        assert state["progress"]["global_step"] > 0


def steps_in(steps: list, directory: Path) -> list:
    """The numbers of the recorded steps that touch ``directory``'s checkpoints (their names contain last or best)."""
    return [number for number, _, path in steps if path.startswith(str(directory)) and ("last" in path or "best" in path)]


@pytest.fixture(scope="module")
def crashed_training(tmp_path_factory, tiny_data_dir):
    """A reference run, then one run killed at each checkpoint step and resumed to the end."""
    root = tmp_path_factory.mktemp("crash")
    config = write_tiny_config(
        root / "c.yaml", tiny_data_dir, root / "unused", Global={"max_steps": 4, "save_steps": 2}
    )
    reference = drive(root, {"target": "train", "args": [str(config), f"Global.output_dir={root / 'reference'}"],
                             "runs": [{"record": True}]}, "reference")[0]  # fmt: skip
    assert reference["exit_code"] == 0, reference["steps"][-3:]
    kill_points = steps_in(reference["steps"], root / "reference")
    runs = []
    for point in kill_points:
        output = f"Global.output_dir={root / f'killed-{point}'}"
        runs += [{"kill_at": point, "overrides": [output]}, {"overrides": [output]}]
    # The killed runs are checked before their resumption: run them first, then the resumptions.
    killed = drive(root, {"target": "train", "args": [str(config)], "runs": runs[0::2]}, "killed")
    states = {point: _state_after_crash(root / f"killed-{point}") for point in kill_points}
    resumed = drive(root, {"target": "train", "args": [str(config)], "runs": runs[1::2]}, "resumed")
    return root, kill_points, killed, states, resumed


def _state_after_crash(output_dir: Path) -> dict:
    """What a restart finds once it has finished or rolled back an interrupted replacement (seen on a copy:
    the real restart, which must do the recovery itself, runs on the original)."""
    copy = output_dir.with_name(output_dir.name + "-inspected")
    shutil.copytree(output_dir, copy, symlinks=True)
    for name in (checkpoint.LAST, checkpoint.BEST):
        recover_directory(str(copy / name))
    present = {name: (copy / name).is_dir() for name in (checkpoint.LAST, checkpoint.BEST)}
    for name, exists in present.items():
        if exists:
            assert_complete_checkpoint(copy / name, with_training_state=name == checkpoint.LAST)
    return present


def test_every_checkpoint_step_was_a_kill_point(crashed_training):
    _, kill_points, killed, _, _ = crashed_training
    # 3 saves (last/ at steps 2 and 4, best/ once), each with several writes and renames.
    assert len(kill_points) >= 15
    assert all(run["killed"] for run in killed), [run for run in killed if not run["killed"]][:1]


def test_after_any_crash_last_and_best_are_complete(crashed_training):
    _, kill_points, _, states, _ = crashed_training
    # Crashes late in the run leave both checkpoints; every one found was complete (_state_after_crash).
    assert any(state[checkpoint.LAST] and state[checkpoint.BEST] for state in states.values())
    assert any(not state[checkpoint.LAST] for state in states.values()), "a crash in the first save leaves no last/"


def test_resumed_runs_end_bit_identical_without_leftovers(crashed_training):
    root, kill_points, _, _, resumed = crashed_training
    assert all(run["exit_code"] == 0 for run in resumed), [run["steps"][-2:] for run in resumed if run["exit_code"]][:1]
    for name in (checkpoint.LAST, checkpoint.BEST):
        reference = load_weights(root / "reference" / name)
        for point in kill_points:
            weights = load_weights(root / f"killed-{point}" / name)
            assert weights.keys() == reference.keys()
            for key in reference:
                np.testing.assert_array_equal(weights[key], reference[key], err_msg=f"{name} {key} (killed at {point})")
    for point in kill_points:
        assert leftovers(root / f"killed-{point}") == [], point
        progress = json.loads((root / f"killed-{point}" / "last" / checkpoint.TRAINER_STATE).read_text())["progress"]
        assert progress["global_step"] == 4


def test_a_restart_resumes_from_whatever_checkpoint_the_crash_left(crashed_training):
    root, kill_points, _, states, _ = crashed_training
    for point in kill_points:
        log = (root / f"killed-{point}" / checkpoint.TRAIN_LOG).read_text()
        # Never silently from step 0: when a complete last/ can be recovered, the restart continues from it.
        assert ("resumed from" in log) == states[point][checkpoint.LAST], (point, states[point])


def test_prepare_data_is_written_as_one_unit(tmp_path, tiny_data_dir):
    raw = tiny_data_dir.parent / "raw.json"

    def argv(out: Path, seed: int) -> list:
        return ["--input", str(raw), "--output-dir", str(out), "--splits", "300,50,50", "--seed", str(seed), "--overwrite"]

    reference = tmp_path / "reference"
    first, second = drive(tmp_path, {"target": "prepare", "args": [], "runs": [
        {"args": argv(reference, 1)}, {"args": argv(reference, 2), "record": True}]}, "reference")  # fmt: skip
    assert first["exit_code"] == 0 and second["exit_code"] == 0
    points = [number for number, _, path in second["steps"] if "reference" in path]
    assert len(points) >= 6  # every split and stats.json written and flushed, the staging directory renamed
    runs = []
    for point in points:
        # A seed-1 dataset being replaced by a seed-2 one, killed at one step of the replacement.
        drive_dir = tmp_path / f"killed-{point}"
        drive_dir.mkdir()
        runs.append({"args": argv(drive_dir / "dataset", 2), "kill_at": point, "prepare": argv(drive_dir / "dataset", 1)})
    setup = drive(tmp_path, {"target": "prepare", "args": [], "runs": [{"args": run["prepare"]} for run in runs]}, "setup")
    assert all(run["exit_code"] == 0 for run in setup)
    seed1 = {name: (tmp_path / f"killed-{points[0]}" / "dataset" / name).read_bytes() for name in SPLIT_FILES}
    killed = drive(tmp_path, {"target": "prepare", "args": [], "runs": runs}, "killed")
    assert all(run["killed"] for run in killed)
    seed2 = {name: (reference / name).read_bytes() for name in SPLIT_FILES}
    assert seed1 != seed2
    for point in points:
        out = tmp_path / f"killed-{point}" / "dataset"
        recover_directory(str(out))
        found = {name: (out / name).read_bytes() for name in SPLIT_FILES}
        assert found in (seed1, seed2), f"a mix of two datasets after a kill at step {point}"
        assert leftovers(out.parent) == [], point
