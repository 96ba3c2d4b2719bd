"""Tests for fastformer_zoo.data: readers, prepare_dataset, synthetic data, CLI (the loader: test_loader.py)."""

import gzip
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fastformer_zoo.data.prepare import prepare_dataset
from fastformer_zoo.data.labels import STAR_LABELS
from fastformer_zoo.data.readers import FieldChoice, read_prepared, read_reviews
from fastformer_zoo.data.synthetic import generate_synthetic_reviews, write_synthetic_reviews
from fastformer_zoo.errors import UserError
from conftest import default_data_source

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
ELECTRONICS_SAMPLE = SHARED_DATA / "amazon_electronics_sample" / "Electronics_sample.json.gz"
MARC_DEV = SHARED_DATA / "marc_en" / "dev.jsonl.gz"
SPLIT_FILES = ("train.jsonl", "dev.jsonl", "test.jsonl", "label.txt", "stats.json")


# --------------------------------------------------------------------------- helpers


def write_jsonl(path, rows, compress=False):
    payload = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def mcauley(stars, text, summary="Summary"):
    return {"overall": stars, "reviewText": text, "summary": summary, "asin": "B000000000"}


def marc(stars, body, title="Title"):
    return {"review_id": "en_1", "stars": stars, "review_body": body, "review_title": title}


def many_reviews(count):
    """McAuley rows with distinct texts of varying lengths and all five ratings."""
    return [mcauley(float(i % 5 + 1), " ".join(["word"] * (i % 7 + 1)) + f" review {i}") for i in range(count)]


def read_split(directory, name):
    return read_prepared(directory / f"{name}.jsonl", len(STAR_LABELS))


def star(count):
    """The label name of a star rating."""
    return STAR_LABELS[count - 1]


# --------------------------------------------------------------------------- formats and labels


@pytest.mark.parametrize(
    "name, compress",
    [("r.json.gz", True), ("r.json", False), ("gz_without_suffix.json", True), ("plain_with_suffix.json.gz", False)],
)
def test_mcauley_gzip_or_plain_is_detected_from_content(tmp_path, name, compress):
    rows = [mcauley(float(stars), f"text {stars}") for stars in range(1, 6)]
    examples, report = read_reviews(write_jsonl(tmp_path / name, rows, compress))
    assert examples == [{"text": f"text {stars}", "label": star(stars)} for stars in range(1, 6)]
    assert (report.rows, report.kept, report.skipped) == (5, 5, {})


def test_marc_stars_map_to_labels(tmp_path):
    path = write_jsonl(tmp_path / "marc.jsonl.gz", [marc(stars, f"body {stars}") for stars in (5, 1, 3)], compress=True)
    examples, _ = read_reviews(path)
    assert examples == [{"text": "body 5", "label": star(5)}, {"text": "body 1", "label": star(1)}, {"text": "body 3", "label": star(3)}]


def test_label_names_are_star_counts():
    assert STAR_LABELS == ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")


