"""What the tools write never costs what was there: no checkpoint replaced through a link, no output written over
an input, no two writers both filling one directory, and errors that name the path the user gave."""
import errno
import functools
import os
import resource
import shutil
import signal
import sys
import threading
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, assert_one_line_error, run_main, write_tiny_config
from fastformer_zoo.directories import write_directory_atomically
from fastformer_zoo.errors import UserError

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import eval as eval_tool  # noqa: E402
import infer  # noqa: E402
import prepare_corpus  # noqa: E402
import prepare_data  # noqa: E402
import prepare_pairs  # noqa: E402
import train as train_tool  # noqa: E402


def snapshot(*roots: Path) -> dict:
    """Every file under ``roots`` (or the file itself) with its bytes."""
    files = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            files[path] = path.read_bytes()
    return files


# ----------------------------------------------------------------------------------------------
# checkpoints of a run are never replaced through a link
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["best", "last"])
def test_a_checkpoint_that_is_a_link_is_refused_before_training_and_its_target_kept(tmp_path, trained, name, capsys):
    config, output = trained
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    shutil.copytree(output, run_dir)
    shutil.move(run_dir / name, elsewhere)
    (run_dir / name).symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(elsewhere)
    argv = ["-c", str(config), "-o", f"Global.output_dir={run_dir}", "Global.max_steps=5"]
    assert_one_line_error(run_main(train_tool.main, argv, capsys), f"{run_dir / name}: is a symbolic link", str(elsewhere))
    assert snapshot(elsewhere) == before
    assert (run_dir / name).is_symlink()


