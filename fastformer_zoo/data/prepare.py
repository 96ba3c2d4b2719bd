"""Sampling fixed train/dev/test JSON-lines splits, ``label.txt`` and ``stats.json`` from raw files, reproducibly.

No paddle here: numpy's generator draws the sample.

Duplicate texts are kept out of two splits by the rule of :mod:`.duplicates`.
"""
import json
import math
import numbers
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from paddlenlp_fastformer.file_utils import write_text_atomically

from ..directories import check_output_directory, write_directory_atomically
from ..errors import UserError
from .duplicates import (
    drop_shared_texts, keep_copies_together, log_duplicates, refuse_repeated_inputs, text_keys, texts_in_several_splits,
)  # fmt: skip
from .labels import LABEL_FILE, STAR_LABELS, STATS_FILE, label_file_text, natural_order, read_label_file
from .readers import SPLIT_NAMES, Example, FieldChoice, PathLike, ReadReport, iter_reviews

__all__ = ["prepare_dataset", "format_summary", "jsonl", "STATS_FILE"]


def _are_counts(splits: Sequence) -> bool:
    return all(isinstance(size, numbers.Integral) for size in splits)


def _check_splits(splits: Sequence, zeros_keep_files: bool = False) -> None:
    """``zeros_keep_files``: a 0 means a whole split file (keep_splits), so 0,0,0 asks for all three."""
    if len(splits) != len(SPLIT_NAMES):
        raise UserError(f"got {len(splits)} split sizes; expected three (train, dev, test)")
    if any(not math.isfinite(size) or size < 0 for size in splits):
        raise UserError(f"got split sizes {list(splits)}; expected no negative size")
    if _are_counts(splits) and not any(splits) and not zeros_keep_files:
        raise UserError(f"got split sizes {list(splits)}; expected at least one split with rows")


def _pooled_split_sizes(splits: Sequence, num_samples: Optional[int], available: int) -> List[int]:
    """Counts per split for the pooled mode, from counts or fractions of ``num_samples``."""
    _check_splits(splits)
    if _are_counts(splits):
        sizes = [int(size) for size in splits]
        if num_samples and num_samples != sum(sizes):
            expected = f"expected them to sum to num_samples={num_samples}"
            raise UserError(f"split sizes {sizes} sum to {sum(sizes)}; {expected}")
    else:
        if not math.isclose(sum(splits), 1.0):
            raise UserError(f"split fractions {list(splits)} sum to {sum(splits):g}; expected 1")
        total = num_samples or available
        # Rounded before flooring, as 0.29 * 100 is 28.999999999999996 in floating point.
        dev, test = (math.floor(round(fraction * total, 6)) for fraction in splits[1:])
        # Rounding down dev and test gives the remainder to train.
        sizes = [total - dev - test, dev, test]
    if sum(sizes) > available:
        raise UserError(f"asked for {sum(sizes)} rows; the inputs hold only {available} valid rows")
    return sizes


def _kept_split_sizes(splits: Sequence, num_samples: Optional[int], available: Sequence[int]) -> List[int]:
    """Counts per split for keep_splits mode: 0 or more than a file holds means all of it."""
    _check_splits(splits, zeros_keep_files=True)
    if not _are_counts(splits):
        raise UserError(f"got split sizes {list(splits)}; keep_splits expects counts (0 = all rows)")
    if num_samples:
        raise UserError("num_samples is not used with keep_splits; give the size of each split in splits")
    return [int(size) if 0 < size < rows else rows for size, rows in zip(splits, available)]


def _gather(paths: Sequence[PathLike], counts: Sequence[int], draws: np.ndarray, options: dict) -> List[Example]:
    """The examples at positions ``draws`` of the pooled valid rows of ``paths``, in draw order.

    This is a second pass over the inputs: keeping only the drawn rows instead
    of all of them lets the full 1.7M-review Electronics file be sampled
    without holding it in memory.
    """
    chosen: List[Optional[Example]] = [None] * len(draws)
    offsets = np.cumsum([0, *counts])
    for file_index, path in enumerate(paths):
        start, end = offsets[file_index], offsets[file_index + 1]
        wanted = {int(row - start): slot for slot, row in enumerate(draws) if start <= row < end}
        for row, example in enumerate(iter_reviews(path, **options)):
            if row in wanted:
                chosen[wanted[row]] = example
    return chosen