def test_csv_default_columns_and_quoted_multiline_text(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,review,stars\n1,"Good, but\nloud",4\n2,Bad,1.0\n', encoding="utf-8")
    examples, report = read_reviews(path)
    assert examples == [{"text": "Good, but\nloud", "label": star(4)}, {"text": "Bad", "label": star(1)}]
    assert report.rows == 2


def test_tsv_named_columns(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_text("body\tscore\trating\nNice one\t5\t1\n", encoding="utf-8")
    examples, _ = read_reviews(path, fields=FieldChoice(text="body", rating="score"))
    assert examples == [{"text": "Nice one", "label": star(5)}]


def test_csv_byte_order_mark_is_not_part_of_the_header(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftext,rating\nFine,3\n".encode("utf-8"))
    assert read_reviews(path)[0] == [{"text": "Fine", "label": star(3)}]


def test_with_title_prepends_title_as_first_sentence(tmp_path):
    rows = [mcauley(5.0, "Works.", "Great!"), mcauley(4.0, "Works.", "Nice"), {"overall": 3.0, "reviewText": "Works."}]
    path = write_jsonl(tmp_path / "titles.json", rows)
    assert [e["text"] for e in read_reviews(path, with_title=True)[0]] == ["Great! Works.", "Nice. Works.", "Works."]
    assert [e["text"] for e in read_reviews(path)[0]] == ["Works."] * 3


def test_with_title_for_marc_and_csv(tmp_path):
    marc_path = write_jsonl(tmp_path / "m.jsonl", [marc(2, "Body", "Meh")])
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("summary,text,rating\nHeadline,Body,2\n", encoding="utf-8")
    assert read_reviews(marc_path, with_title=True)[0][0]["text"] == "Meh. Body"
    assert read_reviews(csv_path, with_title=True)[0][0]["text"] == "Headline. Body"


def test_with_title_keeps_the_same_rows(tmp_path):
    rows = [mcauley(5.0, "", "Title only"), mcauley(4.0, "Body", "")]
    path = write_jsonl(tmp_path / "r.json", rows)
    assert [e["label"] for e in read_reviews(path, with_title=True)[0]] == [star(4)]


# --------------------------------------------------------------------------- skipped rows


def test_unusable_rows_are_skipped_and_counted_per_reason(tmp_path):
    rows = [
        mcauley(5.0, "good"),
        mcauley(5.0, ""),
        mcauley(5.0, "   \n"),
        {"overall": 4.0, "summary": "no text"},
        mcauley(5.0, 42),
        mcauley(0.0, "zero"),
        mcauley(7, "seven"),
        mcauley(4.5, "half"),
        mcauley("abc", "letters"),
        mcauley(True, "boolean"),
        {"reviewText": "no rating"},
        mcauley(None, "null rating"),
        mcauley("4", "string four"),
    ]
    path = write_jsonl(tmp_path / "dirty.json", rows)
    examples, report = read_reviews(path)
    assert examples == [{"text": "good", "label": star(5)}, {"text": "string four", "label": star(4)}]
    assert report.skipped == {
        "empty_text": 2,
        "missing_text": 1,
        "text_not_a_string": 1,
        "rating_out_of_range": 2,
        "rating_not_integral": 1,
        "rating_not_a_number": 2,
        "missing_rating": 2,
    }
    assert (report.rows, report.kept) == (13, 2)
    assert report.first_skipped == [
        f"{path}:2 (empty_text)",
        f"{path}:3 (empty_text)",
        f"{path}:4 (missing_text)",
        f"{path}:5 (text_not_a_string)",
        f"{path}:6 (rating_out_of_range)",
    ]
    assert "missing_rating 2" in report.summary()


def test_csv_empty_cells_are_skipped(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,rating\n,5\nok,\nok,6\nok,2\n", encoding="utf-8")
    examples, report = read_reviews(path)
    assert examples == [{"text": "ok", "label": star(2)}]
    assert report.skipped == {"empty_text": 1, "missing_rating": 1, "rating_out_of_range": 1}
    assert report.first_skipped[0] == f"{path}:2 (empty_text)"


# --------------------------------------------------------------------------- errors


def test_corrupt_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(mcauley(5.0, "a")) + "\n\n" + '{"overall": 5.0, "reviewText": "cut\n', encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{path}:3: invalid JSON .*expected one JSON object per line$"):
        read_reviews(path)


def test_json_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{path}:1: got a JSON list"):
        read_reviews(path)


def test_unknown_json_schema(tmp_path):
    path = write_jsonl(tmp_path / "other.json", [{"body": "x", "score": 5}])
    with pytest.raises(UserError, match=rf"^{path}:1: unknown fields .*McAuley.*MARC.*text/label"):
        read_reviews(path)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.json.gz"
    with pytest.raises(UserError, match=rf"^{path}: cannot read file \(No such file or directory\)"):
        read_reviews(path)


def test_non_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.json"
    latin1_line = '{"overall": 4.0, "reviewText": "caf\xe9"}\n'.encode("latin-1")
    path.write_bytes(json.dumps(mcauley(5.0, "fine")).encode() + b"\n" + latin1_line)
    with pytest.raises(UserError, match=rf"^{path}:2: not valid UTF-8"):
        read_reviews(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps(mcauley(5.0, "x")).encode() + b"\n" for _ in range(200)))[:60])
    with pytest.raises(UserError, match=rf"^{path}: corrupt gzip data"):
        read_reviews(path)


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, r"no text column; expected one of \['text', 'reviewText', 'review_body', 'review', 'description'"),
        ({"fields": FieldChoice(text="comment")}, r"no text column 'comment'"),
        ({"fields": FieldChoice(text="body", rating="stars")}, r"no rating column 'stars'"),
        ({"fields": FieldChoice(text="body"), "with_title": True}, r"no title column"),
    ],
)
def test_csv_missing_column(tmp_path, options, message):
    path = tmp_path / "r.csv"
    path.write_text("body,rating\nx,5\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{path}:1: {message}"):
        read_reviews(path, **options)


