"""Any single-label text classification task: labels by name from files, through every tool.

Each dataset goes through tools/prepare_data.py, tools/train.py (tiny model, a few steps),
tools/eval.py, tools/export_model.py and tools/infer.py, and every output must speak of its labels
by name: label.txt, the saved config, the metrics, inference_config.json and the predictions.
"""
import csv
import json
import sys

import numpy as np
import pytest
import yaml

from conftest import PROJECT_ROOT, assert_one_line_error, run_main, write_tiny_config

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import eval as eval_tool  # noqa: E402
import export_model  # noqa: E402
import infer  # noqa: E402
import prepare_data  # noqa: E402
import train as train_tool  # noqa: E402

SENTIMENTS = ["negative", "neutral", "positive"]
CATEGORIES = [f"category {index}" for index in range(1, 32)]  # natural order puts "category 2" before "category 10"


def labelled_rows(names, count, seed):
    """Texts whose words give their label away (``<name>-word``), so that a tiny model learns something."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        name = names[index % len(names)]
        key = name.replace(" ", "")
        words = [f"{key}word"] * int(rng.integers(1, 4)) + [str(rng.choice(["the", "a", "item", "story", "was"]))]
        rows.append({"text": " ".join(rng.permutation(words)), "label": name})
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path, rows, fields=("text", "label"), header=True):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(rows)
    return path


def prepare(capsys, *argv):
    assert prepare_data.main([*map(str, argv)]) == 0
    return capsys.readouterr().out


def train_tiny(tmp_path, data_dir, **sections):
    config = write_tiny_config(tmp_path / "tiny.yaml", data_dir, tmp_path / "run", Global={"max_steps": 6}, **sections)
    train_tool.main(["-c", str(config)])
    return config


def stdout_json_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def check_every_output(tmp_path, capsys, config, names):
    """Saved config, eval metrics, export settings and predictions, all by label name in ``names`` order."""
    best = tmp_path / "run" / "best"
    saved = json.loads((best / "config.json").read_text())
    assert [saved["id2label"][str(index)] for index in range(len(names))] == names
    assert saved["label2id"] == {name: index for index, name in enumerate(names)}
    capsys.readouterr()

    predictions = tmp_path / "predictions.jsonl"
    eval_tool.main(["-c", str(config), "-o", f"Global.checkpoint={best}", f"Global.predictions_file={predictions}"])
    out = capsys.readouterr().out
    metrics = json.loads(out.splitlines()[-1])
    assert list(metrics["per_class_f1"]) == names and len(metrics["confusion_matrix"]) == len(names)
    assert names[0] in out  # the table names the classes
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert {row["label"] for row in rows} <= set(names) and list(rows[0]["probabilities"]) == names

    export_dir = tmp_path / "export"
    export_model.main(["-c", str(config), "-o", f"Global.pretrained_model={best}", f"Global.save_inference_dir={export_dir}"])
    capsys.readouterr()
    assert json.loads((export_dir / "inference_config.json").read_text())["label_names"] == names

    data_dir = yaml.safe_load(config.read_text())["Data"]["data_dir"]
    infer.main(["--model_dir", str(export_dir), "--data_dir", data_dir, "--cpu_threads", "1"])
    out = capsys.readouterr().out
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert results and all(result["label"] in names and list(result["probabilities"]) == names for result in results)
    assert all(result["score"] == max(result["probabilities"].values()) for result in results)
    assert "accuracy:" in out.splitlines()[-1]


# --------------------------------------------------------------------------------- end to end
def test_three_string_labels_from_json_lines(tmp_path, capsys):
    raw = write_jsonl(tmp_path / "sentiment.jsonl", labelled_rows(SENTIMENTS, 150, seed=1))
    prepare(capsys, "--input", raw, "--output-dir", tmp_path / "data", "--splits", "120,15,15", "--seed", "1")
    assert (tmp_path / "data" / "label.txt").read_text().splitlines() == SENTIMENTS
    config = train_tiny(tmp_path, tmp_path / "data")
    check_every_output(tmp_path, capsys, config, SENTIMENTS)


def test_thirty_one_string_labels_from_csv(tmp_path, capsys):
    raw = write_csv(tmp_path / "categories.csv", labelled_rows(CATEGORIES, 620, seed=2))
    printed = prepare(capsys, "--input", raw, "--output-dir", tmp_path / "data", "--splits", "0.8,0.1,0.1")
    assert "category 2 " in printed
    assert (tmp_path / "data" / "label.txt").read_text().splitlines() == CATEGORIES
    config = train_tiny(tmp_path, tmp_path / "data")
    check_every_output(tmp_path, capsys, config, CATEGORIES)


def test_label_file_fixes_names_and_order(tmp_path, capsys):
    order = ["positive", "negative", "neutral", "mixed"]  # a class absent from the data is kept
    label_file = tmp_path / "label.txt"
    label_file.write_text("\n".join(order) + "\n", encoding="utf-8")
    rows = labelled_rows(SENTIMENTS, 90, seed=3)
    raw = write_jsonl(tmp_path / "s.jsonl", rows)
    prepare(capsys, "--input", raw, "--label-file", label_file, "--output-dir", tmp_path / "data", "--splits", "60,15,15")
    assert (tmp_path / "data" / "label.txt").read_text().splitlines() == order
    for line in (tmp_path / "data" / "train.jsonl").read_text().splitlines():
        example = json.loads(line)
        assert next(row["label"] for row in rows if row["text"] == example["text"]) == order[example["label"]]
    config = train_tiny(tmp_path, tmp_path / "data")
    check_every_output(tmp_path, capsys, config, order)


def test_ag_news_style_csv_with_and_without_header(tmp_path, capsys):
    printed = prepare(capsys, "--synthetic-news", 200, "--with-title", "--output-dir", tmp_path / "data", "--splits", "0.8,0.1,0.1")
    assert "generated 200 synthetic news stories" in printed
    topics = sorted(["World", "Sports", "Business", "Sci/Tech"])
    assert (tmp_path / "data" / "label.txt").read_text().splitlines() == topics
    with open(tmp_path / "data" / "synthetic_news.csv", encoding="utf-8") as handle:
        stories = list(csv.DictReader(handle))
    first = json.loads((tmp_path / "data" / "train.jsonl").read_text().splitlines()[0])
    assert any(first["text"] == f"{row['title']}. {row['description']}" for row in stories)  # the title comes first
    train_tiny(tmp_path, tmp_path / "data")
    assert (tmp_path / "run" / "best" / "config.json").is_file()

    # AG News's own files have no header row: the columns are named on the command line.
    headerless = write_csv(tmp_path / "train.csv", stories, fields=("label", "title", "description"), header=False)
    prepare(capsys, "--input", headerless, "--columns", "label,title,description", "--with-title",
            "--output-dir", tmp_path / "again", "--splits", "0.8,0.1,0.1")
    assert (tmp_path / "again" / "train.jsonl").read_bytes() == (tmp_path / "data" / "train.jsonl").read_bytes()


# --------------------------------------------------------------------------------- one-line errors
def test_a_dev_label_outside_the_training_labels_is_named_with_its_line(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", labelled_rows(SENTIMENTS, 30, seed=4))
    dev_rows = labelled_rows(SENTIMENTS, 5, seed=5)
    dev_rows[3]["label"] = "angry"
    dev = write_jsonl(tmp_path / "dev.jsonl", dev_rows)
    test = write_jsonl(tmp_path / "test.jsonl", labelled_rows(SENTIMENTS, 5, seed=6))
    argv = ["--keep-splits", "--input", train, dev, test, "--output-dir", tmp_path / "data", "--splits", "0,0,0"]
    assert_one_line_error(run_main(prepare_data.main, [*map(str, argv)], capsys), f"{dev}:4", "'angry'", "training input")
    assert not (tmp_path / "data").exists()


def test_a_label_outside_the_label_file_is_named_with_its_line(tmp_path, capsys):
    label_file = tmp_path / "label.txt"
    label_file.write_text("negative\npositive\n", encoding="utf-8")
    raw = write_jsonl(tmp_path / "s.jsonl", labelled_rows(SENTIMENTS, 30, seed=7))
    argv = ["--input", raw, "--label-file", label_file, "--output-dir", tmp_path / "data", "--splits", "20,5,5"]
    assert_one_line_error(run_main(prepare_data.main, [*map(str, argv)], capsys), f"{raw}:", "'neutral'", str(label_file))


@pytest.mark.parametrize(
    "content, fragment",
    [("negative\n\npositive\n", ":2: blank line"), ("negative\npositive\nnegative\n", ":3: label 'negative' again"), ("\n", "no label names")],
)
def test_a_bad_label_file_is_one_line(tmp_path, capsys, content, fragment):
    label_file = tmp_path / "label.txt"
    label_file.write_text(content, encoding="utf-8")
    raw = write_jsonl(tmp_path / "s.jsonl", labelled_rows(SENTIMENTS, 30, seed=8))
    argv = ["--input", raw, "--label-file", label_file, "--output-dir", tmp_path / "data", "--splits", "20,5,5"]
    assert_one_line_error(run_main(prepare_data.main, [*map(str, argv)], capsys), str(label_file), fragment)


def test_a_missing_label_column_is_one_line(tmp_path, capsys):
    raw = write_csv(tmp_path / "texts.csv", labelled_rows(SENTIMENTS, 30, seed=9), fields=("text",))
    argv = ["--input", raw, "--output-dir", tmp_path / "data", "--splits", "20,5,5"]
    assert_one_line_error(run_main(prepare_data.main, [*map(str, argv)], capsys), f"{raw}:1", "no label column", "--label-column")
    argv += ["--label-column", "topic"]
    assert_one_line_error(run_main(prepare_data.main, [*map(str, argv)], capsys), f"{raw}:1", "no label column 'topic'")


def test_a_single_label_is_not_a_task(tmp_path, capsys):
    raw = write_jsonl(tmp_path / "s.jsonl", labelled_rows(["positive"], 30, seed=10))
    argv = ["--input", raw, "--output-dir", tmp_path / "data", "--splits", "20,5,5"]
    assert_one_line_error(run_main(prepare_data.main, [*map(str, argv)], capsys), "single label", "'positive'")


# --------------------------------------------------------------------------------- class imbalance
def skewed_dataset(tmp_path, capsys):
    rows = labelled_rows(["common"], 180, seed=11) + labelled_rows(["rare"], 20, seed=12)
    raw = write_jsonl(tmp_path / "skewed.jsonl", rows)
    prepare(capsys, "--input", raw, "--output-dir", tmp_path / "data", "--splits", "160,20,20")
    return tmp_path / "data"


def test_class_balanced_sampler_visits_every_class_equally(tmp_path, capsys):
    from fastformer_zoo.data.loader import ReviewDataset, make_dataloader
    from fastformer_zoo.data.readers import read_prepared
    from paddlenlp_fastformer.tokenizer import FastformerTokenizer

    examples = read_prepared(skewed_dataset(tmp_path, capsys) / "train.jsonl", 2)
    tokenizer = FastformerTokenizer.build_from_corpus([example["text"] for example in examples])
    dataset = ReviewDataset(examples, tokenizer, 16)
    seen = {False: [], True: []}
    for balanced in seen:
        loader = make_dataloader(dataset, 8, shuffle=True, seed=0, class_balanced=balanced)
        for epoch in range(10):
            loader.batch_sampler.set_epoch(epoch)
            seen[balanced] += [label for batch in loader for label in batch["labels"].tolist()]
    rare_share = {balanced: np.mean(labels) for balanced, labels in seen.items()}  # "rare" is class 1
    assert rare_share[False] < 0.15 and 0.4 < rare_share[True] < 0.6
    loader.batch_sampler.set_epoch(3)
    assert [batch["labels"].tolist() for batch in loader] == [batch["labels"].tolist() for batch in loader]  # seeded


def test_balanced_class_weights_and_sampler_train(tmp_path, capsys):
    data_dir = skewed_dataset(tmp_path, capsys)
    train_tiny(tmp_path, data_dir, Data={"class_weights": "balanced", "sampler": "class_balanced"})
    log = (tmp_path / "run" / "train.log").read_text()
    assert "a 2-class classifier" in log and (tmp_path / "run" / "best").is_dir()


def test_class_weights_follow_scikit_learn_balanced_rule(tmp_path):
    from sklearn.utils.class_weight import compute_class_weight

    from fastformer_zoo.engine.tasks import ClassificationTask
    from fastformer_zoo.settings import load_config

    config = load_config(write_tiny_config(tmp_path / "c.yaml", tmp_path, tmp_path / "out", Data={"class_weights": "balanced"}))
    labels = [0] * 7 + [1] * 2 + [3]  # class 2 has no example: weight 0
    task = ClassificationTask(config)
    task.labels = ["a", "b", "c", "d"]
    weights = task._class_weights(labels).numpy()
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=np.array(labels))
    np.testing.assert_allclose(weights[[0, 1, 3]], expected, rtol=1e-6)
    assert weights[2] == 0


# --------------------------------------------------------------------------------- curves
def test_visualdl_scalars_and_training_curve(tmp_path, tiny_data_dir):
    from visualdl import LogReader

    config = write_tiny_config(tmp_path / "tiny.yaml", tiny_data_dir, tmp_path / "run", Global={"use_visualdl": True, "max_steps": 5})
    train_tool.main(["-c", str(config)])
    assert (tmp_path / "run" / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    records = list((tmp_path / "run" / "vdl").iterdir())
    reader = LogReader(file_path=str(records[0]))
    tags = set(reader.get_tags()["scalar"])
    assert {"train/loss", "train/learning_rate", "train/tokens_per_s", "dev/accuracy", "dev/macro_f1"} <= tags
    assert [record.id for record in reader.get_data("scalar", "train/loss")] == [1, 2, 3, 4, 5]


def test_options_that_do_not_apply_are_refused(tmp_path, capsys):
    raw = write_jsonl(tmp_path / "s.jsonl", labelled_rows(SENTIMENTS, 30, seed=13))
    base = ["--input", str(raw), "--output-dir", str(tmp_path / "data"), "--splits", "20,5,5"]
    assert_one_line_error(run_main(prepare_data.main, [*base, "--columns", "text,label"], capsys), "--columns", "JSON lines")
    assert_one_line_error(run_main(prepare_data.main, [*base, "--title-column", "subject"], capsys), "--with-title")


def test_a_named_text_field_does_not_decide_the_label_field(tmp_path, capsys):
    rows = [{"reviewText": row["text"], "label": row["label"]} for row in labelled_rows(SENTIMENTS, 30, seed=14)]
    raw = write_jsonl(tmp_path / "s.jsonl", rows)
    prepare(capsys, "--input", raw, "--text-column", "reviewText", "--output-dir", tmp_path / "data", "--splits", "20,5,5")
    assert (tmp_path / "data" / "label.txt").read_text().splitlines() == SENTIMENTS