def _pooled_splits(paths, reports, keys, num_samples, splits, rng, options, keep_duplicates):
    """Draw from the valid rows of all inputs together and cut the draw into train, dev and test, the copies of
    a text kept in one split unless ``keep_duplicates``. Returns the splits, the duplicates report, no warning."""
    counts = [report.kept for report in reports]
    sizes = _pooled_split_sizes(splits, num_samples, sum(counts))
    draws = rng.choice(sum(counts), size=sum(sizes), replace=False)
    pooled = np.concatenate(keys)
    distinct, texts = np.unique(pooled, return_inverse=True)
    moved = 0 if keep_duplicates else keep_copies_together(draws, sizes, texts, rng)
    drawn = _gather(paths, counts, draws, options)
    ends = np.cumsum(sizes)
    duplicates = {"policy": "keep" if keep_duplicates else "group", "repeated_rows": len(pooled) - len(distinct),
                  "moved": moved, "dropped": dict.fromkeys(SPLIT_NAMES, 0), "shared": []}  # fmt: skip
    return [drawn[end - size : end] for size, end in zip(sizes, ends)], duplicates, []


def _kept_splits(paths, reports, keys, num_samples, splits, rng, options, keep_duplicates):
    """Use the three inputs as train, dev and test, each sampled down to its size in ``splits`` from its rows
    left once those whose text an earlier input holds are dropped (none with ``keep_duplicates``). Returns the
    splits, the duplicates report and the warnings to log. Two inputs are train and test: see
    :func:`_dev_from_train`."""
    if len(paths) == 2:
        return _dev_from_train(paths, reports, keys, num_samples, splits, rng, options, keep_duplicates)
    kept, duplicates, notes = drop_shared_texts(paths, keys, keep_duplicates)
    sizes = _kept_split_sizes(splits, num_samples, [int(mask.sum()) for mask in kept])
    for path, name, asked, mask, size in zip(paths, SPLIT_NAMES, splits, kept, sizes):
        if size < int(asked) <= len(mask):  # the file had the rows: the drops took them
            notes.append(f"{path} ({name}): {int(asked)} rows asked, {size} left once the rows repeating earlier "
                         f"split files were dropped: the {name} split has {size}")  # fmt: skip
    drawn = []
    for path, report, mask, size in zip(paths, reports, kept, sizes):
        rows = np.flatnonzero(mask)  # all rows when none is dropped: then the draw is that of earlier versions
        drawn.append(_gather([path], [report.kept], rows[rng.choice(len(rows), size=size, replace=False)], options))
    return drawn, duplicates, notes


def _dev_from_train(paths, reports, keys, num_samples, splits, rng, options, keep_duplicates):
    """Train and test files for data that ships without a dev split (IMDB): dev is a draw of ``splits[1]`` rows
    out of the training file, train ``splits[0]`` rows of the rest (0 = all of it), test as :func:`_kept_splits`.

    Dev is drawn among the training rows whose text occurs once there, so that no text is in train and dev
    (unless ``keep_duplicates``, which draws among all rows), and the test is never looked at to choose it.
    """
    _check_splits(splits, zeros_keep_files=True)
    if not _are_counts(splits) or not int(splits[1]) > 0:
        raise UserError(f"got split sizes {list(splits)}; with two inputs (train, test), --keep-splits expects counts "
                        "with a dev size above 0, drawn out of the training file, e.g. 0,2000,0")  # fmt: skip
    kept, duplicates, notes = drop_shared_texts(paths, keys, keep_duplicates, names=(SPLIT_NAMES[0], SPLIT_NAMES[2]))
    duplicates["dropped"] = {name: duplicates["dropped"].get(name, 0) for name in SPLIT_NAMES}
    train_keys = keys[0]
    _, first, counts = np.unique(train_keys, return_index=True, return_counts=True)
    candidates = np.arange(len(train_keys)) if keep_duplicates else np.sort(first[counts == 1])
    dev_size = int(splits[1])
    if dev_size >= len(candidates):
        raise UserError(f"a dev split of {dev_size} rows needs more than the {len(candidates)} training rows with a text "
                        "of their own; expected a smaller dev size in --splits", paths[0])  # fmt: skip
    dev = np.sort(rng.choice(candidates, size=dev_size, replace=False))
    rest = np.setdiff1d(np.arange(len(train_keys)), dev)
    train_size, _, test_size = _kept_split_sizes(splits, num_samples, [len(rest), dev_size, int(kept[1].sum())])
    train = rest[rng.choice(len(rest), size=train_size, replace=False)]
    test_rows = np.flatnonzero(kept[1])
    test = test_rows[rng.choice(len(test_rows), size=test_size, replace=False)]
    train_path, test_path = paths
    drawn = [_gather([train_path], [reports[0].kept], train, options), _gather([train_path], [reports[0].kept], dev, options),
             _gather([test_path], [reports[1].kept], test, options)]  # fmt: skip
    return drawn, duplicates, notes


def _word_length_stats(examples: Sequence[Example]) -> Optional[Dict[str, float]]:
    if not examples:
        return None
    words = np.array([len(example["text"].split()) for example in examples])
    return {
        "min": int(words.min()),
        "mean": round(float(words.mean()), 2),
        "median": float(np.median(words)),
        "p95": round(float(np.percentile(words, 95)), 2),
        "max": int(words.max()),
    }