def test_read_prepared_rejects_other_content(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "ok", "label": 4}, {"text": "bad", "label": 5}])
    with pytest.raises(UserError, match=rf"^{path}:2: expected"):
        read_prepared(path, 5)


# --------------------------------------------------------------------------- prepare_dataset


@pytest.fixture
def raw_file(tmp_path):
    return write_jsonl(tmp_path / "raw.json.gz", many_reviews(200) + [mcauley(0.0, "bad rating")], compress=True)


def test_prepare_is_byte_identical_for_the_same_seed(tmp_path, raw_file):
    for name in ("a", "b"):
        prepare_dataset([raw_file], tmp_path / name, splits=(100, 20, 30), seed=3)
    prepare_dataset([raw_file], tmp_path / "c", splits=(100, 20, 30), seed=4)
    for file_name in SPLIT_FILES:
        assert (tmp_path / "a" / file_name).read_bytes() == (tmp_path / "b" / file_name).read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()


def test_prepare_split_sizes_no_overlap_and_natural_sampling(tmp_path, raw_file):
    prepare_dataset([raw_file], tmp_path / "out", num_samples=150, splits=(100, 20, 30), seed=0)
    splits = {name: read_split(tmp_path / "out", name) for name in ("train", "dev", "test")}
    assert {name: len(examples) for name, examples in splits.items()} == {"train": 100, "dev": 20, "test": 30}
    texts = [example["text"] for examples in splits.values() for example in examples]
    assert len(set(texts)) == 150
    valid = {e["text"]: STAR_LABELS.index(e["label"]) for e in read_reviews(raw_file)[0]}
    assert all(valid[example["text"]] == example["label"] for examples in splits.values() for example in examples)


def test_prepare_pools_several_inputs(tmp_path):
    first = write_jsonl(tmp_path / "a.json", many_reviews(30))
    second = write_jsonl(tmp_path / "b.jsonl", [marc(2, f"marc {i}") for i in range(30)])
    prepare_dataset([first, second], tmp_path / "out", splits=(60, 0, 0), seed=0)
    train = read_split(tmp_path / "out", "train")
    assert sum(example["text"].startswith("marc ") for example in train) == 30
    assert len({example["text"] for example in train}) == 60


def test_prepare_fraction_splits(tmp_path, raw_file):
    stats = prepare_dataset([raw_file], tmp_path / "all", num_samples=None, splits=(0.7, 0.29, 0.01), seed=0)
    assert [stats["splits"][name]["count"] for name in ("train", "dev", "test")] == [140, 58, 2]
    stats = prepare_dataset([raw_file], tmp_path / "some", num_samples=99, splits=(0.8, 0.1, 0.1), seed=0)
    assert [stats["splits"][name]["count"] for name in ("train", "dev", "test")] == [81, 9, 9]


@pytest.mark.parametrize(
    "num_samples, splits, message",
    [
        (150, (100, 20, 20), r"sum to 140; expected them to sum to num_samples=150"),
        (None, (190, 10, 1), r"asked for 201 rows; the inputs hold only 200 valid rows"),
        (None, (0.5, 0.2, 0.2), r"sum to 0.9; expected 1"),
        (None, (10, 10), r"expected three"),
        (None, (10, -1, 1), r"no negative"),
    ],
)
def test_prepare_rejects_impossible_splits(tmp_path, raw_file, num_samples, splits, message):
    with pytest.raises(UserError, match=message):
        prepare_dataset([raw_file], tmp_path / "out", num_samples=num_samples, splits=splits)
    assert not (tmp_path / "out").exists()