def test_a_directory_that_must_not_be_reached_through_a_link_is_refused_there(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "kept.txt").write_text("kept")
    (tmp_path / "link").symlink_to(tmp_path / "target", target_is_directory=True)
    with pytest.raises(UserError, match="link: is a symbolic link"):
        write_directory_atomically(lambda d: Path(d, "new.txt").write_text("new"), str(tmp_path / "link"), overwrite=True,
                                   through_link=False)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "target").iterdir()) == ["kept.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]


# ----------------------------------------------------------------------------------------------
# outputs are never written over what a command reads
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def eval_setup(tmp_path, tiny_data_dir, copy_of):
    """A config of the tiny model evaluating a copy of the data with a copy of the trained checkpoint."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    config = write_tiny_config(tmp_path / "c.yaml", data, tmp_path / "out")
    return config, data, copy_of("best")


@pytest.mark.parametrize(
    "outputs, fragments",
    [
        (lambda c, d, b: ["-o", f"Data.eval_file={d / 'test.jsonl'}", f"Global.predictions_file={d / 'test.jsonl'}"],
         ["Global.predictions_file=", "is Data.eval_file=", "which this command reads"]),
        (lambda c, d, b: ["--metrics_file", str(d / "test.jsonl")], ["--metrics_file", "is the test split"]),
        (lambda c, d, b: ["--metrics_file", str(d / "train.jsonl")], ["is the training split"]),
        (lambda c, d, b: ["--metrics_file", str(c)], ["is -c "]),
        (lambda c, d, b: ["-o", f"Global.predictions_file={d / 'label.txt'}"], ["is the dataset file"]),
        (lambda c, d, b: ["-o", f"Global.predictions_file={b / 'vocab.txt'}"], ["lies inside Global.checkpoint="]),
        (lambda c, d, b: ["-o", f"Global.predictions_file={d.parent / 'p.json'}", "--metrics_file", str(d / ".." / "p.json")],
         ["are the same file"]),
    ],
)  # fmt: skip
def test_eval_never_writes_over_what_it_reads(eval_setup, outputs, fragments, capsys):
    config, data, best = eval_setup
    before = snapshot(config, data, best)
    argv = ["-c", str(config), "--num_beams", "1", "-o", f"Global.checkpoint={best}", *outputs(config, data, best)]
    assert_one_line_error(run_main(eval_tool.main, argv, capsys), *fragments)
    assert snapshot(config, data, best) == before


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, trained):
    from fastformer_zoo.deploy.export import export_inference_model

    target = tmp_path_factory.mktemp("export") / "inference"
    export_inference_model(str(trained[1] / "best"), str(target))
    return target


@pytest.mark.parametrize("log, fragment", [
    ("export/inference_config.json", "lies inside --model_dir"),
    ("data/test.jsonl", "is --data_dir"),
    ("data/label.txt", "is the dataset file"),
])  # fmt: skip
def test_infer_never_writes_its_log_over_what_it_reads(tmp_path, export_dir, tiny_data_dir, log, fragment, capsys):
    export, data = tmp_path / "export", tmp_path / "data"
    shutil.copytree(export_dir, export)
    shutil.copytree(tiny_data_dir, data)
    before = snapshot(export, data)
    argv = ["--model_dir", str(export), "--data_dir", str(data / "test.jsonl"), "--benchmark", "True",
            "--save_log_path", str(tmp_path / log)]  # fmt: skip
    assert_one_line_error(run_main(infer.main, argv, capsys), f"--save_log_path {tmp_path / log}", fragment)
    assert snapshot(export, data) == before


def test_prepare_corpus_overwrite_never_deletes_its_input(tmp_path, tiny_data_dir, capsys):
    corpus = tmp_path / "corpus"
    raw = tiny_data_dir.parent / "raw.json"
    assert run_main(prepare_corpus.main, ["--input", str(raw), "--output-dir", str(corpus), "--dev-size", "5"], capsys)[0] == 0
    shutil.copy(raw, corpus / "raw.json")
    argv = ["--input", str(corpus / "raw.json"), "--output-dir", str(corpus), "--dev-size", "5", "--overwrite"]
    assert_one_line_error(run_main(prepare_corpus.main, argv, capsys), "lies inside it and would be deleted")
    assert (corpus / "raw.json").read_bytes() == raw.read_bytes()


# ----------------------------------------------------------------------------------------------
# writers racing to fill one directory
# ----------------------------------------------------------------------------------------------
def test_of_writers_racing_to_fill_one_directory_without_overwrite_exactly_one_wins(tmp_path):
    out, writers = tmp_path / "dataset", 4
    # Every writer passes the first emptiness check and fills its staging folder before any swaps it in.
    everyone_written = threading.Barrier(writers, timeout=60)
    outcomes = [None] * writers

    def save(number: int, staging: str) -> None:
        Path(staging, "writer.txt").write_text(str(number))
        everyone_written.wait()

    def write(number: int) -> None:
        try:
            write_directory_atomically(functools.partial(save, number), str(out))
            outcomes[number] = "written"
        except Exception as error:  # noqa: BLE001 - each writer's outcome is what is checked
            outcomes[number] = f"{type(error).__name__}: {error}"

    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [number for number, outcome in enumerate(outcomes) if outcome == "written"]
    assert len(winners) == 1, outcomes
    assert (out / "writer.txt").read_text() == str(winners[0])
    for outcome in outcomes:
        assert outcome == "written" or outcome.startswith(f"UserError: {out}: exists and is not empty"), outcomes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no staging, lock or retired folder left


# ----------------------------------------------------------------------------------------------
# errors name the directory given and what was expected
# ----------------------------------------------------------------------------------------------
def prepare_argv(tool, raw: Path, out: Path) -> list:
    common = ["--output-dir", str(out)]
    if tool is prepare_data:
        return ["--input", str(raw), "--splits", "10,5,5", *common]
    if tool is prepare_corpus:
        return ["--input", str(raw), "--dev-size", "5", *common]
    return ["--input", str(raw), str(raw), str(raw), *common]


@pytest.mark.parametrize("tool", [prepare_data, prepare_corpus, prepare_pairs], ids=lambda tool: tool.__name__)
def test_an_output_directory_behind_a_file_is_named_as_given(tmp_path, tiny_data_dir, tool, capsys):
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "out"
    result = run_main(tool.main, prepare_argv(tool, tiny_data_dir.parent / "raw.json", out), capsys)
    assert_one_line_error(result, f"cannot write {out}", "a file stands in the way")
    assert ".tmp-" not in result[1][-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("tool", [prepare_data, prepare_corpus, prepare_pairs], ids=lambda tool: tool.__name__)
def test_an_unwritable_output_directory_is_named_as_given(tiny_data_dir, tool, capsys):
    out = Path("/sys") / f"fastformer-test-{os.getpid()}"
    try:
        out.mkdir()
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EACCES, errno.EROFS):
            pytest.skip(f"/sys refuses new folders with {error.strerror}, not a permission error")
    else:
        out.rmdir()
        pytest.skip("/sys is writable here: no unwritable folder to test with")
    result = run_main(tool.main, prepare_argv(tool, tiny_data_dir.parent / "raw.json", out), capsys)
    assert_one_line_error(result, f"cannot write {out}", "expected a folder this user can write")
    assert ".tmp-" not in result[1][-1]


def test_a_full_disk_is_named_by_the_file_given_not_a_staging_one(tmp_path, tiny_data_dir, capsys):
    out = tmp_path / "out"
    # A file-size limit fails a write with EFBIG as a full disk fails it with ENOSPC, on any machine.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, hard))
    try:
        result = run_main(prepare_data.main, prepare_argv(prepare_data, tiny_data_dir.parent / "raw.json", out), capsys)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert_one_line_error(result, f"cannot write {out / 'train.jsonl'}: File too large", "expected files of this size")
    assert ".tmp-" not in result[1][-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layout, fragment", [
    ("a file", "exists and is not a directory; expected a folder for the run"),
    ("under a file", "cannot be created (Not a directory)"),
])  # fmt: skip
def test_a_run_directory_that_cannot_be_one_is_not_reported_as_a_lock_problem(tmp_path, tiny_data_dir, layout, fragment, capsys):
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" if layout == "a file" else tmp_path / "a_file" / "run"
    config = write_tiny_config(tmp_path / "c.yaml", tiny_data_dir, out)
    result = run_main(train_tool.main, ["-c", str(config)], capsys)
    assert_one_line_error(result, f"Global.output_dir='{out}'", fragment)
    assert "lock" not in result[1][-1]