def _split_stats(examples: Sequence[Example], label_names: Sequence[str]) -> dict:
    class_counts = np.bincount([example["label"] for example in examples], minlength=len(label_names))
    return {
        "count": len(examples),
        "class_counts": dict(zip(label_names, class_counts.tolist())),
        "words": _word_length_stats(examples),
    }


def jsonl(examples: Iterable[Example]) -> str:
    return "".join(json.dumps(example, ensure_ascii=False, sort_keys=True) + "\n" for example in examples)


def _plain_number(value):
    """A JSON-friendly int or float (numpy scalars are not JSON serializable)."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def prepare_dataset(
    inputs: Sequence[PathLike],
    output_dir: PathLike,
    num_samples: Optional[int] = None,
    splits: Sequence[Union[int, float]] = (40000, 5000, 5000),
    seed: int = 42,
    with_title: bool = False,
    keep_splits: bool = False,
    fields: FieldChoice = FieldChoice(),
    label_file: Optional[PathLike] = None,
    overwrite: bool = False,
    extra_files: Optional[Mapping[str, PathLike]] = None,
    keep_duplicates: bool = False,
) -> dict:
    """Write ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``, ``label.txt`` and ``stats.json`` to ``output_dir``.

    Default (pooled) mode: the valid rows of all inputs are pooled and a
    sample is drawn without replacement with ``numpy.random.default_rng(seed)``,
    keeping the natural class distribution (no balancing), then cut into
    train, dev and test. ``splits`` are either counts (their sum is the sample
    size; ``num_samples``, if given, must equal it) or fractions summing to 1
    of ``num_samples`` rows (all valid rows when ``num_samples`` is None or 0;
    rounding leftovers go to train).

    ``keep_splits=True``: ``inputs`` are three files, the official
    train, dev and test splits (e.g. MARC); each stays its split, sampled down
    to its count in ``splits`` (0, or more than the file holds, keeps all of it).
    Two files are train and test (e.g. IMDB): dev is drawn out of train (:func:`_dev_from_train`).

    No text is in two splits unless ``keep_duplicates``: pooled, a text's copies share one split; with
    ``keep_splits``, dev and test lose the rows an earlier input holds, with a warning (the rule: :mod:`.duplicates`).

    The label set (``label.txt``, line ``i`` naming class id ``i``) is ``label_file``'s, which fixes
    names and order; else the five star names for star ratings; else the labels found, in natural
    order: in all inputs (pooled mode) or in the training input (``keep_splits``). A label outside
    the set is an error naming its file and line. ``fields`` names the inputs' text, label (or
    rating) and title fields where the defaults do not find them (see :func:`.readers.iter_reviews`).

    Each line of a split is ``{"label": class id, "text": str}`` (sorted keys, UTF-8).
    The folder is written as one unit (:func:`..directories.write_directory_atomically`):
    a crash leaves the previous dataset or the new one, never a mix, and an
    existing dataset is replaced only with ``overwrite``. ``extra_files``
    (name -> path) are copied into it, e.g. generated inputs; the stats name
    such an input by its place in the folder. The same inputs, arguments and
    seed give byte-identical files.

    Returns:
        dict: the content of stats.json: the arguments, one read report per
        input, per split its count, class counts and text length in words,
        and the duplicates report.

    Raises:
        UserError: unreadable input, an existing dataset without ``overwrite``,
            no usable row at all, a label outside the label set, fewer than two
            labels, splits that the inputs cannot fill, a pooled input given twice,
            or a dev or test file whose rows all repeat earlier files.
    """
    check_output_directory(output_dir, overwrite, "dataset", LABEL_FILE, inputs)  # a corpus or pairs folder has a stats.json too
    paths = [str(path) for path in inputs]
    options = dict(with_title=with_title, fields=fields)
    if keep_splits and len(paths) not in (2, 3):
        raise UserError(f"got {len(paths)} inputs; keep_splits expects three (train, dev, test) or two (train, test)")
    if not keep_splits:
        refuse_repeated_inputs(paths)
    reports, label_names, keys = _count_rows(paths, keep_splits, label_file, options)
    make_splits, rng = (_kept_splits if keep_splits else _pooled_splits), np.random.default_rng(seed)
    drawn, duplicates, notes = make_splits(paths, reports, keys, num_samples, splits, rng, options, keep_duplicates)
    class_ids = {name: index for index, name in enumerate(label_names)}
    split_examples = [[{"label": class_ids[e["label"]], "text": e["text"]} for e in split] for split in drawn]
    duplicates["texts_in_several_splits"] = texts_in_several_splits([text_keys(e["text"] for e in split) for split in drawn])

    extra_files = {name: Path(path) for name, path in (extra_files or {}).items()}
    arguments = dict(num_samples=num_samples, splits=[_plain_number(size) for size in splits], seed=seed,
                     keep_splits=keep_splits, keep_duplicates=keep_duplicates, with_title=with_title,
                     label_file=None if label_file is None else str(label_file),
                     fields={key: value for key, value in asdict(fields).items() if value is not None})  # fmt: skip
    stats = _stats(paths, reports, label_names, split_examples, arguments, _placed(extra_files, output_dir))
    stats["duplicates"] = duplicates
    _write_dataset(Path(output_dir), split_examples, stats, extra_files, overwrite)
    log_duplicates(notes, duplicates)
    return stats


def _placed(extra_files: Mapping[str, Path], output_dir: PathLike) -> Dict[str, str]:
    """Where each extra file lands in the dataset folder, keyed by its path now."""
    return {str(path): str(Path(output_dir) / name) for name, path in extra_files.items()}


def _stats(paths, reports, label_names, split_examples, arguments: dict, placed: Mapping[str, str]) -> dict:
    """The content of stats.json; an input copied into the dataset is named by its place there."""
    for report in reports:
        report.path = placed.get(report.path, report.path)
    return {
        "arguments": {"inputs": [placed.get(path, path) for path in paths], **arguments},
        "inputs": [asdict(report) for report in reports],
        "label_names": label_names,
        "splits": {name: _split_stats(examples, label_names) for name, examples in zip(SPLIT_NAMES, split_examples)},
    }


def _count_rows(paths: List[str], keep_splits: bool, label_file, options: dict):
    """First pass over the inputs (see _gather for why there are two): each one's report, the label set, and
    the :func:`text_keys` of each one's valid rows.

    The label set is fixed before the inputs it governs are read, so that a label outside it is
    reported with its file and line: ``label_file`` before all, the training input before dev and test.
    """
    reports = [ReadReport(path) for path in paths]
    names = read_label_file(label_file) if label_file is not None else None
    source = f"the label file {label_file}"
    keys = []
    for position, (path, report) in enumerate(zip(paths, reports)):
        if names is None and keep_splits and position == 1:
            names, source = _labels_found(reports[:1]), f"the labels of the training input {paths[0]}"
        examples = iter_reviews(path, report=report, labels=names, labels_from=source, **options)
        keys.append(text_keys(example["text"] for example in examples))
    if not any(report.kept for report in reports):
        raise UserError("no usable row in the input(s): " + "; ".join(report.summary() for report in reports))
    names = names if names is not None else _labels_found(reports)
    if len(names) < 2:
        raise UserError(f"the inputs hold a single label, {names[0]!r}; a classifier needs at least two classes")
    return reports, names, keys


def _labels_found(reports: Sequence[ReadReport]) -> List[str]:
    """The five star names for star ratings, else the labels the inputs hold, in natural order."""
    kinds = {report.star_ratings for report in reports if report.kept}
    if kinds == {True, False}:
        raise UserError("the inputs mix star ratings and other labels; expected one kind of label field in all of them")
    if kinds == {True}:
        return list(STAR_LABELS)
    return natural_order(label for report in reports for label in report.label_counts)


def _write_dataset(
    output_dir: Path, split_examples: List[List[Example]], stats: dict, extra_files: Mapping[str, Path], overwrite: bool
) -> None:
    def write(staging: str) -> None:
        for name, examples in zip(SPLIT_NAMES, split_examples):
            write_text_atomically(Path(staging, f"{name}.jsonl"), jsonl(examples))
        write_text_atomically(Path(staging, LABEL_FILE), label_file_text(stats["label_names"]))
        write_text_atomically(Path(staging, STATS_FILE), json.dumps(stats, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        for name, path in extra_files.items():
            shutil.copyfile(path, Path(staging, name))

    write_directory_atomically(write, str(output_dir), overwrite=overwrite)


def dataset_files_beside(split_path: PathLike) -> List[Path]:
    """The files of a split's dataset folder that reading the split reads too (the label names): an output
    written over them would change what the split means."""
    folder = Path(split_path).parent
    return [folder / LABEL_FILE, folder / STATS_FILE]


def format_summary(stats: dict) -> str:
    """Human-readable summary of :func:`prepare_dataset`'s stats: inputs, skipped rows, split sizes."""
    lines = []
    for report in stats["inputs"]:
        lines.append(ReadReport(**report).summary())
        lines.extend(f"  skipped row at {location}" for location in report["first_skipped"])
    for name, split in stats["splits"].items():
        classes = ", ".join(f"{label} {count}" for label, count in split["class_counts"].items())
        lines.append(f"{name}: {split['count']} rows ({classes})")
    return "\n".join(lines)