def test_keep_splits_samples_each_official_split(tmp_path):
    files = [
        write_jsonl(tmp_path / f"{name}.jsonl.gz", [marc(i % 5 + 1, f"{name} {i}") for i in range(size)], compress=True)
        for name, size in (("train", 50), ("dev", 10), ("test", 12))
    ]
    stats = prepare_dataset(files, tmp_path / "out", splits=(20, 0, 99), seed=1, keep_splits=True)
    splits = {name: read_split(tmp_path / "out", name) for name in ("train", "dev", "test")}
    assert {name: len(examples) for name, examples in splits.items()} == {"train": 20, "dev": 10, "test": 12}
    for name, examples in splits.items():
        assert all(example["text"].startswith(f"{name} ") for example in examples)
    assert sorted(example["text"] for example in splits["dev"]) == sorted(f"dev {i}" for i in range(10))
    assert stats["arguments"]["keep_splits"] is True


def test_keep_splits_needs_two_or_three_inputs_and_counts(tmp_path, raw_file):
    with pytest.raises(UserError, match="expects three .* or two"):
        prepare_dataset([raw_file], tmp_path / "out", splits=(10, 0, 0), keep_splits=True)
    with pytest.raises(UserError, match="expects counts"):
        prepare_dataset([raw_file] * 3, tmp_path / "out", splits=(0.8, 0.1, 0.1), keep_splits=True)


def test_keep_splits_zero_sizes_keep_every_file_whole(tmp_path):
    files = [write_jsonl(tmp_path / f"{name}.jsonl", [marc(i % 5 + 1, f"{name} {i}") for i in range(size)])
             for name, size in (("train", 9), ("dev", 4), ("test", 5))]  # fmt: skip
    stats = prepare_dataset(files, tmp_path / "out", splits=(0, 0, 0), keep_splits=True)
    assert {name: split["count"] for name, split in stats["splits"].items()} == {"train": 9, "dev": 4, "test": 5}


def imdb_like(name, size, shared=()):
    """IMDB-style rows (text, a label name, the rating beside it) with distinct texts, plus ``shared`` texts."""
    texts = [f"{name} review {i}" for i in range(size)] + list(shared)
    return [{"id": f"{name}/{i}", "text": text, "label": ("negative", "positive")[i % 2], "rating": (3, 8)[i % 2]}
            for i, text in enumerate(texts)]  # fmt: skip


