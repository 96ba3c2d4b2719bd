"""Duplicate texts across train/dev/test (tools/prepare_data.py, tools/prepare_pairs.py) and a corpus that
would read its own output (tools/prepare_corpus.py).

The rule these tests pin is in the docstring of fastformer_zoo/data/prepare.py: pooled inputs keep all
copies of a text in one split; the user's own split files lose, from dev and test, the rows whose text an
earlier file holds, with a warning; --keep-duplicates keeps rows as drawn or given.
"""
import gzip
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, SHARED_DATA, assert_one_line_error, run_main
from fastformer_zoo.data.labels import STAR_LABELS
from fastformer_zoo.data.pairs import prepare_pairs, read_pairs
from fastformer_zoo.data.prepare import prepare_dataset
from fastformer_zoo.data.readers import SPLIT_NAMES, read_prepared, without_line_break_tags
from fastformer_zoo.errors import UserError

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import prepare_corpus  # noqa: E402
import prepare_data  # noqa: E402
import prepare_pairs as prepare_pairs_tool  # noqa: E402

QUICKSTART_INPUTS = [
    SHARED_DATA / "amazon_electronics_sample" / "Electronics_sample.json.gz",
    SHARED_DATA / "electronics_extra" / "mcauley2018_electronics5_extra.json.gz",
    SHARED_DATA / "electronics_extra" / "acr_us_electronics_sample.json.gz",
]


