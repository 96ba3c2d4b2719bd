"""Multi-seed runs kept as small text files, and the results table and figure built from them."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, write_tiny_config

from fastformer_zoo.reporting import best_run, comparison_markdown, load_runs, replace_block, results_markdown, time_markdown
from fastformer_zoo.errors import UserError

pytestmark = pytest.mark.slow  # every test here runs whole trainings or processes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))



def run_tool(*args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def kept_runs(tmp_path_factory, tiny_data_dir):
    """Fastformer for seeds 1 and 2 and the softmax baseline for seed 1, 3 steps each, via the real tool."""
    root = tmp_path_factory.mktemp("experiments")
    fastformer = write_tiny_config(root / "tiny.yaml", tiny_data_dir, root / "unused", Global={"max_steps": 3})
    transformer = root / "tiny_transformer.yaml"
    transformer.write_text("_BASE_: tiny.yaml\nModel:\n  attention_type: softmax\n", encoding="utf-8")
    extra = tiny_data_dir / "dev.jsonl"
    for config, seeds in ((fastformer, ["1", "2"]), (transformer, ["1"])):
        result = run_tool(
            str(PROJECT_ROOT / "tools" / "run_experiment.py"), "-c", str(config), "--seeds", *seeds,
            "--eval-files", str(extra), "--results-dir", str(root / "results"), "--output-root", str(root / "out"),
            cwd=root,
        )
        assert result.returncode == 0, result.stderr[-2000:]
    return root


def test_each_run_keeps_log_config_and_metrics(kept_runs, tiny_data_dir):
    runs = {run["run"]: run for run in load_runs(kept_runs / "results")}
    assert set(runs) == {"tiny_seed1", "tiny_seed2", "tiny_transformer_seed1"}
    for name, run in runs.items():
        kept = kept_runs / "results" / name
        assert sorted(p.name for p in kept.iterdir()) == ["metrics.json", "predictions.json", "train.log", "train_config.yaml"]
        predictions = json.loads((kept / "predictions.json").read_text())
        assert set(predictions) == set(run["evaluations"])
        for file, ids in predictions.items():
            assert len(ids.split()) == run["evaluations"][file]["num_examples"] and set(ids.split()) <= {"0", "1", "2", "3", "4"}
        assert "dev after step 3" in (kept / "train.log").read_text()
        assert run["model"] == ("transformer" if "transformer" in name else "fastformer")
        assert set(run["evaluations"]) == {run["test_file"], str(tiny_data_dir / "dev.jsonl")}
        assert run["train_seconds"] > 0 and run["resumed"] is False and "run_experiment.py" in run["command"]
        # The dev score logged during training is the one the extra evaluation of best/ reproduces.
        assert run["evaluations"][str(tiny_data_dir / "dev.jsonl")]["macro_f1"] == pytest.approx(run["best_dev_macro_f1"])
    assert runs["tiny_seed1"]["dev_history"] != runs["tiny_seed2"]["dev_history"] or (
        runs["tiny_seed1"]["evaluations"] != runs["tiny_seed2"]["evaluations"]
    )


def test_finished_seeds_are_skipped(kept_runs):
    before = (kept_runs / "results" / "tiny_seed1" / "metrics.json").read_text()
    result = run_tool(
        str(PROJECT_ROOT / "tools" / "run_experiment.py"), "-c", str(kept_runs / "tiny.yaml"), "--seeds", "1",
        "--results-dir", str(kept_runs / "results"), "--output-root", str(kept_runs / "out"), cwd=kept_runs,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already holds a finished run: skipped" in result.stderr
    assert (kept_runs / "results" / "tiny_seed1" / "metrics.json").read_text() == before


def test_table_readme_and_figure(kept_runs, tiny_data_dir):
    readme = kept_runs / "README.md"
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    readme.write_text(f"# title\n\n{begin}\nold table\n{end}\n\nafter\n", encoding="utf-8")
    figure = kept_runs / "confusion.png"
    result = run_tool(
        str(PROJECT_ROOT / "tools" / "results_table.py"), "--results-dir", str(kept_runs / "results"),
        "--markdown", str(readme), "--figure", str(figure), "--set-name", f"{tiny_data_dir / 'dev.jsonl'}=Dev again",
        cwd=kept_runs,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and text.startswith("# title\n") and text.endswith(f"{end}\n\nafter\n")
    assert result.stdout in text
    runs = load_runs(kept_runs / "results")
    fastformer = [r for r in runs if r["model"] == "fastformer"]
    accuracies = [100 * r["evaluations"][r["test_file"]]["accuracy"] for r in fastformer]
    mean = sum(accuracies) / 2
    std = (sum((a - mean) ** 2 for a in accuracies)) ** 0.5  # sample std of two values: |a - b| / sqrt(2)
    assert f"| Fastformer | 1, 2 | {mean:.2f} ± {std:.2f} |" in result.stdout
    assert "| Transformer | 1 |" in result.stdout and "Dev again Acc" in result.stdout
    assert f"best run by dev macro-F1, `{best_run(runs)['run']}`" in result.stdout
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rows_per_named_config_and_the_majority_baseline(kept_runs):
    runs = load_runs(kept_runs / "results")
    config_of = {run["model"]: run["config_file"] for run in runs}
    table = results_markdown(runs, row_names={config_of["transformer"]: "Transformer, stage A", config_of["fastformer"]: "Fastformer, stage A"})
    rows = [line for line in table.splitlines() if line.startswith("| ") and "stage A" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| Transformer, stage A", "| Fastformer, stage A"]  # the order given
    baseline = next(run["evaluations"][run["test_file"]]["majority_baseline"] for run in runs)
    assert f'| Always "{baseline["label"]}" (the training split\'s most frequent) | — | {100 * baseline["accuracy"]:.2f} |' in table


def test_the_equal_compute_view_reads_each_dev_record_s_training_time(kept_runs):
    figure = kept_runs / "by_time.png"
    result = run_tool(str(PROJECT_ROOT / "tools" / "results_table.py"), "--results-dir", str(kept_runs / "results"),
                      "--by-time", "--figure", str(figure), cwd=kept_runs)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    runs = load_runs(kept_runs / "results")
    minutes = sorted({r["dev_history"][0]["train_seconds"] / 60 for r in runs})
    assert all(r["dev_history"][0]["train_seconds"] > 0 for r in runs)
    header = next(line for line in result.stdout.splitlines() if line.startswith("| Run"))
    assert header == "| Run | Model | " + " | ".join(f"≤ {m:.1f} min" for m in minutes) + " |"
    for run in runs:
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"| {run['run']} |"))
        assert row.endswith(f"| {100 * run['dev_history'][0]['accuracy']:.2f} |")  # every run is in by the last budget
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    untimed = [{**runs[0], "dev_history": [{"epoch": 1, "step": 3, "accuracy": 0.5, "macro_f1": 0.5}]}]
    with pytest.raises(UserError, match="lack train_seconds"):
        time_markdown(untimed)


def test_the_paired_comparison_of_two_configs_on_their_shared_seeds(kept_runs, tmp_path):
    runs = load_runs(kept_runs / "results")
    config_of = {run["model"]: run["config_file"] for run in runs}
    result = run_tool(str(PROJECT_ROOT / "tools" / "results_table.py"), "--results-dir", str(kept_runs / "results"),
                      "--compare", config_of["transformer"], config_of["fastformer"], cwd=kept_runs)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and not line.startswith("| Test set")]
    assert len(rows) == 2 and all(row.split(" | ")[1:3] == ["1", "40"] or row.split(" | ")[1] == "1" for row in rows)
    fastformer = next(r for r in runs if r["run"] == "tiny_seed1")
    transformer = next(r for r in runs if r["run"] == "tiny_transformer_seed1")
    test = fastformer["test_file"]
    difference = 100 * (fastformer["evaluations"][test]["accuracy"] - transformer["evaluations"][test]["accuracy"])
    assert f"| {difference:+.2f} [" in next(row for row in rows if row.startswith(f"| {test} |"))
    for extra, message in ((["--figure", str(tmp_path / "x.png")], "--figure has no picture for --compare"),
                           (["--by-time"], "not allowed with argument")):  # fmt: skip
        refused = run_tool(str(PROJECT_ROOT / "tools" / "results_table.py"), "--results-dir", str(kept_runs / "results"),
                           "--compare", config_of["transformer"], config_of["fastformer"], *extra, cwd=kept_runs)  # fmt: skip
        assert refused.returncode == 2 and message in refused.stderr.strip().splitlines()[-1]
        assert not (tmp_path / "x.png").exists()
    # Runs kept before predictions were: refused, saying how to get them.
    copied = tmp_path / "results"
    shutil.copytree(kept_runs / "results", copied)
    (copied / "tiny_seed1" / "predictions.json").unlink()
    with pytest.raises(UserError, match="predictions.json: not found; the run was kept before predictions were"):
        comparison_markdown(str(copied), load_runs(copied), config_of["transformer"], config_of["fastformer"])


def test_missing_results_and_bad_readme(tmp_path, kept_runs):
    with pytest.raises(UserError, match="no \\*/metrics.json found"):
        load_runs(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(UserError, match="expected one '<!-- results:begin -->' line"):
        replace_block(readme, results_markdown(load_runs(kept_runs / "results")))
    result = run_tool(str(PROJECT_ROOT / "tools" / "results_table.py"), "--results-dir", str(tmp_path), cwd=tmp_path)
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and last_line.startswith("error: ") and "no */metrics.json found" in last_line


def test_unreadable_record_names_the_file(tmp_path):
    (tmp_path / "run_seed1").mkdir()
    (tmp_path / "run_seed1" / "metrics.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="run_seed1/metrics.json: unreadable run record"):
        load_runs(tmp_path)


def test_text_writer_runs_keep_rouge_and_make_their_own_table(tmp_path):
    """tools/run_experiment.py on a pairs folder keeps ROUGE of the test titles; the table shows it per config
    beside the paper's Table 6, and a folder mixing classifiers and text writers is refused."""
    import json

    from fastformer_zoo.data.pairs import prepare_pairs
    from fastformer_zoo.data.synthetic import write_synthetic_reviews
    from fastformer_zoo.reporting import summary_results_markdown

    splits = [write_synthetic_reviews(tmp_path / f"{name}.json", size, seed) for name, size, seed in (("a", 64, 1), ("b", 16, 2), ("c", 16, 3))]
    prepare_pairs(splits, tmp_path / "pairs", (0, 0, 0))
    config = write_tiny_config(tmp_path / "titles.yaml", tmp_path / "pairs", tmp_path / "unused",
                               Global={"task": "seq2seq", "max_steps": 2}, Data={"max_target_len": 6})  # fmt: skip
    result = run_tool(str(PROJECT_ROOT / "tools" / "run_experiment.py"), "-c", str(config), "--seeds", "1",
                      "--results-dir", str(tmp_path / "results"), "--output-root", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = load_runs(tmp_path / "results")
    scores = run["evaluations"][run["test_file"]]
    assert run["task"] == "seq2seq" and scores["num_examples"] == 16 and scores["num_beams"] == 4
    assert 0 <= scores["rougeL"] <= 1 and run["best_dev_neg_loss"] < 0
    table = summary_results_markdown([run], {str(config): "Tiny writer"})
    assert f"| Tiny writer | 1 | {100 * scores['rouge1']:.2f} |" in table and "| Fastformer, paper Table 6 (CNN/DailyMail, other data) | — | 38.54 | 16.22 | 36.21 | — |" in table
    classifier = json.loads(json.dumps(run)) | {"task": "classification"}
    with pytest.raises(UserError, match="mix classifiers and text writers"):
        summary_results_markdown([run, classifier])
    refused = run_tool(str(PROJECT_ROOT / "tools" / "results_table.py"), "--results-dir", str(tmp_path / "results"),
                       "--by-time", cwd=tmp_path)  # fmt: skip
    last_line = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and last_line.startswith("error: ") and "these runs are text writers" in last_line


def test_a_run_s_dev_history_as_a_table(kept_runs, tmp_path):
    state = kept_runs / "out" / "tiny_seed1" / "last" / "trainer_state.json"
    page = tmp_path / "page.md"
    page.write_text("a\n<!-- h:begin -->\nold\n<!-- h:end -->\nb\n", encoding="utf-8")
    tool = str(PROJECT_ROOT / "tools" / "dev_history.py")
    result = run_tool(tool, str(state), "--markdown", str(page), "--block", "h", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    header, _, row = result.stdout.splitlines()
    assert header == "| Step | Epoch | Minutes of training | accuracy (%) | macro_f1 (%) |"
    [record] = json.loads(state.read_text(encoding="utf-8"))["progress"]["history"]
    assert row.startswith(f"| 3 | {record['epoch']:g} | ") and row.endswith(f" | {100 * record['macro_f1']:.2f} |")
    assert page.read_text(encoding="utf-8") == f"a\n<!-- h:begin -->\n{result.stdout}<!-- h:end -->\nb\n"
    refused = run_tool(tool, str(state.parent / "config.json"), cwd=tmp_path)
    last_line = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and last_line.startswith("error: ") and "progress.history" in last_line