def test_keep_splits_with_train_and_test_draws_dev_out_of_train(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", imdb_like("train", 40, shared=["seen twice"] * 2 + ["also in test"]))
    test = write_jsonl(tmp_path / "test.jsonl", imdb_like("test", 12, shared=["also in test"]))
    options = dict(splits=(0, 8, 0), seed=3, keep_splits=True, fields=FieldChoice(label="label"))
    stats = prepare_dataset([train, test], tmp_path / "out", **options)
    splits = {name: [e["text"] for e in read_prepared(tmp_path / "out" / f"{name}.jsonl", 2)] for name in ("train", "dev", "test")}
    assert {name: len(texts) for name, texts in splits.items()} == {"train": 35, "dev": 8, "test": 12}
    assert sorted(splits["train"] + splits["dev"]) == sorted(r["text"] for r in imdb_like("train", 40, ["seen twice"] * 2 + ["also in test"]))
    assert "seen twice" not in splits["dev"]  # a copied text stays whole in train
    assert "also in test" not in splits["test"] and all(text.startswith("test ") for text in splits["test"])
    assert stats["duplicates"]["dropped"] == {"train": 0, "dev": 0, "test": 1}
    assert stats["label_names"] == ["negative", "positive"]
    prepare_dataset([train, test], tmp_path / "again", **options)
    assert (tmp_path / "again" / "dev.jsonl").read_bytes() == (tmp_path / "out" / "dev.jsonl").read_bytes()


@pytest.mark.parametrize("splits, message", [((0, 0, 0), "dev size above 0"), ((0, 0.1, 0), "expects counts"),
                                             ((0, 41, 0), "needs more than the 40 training rows")])  # fmt: skip
def test_keep_splits_with_train_and_test_needs_a_dev_size_that_fits(tmp_path, splits, message):
    train = write_jsonl(tmp_path / "train.jsonl", imdb_like("train", 40))
    test = write_jsonl(tmp_path / "test.jsonl", imdb_like("test", 5))
    with pytest.raises(UserError, match=message):
        prepare_dataset([train, test], tmp_path / "out", splits=splits, keep_splits=True, fields=FieldChoice(label="label"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tag", ["<br />", "<br/>", "<BR>", "<br  />"])
def test_html_line_breaks_become_spaces(tmp_path, tag):
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": f"First line.{tag}{tag}Second line.", "label": "a"},
                                              {"text": f" {tag} ", "label": "b"}, {"text": "a <b>bold</b> word", "label": "b"}])  # fmt: skip
    examples, report = read_reviews(path, fields=FieldChoice(label="label"))
    assert [e["text"] for e in examples] == ["First line.  Second line.", "a <b>bold</b> word"]
    assert report.skipped == {"empty_text": 1}


def test_stats_content(tmp_path):
    rows = [mcauley(5.0, "one two three"), mcauley(1.0, "one"), mcauley(5.0, "a b c d e f g h i j"), mcauley(9.0, "x")]
    raw = write_jsonl(tmp_path / "raw.json", rows)
    stats = prepare_dataset([raw], tmp_path / "out", splits=(3, 0, 0), seed=0)
    assert json.loads((tmp_path / "out" / "stats.json").read_text(encoding="utf-8")) == stats
    train = stats["splits"]["train"]
    assert train["count"] == 3
    assert train["class_counts"] == {"1 star": 1, "2 stars": 0, "3 stars": 0, "4 stars": 0, "5 stars": 2}
    assert train["words"] == {"min": 1, "mean": 4.67, "median": 3.0, "p95": 9.3, "max": 10}
    assert stats["splits"]["dev"] == {"count": 0, "class_counts": dict.fromkeys(STAR_LABELS, 0), "words": None}
    assert stats["inputs"] == [
        {
            "path": str(raw),
            "rows": 4,
            "kept": 3,
            "skipped": {"rating_out_of_range": 1},
            "first_skipped": [f"{raw}:4 (rating_out_of_range)"],
            "label_counts": {"5 stars": 2, "1 star": 1},
            "star_ratings": True,
        }
    ]
    assert stats["arguments"]["seed"] == 0 and stats["arguments"]["splits"] == [3, 0, 0]


def test_prepared_lines_are_sorted_utf8_json(tmp_path):
    raw = write_jsonl(tmp_path / "raw.json", [mcauley(4.0, "Café ☕ ok")])
    prepare_dataset([raw], tmp_path / "out", splits=(1, 0, 0))
    assert (tmp_path / "out" / "train.jsonl").read_bytes() == '{"label": 3, "text": "Café ☕ ok"}\n'.encode("utf-8")


def test_writes_leave_no_temporary_files(tmp_path, raw_file):
    prepare_dataset([raw_file], tmp_path / "out", splits=(10, 10, 10))
    assert sorted(os.listdir(tmp_path / "out")) == sorted(SPLIT_FILES)


def test_failed_write_keeps_old_file_and_removes_temporary(tmp_path, raw_file, monkeypatch):
    out = tmp_path / "out"
    prepare_dataset([raw_file], out, splits=(10, 10, 10), seed=0)
    before = (out / "train.jsonl").read_bytes()

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(UserError, match=rf"cannot write {re.escape(str(out / 'train.jsonl'))}: disk full"):
        prepare_dataset([raw_file], out, splits=(10, 10, 10), seed=1, overwrite=True)
    assert (out / "train.jsonl").read_bytes() == before
    assert sorted(os.listdir(out)) == sorted(SPLIT_FILES)
    assert sorted(os.listdir(tmp_path)) == sorted(["out", raw_file.name]), "staging left behind"


def test_an_existing_dataset_is_replaced_only_when_asked(tmp_path, raw_file):
    out = tmp_path / "out"
    prepare_dataset([raw_file], out, splits=(10, 10, 10), seed=0)
    before = (out / "train.jsonl").read_bytes()
    with pytest.raises(UserError, match=r"already holds files; pass --overwrite"):
        prepare_dataset([raw_file], out, splits=(10, 10, 10), seed=1)
    assert (out / "train.jsonl").read_bytes() == before
    prepare_dataset([raw_file], out, splits=(10, 10, 10), seed=1, overwrite=True)
    assert (out / "train.jsonl").read_bytes() != before
    assert sorted(os.listdir(tmp_path)) == sorted(["out", raw_file.name])


# --------------------------------------------------------------------------- synthetic data


def test_synthetic_reviews_are_deterministic_skewed_and_learnable(tmp_path):
    reviews = generate_synthetic_reviews(2000, seed=5)
    assert reviews == generate_synthetic_reviews(2000, seed=5)
    assert reviews != generate_synthetic_reviews(2000, seed=6)
    stars = Counter(int(review["overall"]) for review in reviews)
    assert stars[5] > stars[4] > stars[3] and stars[5] > 0.5 * len(reviews) and stars[1] > 0
    # Rating-dependent vocabulary: "waste" is a 1-star phrase, so it seldom leaves the low ratings.
    waste = Counter(int(review["overall"]) for review in reviews if "waste" in review["reviewText"])
    assert waste[1] > 0 and waste[4] + waste[5] == 0


def test_synthetic_file_goes_through_the_reader(tmp_path):
    path = write_synthetic_reviews(tmp_path / "syn" / "raw.json", 50, seed=0)
    examples, report = read_reviews(path, with_title=True)
    assert report.kept == 50 and len(examples) == 50
    assert all(example["text"].strip() and example["label"] in STAR_LABELS for example in examples)


def test_default_data_source_points_at_the_shared_sample():
    expected = ELECTRONICS_SAMPLE if ELECTRONICS_SAMPLE.is_file() else None
    assert default_data_source() == expected


# --------------------------------------------------------------------------- CLI


def run_cli(*args):
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "prepare_data.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT.parent,
        timeout=300,
    )