def write_reviews(path, texts, summary="Title"):
    """A McAuley file: one row per text, ratings cycling through 1..5."""
    rows = [{"overall": float(i % 5 + 1), "reviewText": text, "summary": summary} for i, text in enumerate(texts)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def split_texts(folder):
    return {name: [e["text"] for e in read_prepared(folder / f"{name}.jsonl", len(STAR_LABELS))] for name in SPLIT_NAMES}


def shared_between_splits(texts_by_split):
    seen = Counter(text for texts in texts_by_split.values() for text in set(texts))
    return {text for text, splits in seen.items() if splits > 1}


@pytest.fixture
def logged():
    """The records the data preparation logs, whatever the handlers of the package's logger (a tool run in this
    process turns its propagation off)."""
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("fastformer_zoo.data.duplicates")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def warnings_in(records):
    return [record.getMessage() for record in records if record.levelno == logging.WARNING]


# --------------------------------------------------------------------------- pooled inputs


# 60 distinct texts, "Good" 8 times (2 of them with outer spaces, which the reader strips), "Works great" 4
# times, and "good" 3 times, a text of its own: 12 rows repeat an earlier row's text.
POOLED_TEXTS = [f"review number {i}" for i in range(60)] + [" Good ", "Good"] * 2 + ["Good"] * 4 + ["Works great"] * 4
POOLED_TEXTS += ["good"] * 3


def test_pooled_copies_of_a_text_land_in_one_split_and_every_row_stays(tmp_path, logged):
    raw = write_reviews(tmp_path / "raw.json", POOLED_TEXTS)
    stats = prepare_dataset([raw], tmp_path / "out", splits=(50, 12, 13), seed=0)
    texts = split_texts(tmp_path / "out")
    assert {name: len(split) for name, split in texts.items()} == {"train": 50, "dev": 12, "test": 13}
    assert shared_between_splits(texts) == set()
    assert Counter(text for split in texts.values() for text in split) == Counter(text.strip() for text in POOLED_TEXTS)
    duplicates = stats["duplicates"]
    assert duplicates["moved"] > 0  # with this seed the plain draw spreads copies over several splits
    assert duplicates == {"policy": "group", "repeated_rows": 12, "moved": duplicates["moved"], "shared": [],
                          "dropped": {"train": 0, "dev": 0, "test": 0}, "texts_in_several_splits": 0}  # fmt: skip
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["duplicates"] == duplicates
    (line,) = [record.getMessage() for record in logged]
    assert "12 row(s) of the inputs repeat an earlier row's text" in line
    assert "kept in one split" in line and "0 text(s) in more than one split" in line


def test_pooled_keep_duplicates_draws_rows_alone(tmp_path):
    raw = write_reviews(tmp_path / "raw.json", POOLED_TEXTS)
    stats = prepare_dataset([raw], tmp_path / "out", splits=(50, 12, 13), seed=0, keep_duplicates=True)
    texts = split_texts(tmp_path / "out")
    assert {"Good", "Works great"} & shared_between_splits(texts)
    assert stats["duplicates"]["policy"] == "keep" and stats["duplicates"]["moved"] == 0
    assert stats["duplicates"]["texts_in_several_splits"] == len(shared_between_splits(texts))
    assert stats["arguments"]["keep_duplicates"] is True


@pytest.mark.parametrize("keep_splits", [False, True], ids=["pooled", "keep_splits"])
def test_without_a_text_in_two_splits_the_draw_is_that_of_earlier_versions(tmp_path, keep_splits):
    """Same bytes as with --keep-duplicates (the behaviour of earlier versions) where no text is in two splits."""
    if keep_splits:  # train repeats a text of its own, which only the other files would make a duplicate
        inputs = [write_reviews(tmp_path / f"{name}.json", [f"{name} {i}" for i in range(30)] + [name] * 3) for name in SPLIT_NAMES]
        options = dict(splits=(20, 10, 0), keep_splits=True)
    else:
        inputs = [write_reviews(tmp_path / "raw.json", [f"text {i}" for i in range(80)])]
        options = dict(splits=(50, 10, 10))
    prepare_dataset(inputs, tmp_path / "grouped", seed=3, **options)
    prepare_dataset(inputs, tmp_path / "kept", seed=3, keep_duplicates=True, **options)
    for name in SPLIT_NAMES:
        assert (tmp_path / "grouped" / f"{name}.jsonl").read_bytes() == (tmp_path / "kept" / f"{name}.jsonl").read_bytes()


def test_copies_are_the_same_characters_after_the_readers_strip_with_the_title_if_prepended(tmp_path):
    raw = tmp_path / "raw.json"
    rows = [("Nice", "One"), ("  Nice\n", "Two"), ("nice", "One"), ("Nice  one", "One")] + [(f"text {i}", "T") for i in range(20)]
    raw.write_text("".join(json.dumps({"overall": 5.0, "reviewText": t, "summary": s}) + "\n" for t, s in rows))
    plain = prepare_dataset([raw], tmp_path / "plain", splits=(20, 2, 2), seed=0)
    titled = prepare_dataset([raw], tmp_path / "titled", splits=(20, 2, 2), seed=0, with_title=True)
    assert plain["duplicates"]["repeated_rows"] == 1  # "Nice" twice; case and inner spacing count
    assert titled["duplicates"]["repeated_rows"] == 0  # "One. Nice" and "Two. Nice" are two texts


def test_a_pooled_input_given_twice_is_refused(tmp_path):
    raw = write_reviews(tmp_path / "raw.json", [f"text {i}" for i in range(20)])
    (tmp_path / "link.json").symlink_to(raw)
    with pytest.raises(UserError, match=f"^{tmp_path / 'link.json'}: is given twice as an input \\(also as {raw}\\)"):
        prepare_dataset([raw, tmp_path / "link.json"], tmp_path / "out", splits=(30, 5, 5))
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the user's own split files


def official_splits(tmp_path):
    """train shares 2 texts with dev and 2 with test (one with outer spaces), dev shares 1 with test."""
    train = write_reviews(tmp_path / "train.json", [f"train {i}" for i in range(30)])
    dev = write_reviews(tmp_path / "dev.json", [f"dev {i}" for i in range(10)] + ["train 1", "train 2"])
    test = write_reviews(tmp_path / "test.json", [f"test {i}" for i in range(10)] + ["train 3", "  train 4 ", "dev 0"])
    return [train, dev, test]


def test_keep_splits_drops_from_dev_and_test_the_texts_of_earlier_files_and_warns(tmp_path, logged):
    train, dev, test = official_splits(tmp_path)
    stats = prepare_dataset([train, dev, test], tmp_path / "out", splits=(30, 0, 0), keep_splits=True)
    texts = split_texts(tmp_path / "out")
    assert {name: len(split) for name, split in texts.items()} == {"train": 30, "dev": 10, "test": 10}
    assert shared_between_splits(texts) == set()
    assert stats["duplicates"]["dropped"] == {"train": 0, "dev": 2, "test": 3}
    assert [(p["split"], p["with_split"], p["rows"]) for p in stats["duplicates"]["shared"]] == [
        ("dev", "train", 2), ("test", "train", 2), ("test", "dev", 1)]  # fmt: skip
    assert warnings_in(logged) == [
        f"{dev} (dev) holds 2 row(s) whose text is in {train} (train): dropped from dev (--keep-duplicates keeps them)",
        f"{test} (test) holds 2 row(s) whose text is in {train} (train): dropped from test (--keep-duplicates keeps them)",
        f"{test} (test) holds 1 row(s) whose text is in {dev} (dev): dropped from test (--keep-duplicates keeps them)",
    ]
    assert "dropped 2 dev and 3 test row(s)" in logged[-1].getMessage()


def test_keep_splits_with_keep_duplicates_warns_and_keeps_every_row(tmp_path, logged):
    files = official_splits(tmp_path)
    stats = prepare_dataset(files, tmp_path / "out", splits=(30, 0, 0), keep_splits=True, keep_duplicates=True)
    texts = split_texts(tmp_path / "out")
    assert {name: len(split) for name, split in texts.items()} == {"train": 30, "dev": 12, "test": 13}
    assert stats["duplicates"]["dropped"] == {"train": 0, "dev": 0, "test": 0}
    assert stats["duplicates"]["texts_in_several_splits"] == 5
    warnings = warnings_in(logged)
    assert len(warnings) == 3 and all(line.endswith("kept, as --keep-duplicates asks") for line in warnings)


def test_keep_splits_asked_sizes_are_drawn_from_the_rows_left(tmp_path, logged):
    files = official_splits(tmp_path)
    stats = prepare_dataset(files, tmp_path / "out", splits=(30, 10, 99), keep_splits=True)
    assert [stats["splits"][name]["count"] for name in SPLIT_NAMES] == [30, 10, 10]
    assert not [w for w in warnings_in(logged) if "rows asked" in w]  # 99 is more than the file: all of it, as documented
    stats = prepare_dataset(files, tmp_path / "again", splits=(30, 12, 0), keep_splits=True)
    assert stats["splits"]["dev"]["count"] == 10
    assert [w for w in warnings_in(logged) if "rows asked" in w] == [
        f"{files[1]} (dev): 12 rows asked, 10 left once the rows repeating earlier split files were dropped: the dev split has 10"
    ]


def test_the_same_file_as_train_and_dev_is_warned_about_and_kept_whole(tmp_path, logged):
    train, _, test = official_splits(tmp_path)
    stats = prepare_dataset([train, train, test], tmp_path / "out", splits=(30, 0, 0), keep_splits=True)
    texts = split_texts(tmp_path / "out")
    assert sorted(texts["dev"]) == sorted(texts["train"])
    assert stats["duplicates"]["dropped"] == {"train": 0, "dev": 0, "test": 2}
    assert warnings_in(logged)[0] == (f"{train} is both the train and the dev file: dev holds only texts of train (kept "
                                      "whole, as given); expected separate files for a fair dev score")  # fmt: skip
    assert len(warnings_in(logged)) == 2  # and test against train, once: dev is the same file


def test_a_dev_file_holding_only_training_texts_is_an_error(tmp_path):
    train = write_reviews(tmp_path / "train.json", [f"train {i}" for i in range(30)])
    dev = write_reviews(tmp_path / "dev.json", [f"train {i}" for i in range(5)])
    test = write_reviews(tmp_path / "test.json", [f"test {i}" for i in range(5)])
    with pytest.raises(UserError, match=f"^{dev}: all 5 of its rows repeat texts of the earlier split file\\(s\\) {train}; "
                                        "expected a dev file with texts of its own, or --keep-duplicates"):  # fmt: skip
        prepare_dataset([train, dev, test], tmp_path / "out", splits=(30, 0, 0), keep_splits=True)
    assert not (tmp_path / "out").exists()


def test_prepare_data_cli_warns_on_stderr_and_takes_keep_duplicates(tmp_path, capsys):
    files = [str(path) for path in official_splits(tmp_path)]
    argv = ["--keep-splits", "--input", *files, "--splits", "30,0,0", "--output-dir", str(tmp_path / "out")]
    code, err = run_main(prepare_data.main, argv, capsys)
    assert code == 0 and "Traceback" not in "\n".join(err)
    assert any(f"WARNING {files[1]} (dev) holds 2 row(s) whose text is in {files[0]} (train)" in line for line in err)
    code, err = run_main(prepare_data.main, [*argv[:-1], str(tmp_path / "kept"), "--keep-duplicates"], capsys)
    assert code == 0 and json.loads((tmp_path / "kept" / "stats.json").read_text())["duplicates"]["policy"] == "keep"


# --------------------------------------------------------------------------- tools/prepare_pairs.py


def write_pairs_file(path, texts):
    path.write_text("".join(json.dumps({"review_body": text, "review_title": f"title of {text.strip()}"}) + "\n" for text in texts))
    return path


def test_pairs_drop_shared_texts_from_dev_and_test_and_warn(tmp_path, logged):
    train = write_pairs_file(tmp_path / "train.jsonl", [f"review {i}" for i in range(20)])
    dev = write_pairs_file(tmp_path / "dev.jsonl", [f"dev review {i}" for i in range(5)] + [" review 3 "])
    test = write_pairs_file(tmp_path / "test.jsonl", [f"test review {i}" for i in range(5)] + ["review 4", "dev review 0"])
    stats = prepare_pairs([train, dev, test], tmp_path / "pairs", (0, 0, 0))
    counts = {name: len(read_pairs(tmp_path / "pairs" / f"{name}.jsonl", name)) for name in SPLIT_NAMES}
    assert counts == {"train": 20, "dev": 5, "test": 5}
    assert stats["duplicates"]["dropped"] == {"train": 0, "dev": 1, "test": 2}
    assert stats["duplicates"]["texts_in_several_splits"] == 0
    assert warnings_in(logged)[0] == (f"{dev} (dev) holds 1 row(s) whose text is in {train} (train): dropped from dev "
                                      "(--keep-duplicates keeps them)")


def test_pairs_cli_same_file_twice_is_warned_and_keep_duplicates_keeps(tmp_path, capsys):
    train = write_pairs_file(tmp_path / "train.jsonl", [f"review {i}" for i in range(20)])
    test = write_pairs_file(tmp_path / "test.jsonl", [f"test review {i}" for i in range(5)] + ["review 4"])
    argv = ["--input", str(train), str(train), str(test), "--output-dir", str(tmp_path / "p")]
    code, err = run_main(prepare_pairs_tool.main, argv, capsys)
    assert code == 0
    assert any(f"{train} is both the train and the dev file" in line for line in err)
    assert json.loads((tmp_path / "p" / "stats.json").read_text())["splits"]["dev"]["count"] == 20
    code, err = run_main(prepare_pairs_tool.main, [*argv[:-1], str(tmp_path / "q"), "--keep-duplicates"], capsys)
    assert code == 0 and json.loads((tmp_path / "q" / "stats.json").read_text())["splits"]["test"]["count"] == 6


# --------------------------------------------------------------------------- tools/prepare_corpus.py


@pytest.fixture
def corpus(tmp_path, capsys):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps({"text": f"corpus text number {i}"}) + "\n" for i in range(30)))
    out = tmp_path / "corpus"
    assert run_main(prepare_corpus.main, ["--input", str(raw), "--output-dir", str(out), "--dev-size", "5"], capsys)[0] == 0
    return raw, out


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["", "overwrite"])
def test_prepare_corpus_refuses_its_own_output_as_input(tmp_path, corpus, capsys, overwrite):
    raw, out = corpus
    before = (out / "train.jsonl").read_bytes()
    argv = ["--input", str(out / "train.jsonl"), "--output-dir", str(out), "--dev-size", "5", *overwrite]
    assert_one_line_error(run_main(prepare_corpus.main, argv, capsys), f"the --input file {out / 'train.jsonl'} lies inside it")
    os.link(out / "train.jsonl", tmp_path / "linked.jsonl")
    argv = ["--input", str(tmp_path / "linked.jsonl"), "--output-dir", str(out), "--dev-size", "5", *overwrite]
    result = run_main(prepare_corpus.main, argv, capsys)
    assert_one_line_error(result, f"the --input file {tmp_path / 'linked.jsonl'} is its train.jsonl under another name (a hard link)")
    argv = ["--input", str(raw), "--exclude", str(out / "dev.jsonl"), "--output-dir", str(out), "--dev-size", "5", *overwrite]
    assert_one_line_error(run_main(prepare_corpus.main, argv, capsys), f"the --exclude file {out / 'dev.jsonl'} lies inside it")
    assert (out / "train.jsonl").read_bytes() == before