def test_cli_bad_input_exits_2_with_one_line_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"overall": 5.0, "reviewText": "ok"}\nnot json\n', encoding="utf-8")
    result = run_cli("--input", bad, "--output-dir", tmp_path / "out", "--splits", "1,0,0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    # stderr may also carry import-time notices of third-party libraries; ours is the last line.
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: {bad}:2: invalid JSON (Expecting value); expected one JSON object per line"]
    assert result.stderr.rstrip("\n").splitlines()[-1] == error_lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_synthetic_prints_summary(tmp_path, capsys):
    sys.path.insert(0, str(PROJECT_ROOT / "tools"))
    try:
        import prepare_data
    finally:
        sys.path.remove(str(PROJECT_ROOT / "tools"))
    out = tmp_path / "out"
    argv = ["--synthetic", "300", "--output-dir", str(out), "--splits", "0.8,0.1,0.1", "--seed", "2"]
    assert prepare_data.main(argv) == 0
    printed = capsys.readouterr().out
    assert "generated 300 synthetic reviews" in printed
    assert f"{out / 'synthetic_reviews.json'}: 300 rows, 300 kept, skipped: none" in printed
    assert "train: 240 rows (1 star" in printed and "test: 30 rows" in printed
    assert sorted(os.listdir(out)) == sorted(SPLIT_FILES + ("synthetic_reviews.json",))


# --------------------------------------------------------------------------- real data (skipped where absent)

needs_electronics = pytest.mark.skipif(
    not ELECTRONICS_SAMPLE.is_file(), reason=f"real data absent: {ELECTRONICS_SAMPLE} not found"
)
needs_marc = pytest.mark.skipif(not MARC_DEV.is_file(), reason=f"real data absent: {MARC_DEV} not found")


@needs_electronics
def test_real_electronics_sample_counts():
    examples, report = read_reviews(ELECTRONICS_SAMPLE)
    assert (report.rows, report.kept, report.skipped) == (3050, 3050, {})
    assert [Counter(e["label"] for e in examples)[name] for name in STAR_LABELS] == [147, 85, 180, 655, 1983]


@needs_electronics
def test_real_electronics_prepare_with_title(tmp_path):
    stats = prepare_dataset([ELECTRONICS_SAMPLE], tmp_path, splits=(2500, 250, 300), seed=0, with_title=True)
    assert [stats["splits"][name]["count"] for name in ("train", "dev", "test")] == [2500, 250, 300]
    assert sum(sum(split["class_counts"].values()) for split in stats["splits"].values()) == 3050
    assert read_split(tmp_path, "train")[0]["text"]


@needs_marc
def test_real_marc_dev_is_balanced():
    examples, report = read_reviews(MARC_DEV)
    assert report.kept == 5000
    assert Counter(e["label"] for e in examples) == {label: 1000 for label in STAR_LABELS}