# --------------------------------------------------------------------------- real data (skipped where absent)


@pytest.mark.skipif(not all(path.is_file() for path in QUICKSTART_INPUTS),
                    reason=f"real data absent: {SHARED_DATA} lacks the quickstart's three Electronics files")
def test_real_quickstart_reviews_keep_every_row_and_no_text_in_two_splits(tmp_path):
    stats = prepare_dataset(QUICKSTART_INPUTS, tmp_path / "out", splits=(4279, 1000, 1000), seed=42)
    texts = split_texts(tmp_path / "out")
    assert {name: len(split) for name, split in texts.items()} == {"train": 4279, "dev": 1000, "test": 1000}
    assert shared_between_splits(texts) == set()
    assert stats["duplicates"]["repeated_rows"] == 103  # short stock reviews ("Good", "Works great") of the sample
    rows = [json.loads(line) for path in QUICKSTART_INPUTS for line in gzip.open(path, "rt", encoding="utf-8")]
    assert Counter(text for split in texts.values() for text in split) == Counter(without_line_break_tags(row["reviewText"]).strip() for row in rows)


def test_a_corpus_does_not_replace_a_dataset_folder(tmp_path):
    """A dataset folder has a stats.json too: --overwrite for a corpus must not delete its test split and labels."""
    from fastformer_zoo.data.corpus import prepare_corpus
    from fastformer_zoo.errors import UserError

    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "label.txt", "stats.json"):
        (dataset / name).write_text("{}\n")
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(f'{{"text": "review number {i}"}}\n' for i in range(20)))
    with pytest.raises(UserError, match="holds label.txt, test.jsonl, which no corpus has"):
        prepare_corpus([str(source)], str(dataset), dev_size=2, overwrite=True)
    assert sorted(path.name for path in dataset.iterdir()) == ["dev.jsonl", "label.txt", "stats.json", "test.jsonl", "train.jsonl"]
