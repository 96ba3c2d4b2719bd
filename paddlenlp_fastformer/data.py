"""Review data for Fastformer text classification.

Four parts:

* readers that turn raw Amazon review files (McAuley or MARC JSON lines, CSV,
  TSV; gzip or plain) into examples ``{"text": str, "label": int}`` with
  ``label = stars - 1``, skipping unusable rows and counting them per reason;
* :func:`prepare_dataset`, which samples fixed train/dev/test JSON-lines files
  from such inputs, reproducibly, plus ``stats.json``;
* synthetic reviews for machines without the real data;
* the training side: :class:`ReviewDataset`, :class:`LengthBucketBatchSampler`,
  :func:`make_collator` and :func:`make_dataloader`.
"""

import csv
import gzip
import json
import math
import numbers
import os
import zlib
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
from paddlenlp.data import DataCollatorWithPadding

from .file_utils import write_text_atomically

__all__ = [
    "LABEL_NAMES",
    "NUM_CLASSES",
    "SPLIT_NAMES",
    "TEXT_COLUMN_CANDIDATES",
    "RATING_COLUMN_CANDIDATES",
    "TITLE_COLUMN_CANDIDATES",
    "DataError",
    "ReadReport",
    "iter_reviews",
    "read_reviews",
    "read_prepared",
    "prepare_dataset",
    "format_summary",
    "generate_synthetic_reviews",
    "write_synthetic_reviews",
    "default_data_source",
    "ReviewDataset",
    "LengthBucketBatchSampler",
    "make_collator",
    "make_dataloader",
]

LABEL_NAMES = ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")
NUM_CLASSES = len(LABEL_NAMES)
SPLIT_NAMES = ("train", "dev", "test")

Example = Dict[str, Union[str, int]]
PathLike = Union[str, os.PathLike]

# How many skipped-row locations a ReadReport keeps: enough to find the
# offending rows, few enough to print.
MAX_REPORTED_LOCATIONS = 5
_GZIP_MAGIC = b"\x1f\x8b"

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_ELECTRONICS_SAMPLE = Path("amazon_electronics_sample", "Electronics_sample.json.gz")


class DataError(ValueError):
    """An input file or a sampling request that cannot be used.

    The message is one line, ``file:line: what was expected``, with the parts
    that are known.
    """

    def __init__(self, message: str, path: Optional[PathLike] = None, line: Optional[int] = None):
        location = "" if path is None else str(path) if line is None else f"{path}:{line}"
        super().__init__(f"{location}: {message}" if location else message)
        self.path = None if path is None else str(path)
        self.line = line


@dataclass
class ReadReport:
    """What reading one input file gave: rows seen, rows kept, rows skipped per reason.

    Skip reasons: ``missing_text``, ``text_not_a_string``, ``empty_text``
    (whitespace only), ``missing_rating``, ``rating_not_a_number``,
    ``rating_not_integral`` (e.g. 4.5), ``rating_out_of_range`` (not 1..5).
    A row is counted under the first check it fails, text before rating.
    """

    path: str
    rows: int = 0
    kept: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)
    first_skipped: List[str] = field(default_factory=list)

    def record_kept(self) -> None:
        self.rows += 1
        self.kept += 1

    def record_skip(self, reason: str, line: int) -> None:
        self.rows += 1
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.first_skipped) < MAX_REPORTED_LOCATIONS:
            self.first_skipped.append(f"{self.path}:{line} ({reason})")

    def summary(self) -> str:
        """One line: rows read, kept, and skipped per reason."""
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
        return f"{self.path}: {self.rows} rows, {self.kept} kept, skipped: {skipped or 'none'}"

    def __str__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------------
# Reading raw review files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fields:
    """Names of the text, rating and title fields of one file."""

    text: str
    rating: str
    title: str


_JSON_SCHEMAS = {
    "McAuley": _Fields(text="reviewText", rating="overall", title="summary"),
    "MARC": _Fields(text="review_body", rating="stars", title="review_title"),
}

TEXT_COLUMN_CANDIDATES = ("text", "reviewText", "review_body", "review")
# No "label": a label column usually holds 0-based classes, not 1..5 stars.
RATING_COLUMN_CANDIDATES = ("rating", "overall", "stars")
TITLE_COLUMN_CANDIDATES = ("title", "summary", "review_title")


class _RawReview(NamedTuple):
    """The three fields of one row, as found in the file (any type, or None)."""

    text: object
    rating: object
    title: object


class _SkipRow(Exception):
    """Raised for a row that is well-formed but gives no labelled example."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _open_bytes(path: PathLike):
    """Open a file for reading bytes, decompressing it if it starts with the gzip magic."""
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        # The magic bytes, not the suffix, decide: "reviews.json.gz" files are
        # sometimes stored already decompressed, and the reverse.
        return gzip.open(path, "rb") if compressed else open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc}); expected a readable review file", path) from None


def _text_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """Yield ``(line number, line)`` of a UTF-8 file, gzip or plain.

    Lines are decoded one by one so that a bad byte is reported with its line.
    """
    with _open_bytes(path) as stream:
        try:
            for number, raw in enumerate(stream, start=1):
                try:
                    # A byte-order mark (common in CSVs saved by spreadsheets) would
                    # otherwise become part of the first column name.
                    yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    message = f"not valid UTF-8 (byte {exc.start} of the line); expected UTF-8 text"
                    raise DataError(message, path, number) from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DataError(f"corrupt gzip data ({exc}); expected a complete gzip file", path) from None


def _json_objects(path: PathLike) -> Iterator[Tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file."""
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg}); expected one JSON object per line", path, number) from None
        if not isinstance(obj, dict):
            raise DataError(f"got a JSON {type(obj).__name__}; expected one JSON object per line", path, number)
        yield number, obj


def _detect_json_schema(obj: dict, path: PathLike, line: int) -> _Fields:
    """The review schema sharing the most field names with ``obj`` (the file's first row)."""
    overlap = {name: len(set(astuple(fields)) & obj.keys()) for name, fields in _JSON_SCHEMAS.items()}
    best = max(overlap, key=overlap.get)
    if overlap[best] == 0:
        expected = " or ".join(f"{name} ({', '.join(astuple(fields))})" for name, fields in _JSON_SCHEMAS.items())
        raise DataError(f"unknown review fields {sorted(obj)}; expected {expected}", path, line)
    return _JSON_SCHEMAS[best]


def _json_reviews(path: PathLike) -> Iterator[Tuple[int, _RawReview]]:
    """Raw reviews of a McAuley or MARC JSON-lines file; the schema is detected on the first row."""
    fields = None
    for number, obj in _json_objects(path):
        fields = fields or _detect_json_schema(obj, path, number)
        yield number, _RawReview(obj.get(fields.text), obj.get(fields.rating), obj.get(fields.title))


def _pick_column(
    header: List[str], requested: Optional[str], candidates: Sequence[str], role: str, path: PathLike
) -> str:
    """The column named ``requested``, or else the first of ``candidates`` in the header."""
    if requested is not None:
        if requested in header:
            return requested
        raise DataError(f"no {role} column {requested!r}; expected one of the columns {header}", path, 1)
    for name in candidates:
        if name in header:
            return name
    expected = f"expected one of {list(candidates)} in the header {header} or an explicit {role} column name"
    raise DataError(f"no {role} column; {expected}", path, 1)


def _delimited_reviews(
    path: PathLike,
    delimiter: str,
    with_title: bool,
    text_column: Optional[str],
    rating_column: Optional[str],
    title_column: Optional[str],
) -> Iterator[Tuple[int, _RawReview]]:
    """Raw reviews of a CSV/TSV file with a header row."""
    reader = csv.DictReader((line for _, line in _text_lines(path)), delimiter=delimiter)
    file_format = "TSV" if delimiter == "\t" else "CSV"
    try:
        header = reader.fieldnames or []
        text = _pick_column(header, text_column, TEXT_COLUMN_CANDIDATES, "text", path)
        rating = _pick_column(header, rating_column, RATING_COLUMN_CANDIDATES, "rating", path)
        title = _pick_column(header, title_column, TITLE_COLUMN_CANDIDATES, "title", path) if with_title else None
        for row in reader:
            yield reader.line_num, _RawReview(row.get(text), row.get(rating), row.get(title) if title else None)
    except csv.Error as exc:
        raise DataError(f"malformed {file_format} ({exc})", path, reader.line_num) from None


def _delimiter_for(path: PathLike) -> Optional[str]:
    """The field delimiter for a .csv/.tsv file (optionally .gz), None for JSON lines."""
    name = Path(path).name.lower()
    name = name[: -len(".gz")] if name.endswith(".gz") else name
    return {".csv": ",", ".tsv": "\t"}.get(Path(name).suffix)


def _review_text(value: object) -> str:
    if value is None:
        raise _SkipRow("missing_text")
    if not isinstance(value, str):
        raise _SkipRow("text_not_a_string")
    if not value.strip():
        raise _SkipRow("empty_text")
    return value.strip()


def _rating_label(value: object) -> int:
    """Class index (stars - 1) of an integral rating in 1..5, given as number or string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _SkipRow("missing_rating")
    # JSON true/false would otherwise pass as the ratings 1 and 0.
    if isinstance(value, bool):
        raise _SkipRow("rating_not_a_number")
    try:
        rating = float(value)
    except (TypeError, ValueError):
        raise _SkipRow("rating_not_a_number") from None
    if not math.isfinite(rating):
        raise _SkipRow("rating_not_a_number")
    if not rating.is_integer():
        raise _SkipRow("rating_not_integral")
    if not 1 <= rating <= NUM_CLASSES:
        raise _SkipRow("rating_out_of_range")
    return int(rating) - 1


def _with_title(title: object, text: str) -> str:
    """``"title. text"``: the title as a first sentence, so the two stay distinguishable.

    No period is added after a title that already ends a sentence ("Great!").
    A missing or blank title leaves the text alone.
    """
    if not isinstance(title, str) or not title.strip():
        return text
    title = title.strip()
    separator = " " if title[-1] in ".!?" else ". "
    return f"{title}{separator}{text}"


def _example(raw: _RawReview, with_title: bool) -> Example:
    # Validity depends on the review body only, so that with_title changes the
    # texts but never which rows are kept.
    text = _review_text(raw.text)
    label = _rating_label(raw.rating)
    return {"text": _with_title(raw.title, text) if with_title else text, "label": label}


def iter_reviews(
    path: PathLike,
    *,
    report: Optional[ReadReport] = None,
    with_title: bool = False,
    text_column: Optional[str] = None,
    rating_column: Optional[str] = None,
    title_column: Optional[str] = None,
) -> Iterator[Example]:
    """Yield the valid examples of one raw review file, updating ``report`` as rows are read.

    The format is chosen per file: ``.csv``/``.tsv`` (also ``.csv.gz``) are
    delimited with a header row, anything else is JSON lines whose schema
    (McAuley ``overall/reviewText/summary`` or MARC
    ``stars/review_body/review_title``) is detected from the first row. Gzip is
    detected from the content. The column arguments apply to CSV/TSV only;
    each defaults to the first present of ``TEXT_COLUMN_CANDIDATES``,
    ``RATING_COLUMN_CANDIDATES``, ``TITLE_COLUMN_CANDIDATES``.

    ``with_title`` prepends the title/summary: ``"title. text"``.

    Raises:
        DataError: the file is missing or unreadable, not UTF-8, holds a line
            that is not a JSON object, or lacks the named columns.
    """
    report = report if report is not None else ReadReport(str(path))
    delimiter = _delimiter_for(path)
    if delimiter is None:
        rows = _json_reviews(path)
    else:
        rows = _delimited_reviews(path, delimiter, with_title, text_column, rating_column, title_column)
    for number, raw in rows:
        try:
            example = _example(raw, with_title)
        except _SkipRow as skip:
            report.record_skip(skip.reason, number)
            continue
        report.record_kept()
        yield example


def read_reviews(path: PathLike, **options) -> Tuple[List[Example], ReadReport]:
    """All valid examples of one raw review file and the report of what was skipped.

    ``options`` are those of :func:`iter_reviews` (without ``report``).
    """
    report = ReadReport(str(path))
    examples = list(iter_reviews(path, report=report, **options))
    return examples, report


def read_prepared(path: PathLike) -> List[Example]:
    """Read a split written by :func:`prepare_dataset` (``{"text", "label"}`` JSON lines).

    Prepared files are this package's own output, so any deviation is an error
    rather than a skipped row.
    """
    examples = []
    for number, obj in _json_objects(path):
        text, label = obj.get("text"), obj.get("label")
        label_ok = isinstance(label, int) and not isinstance(label, bool) and 0 <= label < NUM_CLASSES
        if not isinstance(text, str) or not text.strip() or not label_ok:
            raise DataError(
                f'expected {{"text": non-empty string, "label": integer 0..{NUM_CLASSES - 1}}}', path, number
            )
        examples.append({"text": text, "label": label})
    return examples


# ---------------------------------------------------------------------------
# Preparing train/dev/test splits
# ---------------------------------------------------------------------------


def _are_counts(splits: Sequence) -> bool:
    return all(isinstance(size, numbers.Integral) for size in splits)


def _check_splits(splits: Sequence) -> None:
    if len(splits) != len(SPLIT_NAMES):
        raise DataError(f"got {len(splits)} split sizes; expected three (train, dev, test)")
    if any(size < 0 for size in splits):
        raise DataError(f"got split sizes {list(splits)}; expected no negative size")


def _pooled_split_sizes(splits: Sequence, num_samples: Optional[int], available: int) -> List[int]:
    """Counts per split for the pooled mode, from counts or fractions of ``num_samples``."""
    _check_splits(splits)
    if _are_counts(splits):
        sizes = [int(size) for size in splits]
        if num_samples and num_samples != sum(sizes):
            expected = f"expected them to sum to num_samples={num_samples}"
            raise DataError(f"split sizes {sizes} sum to {sum(sizes)}; {expected}")
    else:
        if not math.isclose(sum(splits), 1.0):
            raise DataError(f"split fractions {list(splits)} sum to {sum(splits):g}; expected 1")
        total = num_samples or available
        # Rounded before flooring, as 0.29 * 100 is 28.999999999999996 in floating point.
        dev, test = (math.floor(round(fraction * total, 6)) for fraction in splits[1:])
        # Rounding down dev and test gives the remainder to train.
        sizes = [total - dev - test, dev, test]
    if sum(sizes) > available:
        raise DataError(f"asked for {sum(sizes)} rows; the inputs hold only {available} valid rows")
    return sizes


def _kept_split_sizes(splits: Sequence, num_samples: Optional[int], available: Sequence[int]) -> List[int]:
    """Counts per split for keep_splits mode: 0 or more than a file holds means all of it."""
    _check_splits(splits)
    if not _are_counts(splits):
        raise DataError(f"got split sizes {list(splits)}; keep_splits expects counts (0 = all rows)")
    if num_samples:
        raise DataError("num_samples is not used with keep_splits; give the size of each split in splits")
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


def _pooled_splits(paths, reports, num_samples, splits, rng, options) -> List[List[Example]]:
    """Draw from the valid rows of all inputs together and cut the draw into train, dev and test."""
    counts = [report.kept for report in reports]
    sizes = _pooled_split_sizes(splits, num_samples, sum(counts))
    drawn = _gather(paths, counts, rng.choice(sum(counts), size=sum(sizes), replace=False), options)
    ends = np.cumsum(sizes)
    return [drawn[end - size : end] for size, end in zip(sizes, ends)]


def _kept_splits(paths, reports, num_samples, splits, rng, options) -> List[List[Example]]:
    """Use the three inputs as train, dev and test, each sampled down to its size in ``splits``."""
    if len(paths) != len(SPLIT_NAMES):
        raise DataError(f"got {len(paths)} inputs; keep_splits expects exactly three: train, dev, test")
    counts = [report.kept for report in reports]
    sizes = _kept_split_sizes(splits, num_samples, counts)
    return [
        _gather([path], [count], rng.choice(count, size=size, replace=False), options)
        for path, count, size in zip(paths, counts, sizes)
    ]


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


def _split_stats(examples: Sequence[Example]) -> dict:
    class_counts = np.bincount([example["label"] for example in examples], minlength=NUM_CLASSES)
    return {
        "count": len(examples),
        "class_counts": dict(zip(LABEL_NAMES, class_counts.tolist())),
        "words": _word_length_stats(examples),
    }


def _jsonl(examples: Iterable[Example]) -> str:
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
    text_column: Optional[str] = None,
    rating_column: Optional[str] = None,
    title_column: Optional[str] = None,
) -> dict:
    """Write ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` and ``stats.json`` to ``output_dir``.

    Default (pooled) mode: the valid rows of all inputs are pooled and a
    sample is drawn without replacement with ``numpy.random.default_rng(seed)``,
    keeping the natural class distribution (no balancing), then cut into
    train, dev and test. ``splits`` are either counts (their sum is the sample
    size; ``num_samples``, if given, must equal it) or fractions summing to 1
    of ``num_samples`` rows (all valid rows when ``num_samples`` is None or 0;
    rounding leftovers go to train).

    ``keep_splits=True``: ``inputs`` are exactly three files, the official
    train, dev and test splits (e.g. MARC); each stays its split, sampled down
    to its count in ``splits`` (0, or more than the file holds, keeps all of it).

    Each line of a split is ``{"label": int, "text": str}`` (sorted keys, UTF-8).
    Files are written atomically, stats.json last. The same inputs, arguments
    and seed give byte-identical files.

    Returns:
        dict: the content of stats.json: the arguments, one read report per
        input, and per split its count, class counts and text length in words.

    Raises:
        DataError: unreadable input, or splits that the inputs cannot fill.
    """
    paths = [str(path) for path in inputs]
    options = dict(
        with_title=with_title, text_column=text_column, rating_column=rating_column, title_column=title_column
    )
    # First pass: count the valid rows of each input (see _gather for why there are two).
    reports = [ReadReport(path) for path in paths]
    for path, report in zip(paths, reports):
        for _ in iter_reviews(path, report=report, **options):
            pass
    make_splits = _kept_splits if keep_splits else _pooled_splits
    split_examples = make_splits(paths, reports, num_samples, splits, np.random.default_rng(seed), options)

    stats = {
        "arguments": {
            "inputs": paths,
            "num_samples": num_samples,
            "splits": [_plain_number(size) for size in splits],
            "seed": seed,
            "keep_splits": keep_splits,
            **options,
        },
        "inputs": [asdict(report) for report in reports],
        "label_names": list(LABEL_NAMES),
        "splits": {name: _split_stats(examples) for name, examples in zip(SPLIT_NAMES, split_examples)},
    }
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, examples in zip(SPLIT_NAMES, split_examples):
        write_text_atomically(output_dir / f"{name}.jsonl", _jsonl(examples))
    # Last, so that a stats.json next to the splits means they are complete.
    write_text_atomically(output_dir / "stats.json", json.dumps(stats, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return stats


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


# ---------------------------------------------------------------------------
# Synthetic fallback data
# ---------------------------------------------------------------------------

# Class counts of the real Electronics sample: a natural, positive-skewed distribution.
_SYNTHETIC_STAR_WEIGHTS = np.array([147, 85, 180, 655, 1983]) / 3050
_PRODUCTS = (
    "headphones", "charger", "keyboard", "mouse", "USB cable", "speaker", "router", "camera",
    "tablet case", "power bank", "monitor", "webcam", "memory card", "HDMI adapter", "remote",
)
_OPENERS = (
    "I bought this {product} last month.",
    "Got the {product} as a gift for my son.",
    "I needed a new {product} for my home office.",
    "Ordered this {product} to replace my old one.",
    "This is my second {product} from this brand.",
)
_NEUTRAL = (
    "Shipping was on time.",
    "I use it every day.",
    "The box was plain.",
    "It comes in black and white.",
    "Setup took a few minutes.",
)
# Phrases per star rating; their vocabulary is what a model can learn from.
_PHRASES = {
    1: ("it stopped working after two days", "complete waste of money", "it arrived broken",
        "I returned it for a refund", "terrible quality", "do not buy this", "worst purchase I have made"),
    2: ("disappointing performance", "it feels cheap and flimsy", "it works only some of the time",
        "not worth the price", "the instructions were useless", "the battery dies quickly"),
    3: ("it is okay for the price", "it does the job but nothing special", "average quality",
        "some features work and others do not", "decent but the sound is weak", "I have mixed feelings about it"),
    4: ("it works well", "good value for the money", "solid build with a minor flaw",
        "I am happy with it overall", "setup was easy", "I would buy it again despite a small issue"),
    5: ("excellent quality", "it works perfectly", "I absolutely love it", "best purchase this year",
        "highly recommended", "it exceeded my expectations"),
}
_SUMMARIES = {
    1: ("Junk", "Avoid", "Broken on arrival", "Total waste"),
    2: ("Disappointed", "Not great", "Cheaply made"),
    3: ("It's okay", "Average", "Does the job"),
    4: ("Good product", "Pretty good", "Works well"),
    5: ("Excellent!", "Love it", "Five stars", "Perfect"),
}
# Chance that a sentiment sentence comes from a neighbouring rating: real
# reviews mix tones, and a perfectly separable task would teach nothing.
_NEIGHBOUR_PHRASE_RATE = 0.25


def _sentiment_sentence(stars: int, rng: np.random.Generator) -> str:
    if rng.random() < _NEIGHBOUR_PHRASE_RATE:
        stars = int(np.clip(stars + rng.choice((-1, 1)), 1, NUM_CLASSES))
    phrase = str(rng.choice(_PHRASES[stars]))
    return phrase[0].upper() + phrase[1:] + "."


def _synthetic_review(stars: int, rng: np.random.Generator) -> dict:
    sentences = [str(rng.choice(_OPENERS)).format(product=rng.choice(_PRODUCTS))]
    sentences += [_sentiment_sentence(stars, rng) for _ in range(rng.integers(1, 5))]
    if rng.random() < 0.5:
        sentences.insert(int(rng.integers(1, len(sentences) + 1)), str(rng.choice(_NEUTRAL)))
    return {"overall": float(stars), "reviewText": " ".join(sentences), "summary": str(rng.choice(_SUMMARIES[stars]))}


def generate_synthetic_reviews(num_samples: int, seed: int = 0) -> List[dict]:
    """Made-up English electronics reviews as McAuley records (``overall``, ``reviewText``, ``summary``).

    Star ratings follow the skew of real Electronics reviews (mostly 5 stars)
    and each rating has its own phrases, so a classifier can learn from them.
    Meant for machines without the real data; say so wherever they are used.
    """
    rng = np.random.default_rng(seed)
    stars = rng.choice(np.arange(1, NUM_CLASSES + 1), size=num_samples, p=_SYNTHETIC_STAR_WEIGHTS)
    return [_synthetic_review(int(rating), rng) for rating in stars]


def write_synthetic_reviews(path: PathLike, num_samples: int, seed: int = 0) -> Path:
    """Write :func:`generate_synthetic_reviews` to ``path`` as McAuley JSON lines, for the ordinary readers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, _jsonl(generate_synthetic_reviews(num_samples, seed)))
    return path


def default_data_source() -> Optional[Path]:
    """The real Electronics sample at ``<project root>/../shared/data``, or None where it is absent.

    Callers that get None should fall back to synthetic data and log that they did.
    """
    path = _PROJECT_ROOT.parent / "shared" / "data" / _ELECTRONICS_SAMPLE
    return path if path.is_file() else None


# ---------------------------------------------------------------------------
# Training side
# ---------------------------------------------------------------------------


def _encode(tokenizer, texts: List[str], max_seq_len: int) -> List[List[int]]:
    """Token ids of ``texts``, truncated, unpadded, without masks (the collator makes those)."""
    encoded = tokenizer(
        texts,
        max_length=max_seq_len,
        truncation=True,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return list(encoded["input_ids"])


class ReviewDataset(paddle.io.Dataset):
    """Examples tokenized once, up front, truncated to ``max_seq_len`` and not padded.

    Items are ``{"input_ids": list[int], "label": int}``; :func:`make_collator`
    pads them per batch. ``lengths`` (token counts) feed the bucketing sampler.
    """

    def __init__(self, examples: Sequence[Example], tokenizer, max_seq_len: int = 256):
        super().__init__()
        self.tokenizer = tokenizer
        texts = [example["text"] for example in examples]
        # PaddleNLP tokenizers reject an empty batch, but an empty split is legitimate.
        self.input_ids: List[List[int]] = _encode(tokenizer, texts, max_seq_len) if texts else []
        self.labels = [int(example["label"]) for example in examples]
        self.lengths = np.array([len(ids) for ids in self.input_ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.input_ids[index], "label": self.labels[index]}


class LengthBucketBatchSampler(paddle.io.DistributedBatchSampler):
    """Batches of similar length, for little padding, optionally split across data-parallel ranks.

    The sampler cuts *global* batches of ``batch_size * num_replicas`` examples and rank ``r`` takes
    the ``r``-th slice of ``batch_size`` of each, so N processes with batch B step through exactly
    the batches of one process with batch N*B (and average the same gradients).

    Training (``shuffle=True``): each epoch the indices are shuffled with
    ``numpy.random.default_rng([seed, epoch])``, cut into pools of
    ``pool_factor`` global batches, each pool sorted by length and cut into
    global batches, and the batch order shuffled. So that all ranks run the same
    number of steps with full slices, the shuffled indices are cut (``drop_last``)
    or, with several ranks, wrapped around (a few examples seen twice, as in
    paddle's DistributedBatchSampler) to a multiple of the global batch.
    Call :meth:`set_epoch` before each epoch.

    Evaluation (``shuffle=False``): all indices sorted by length and cut into
    global batches, each example exactly once (unless ``drop_last``); with several
    ranks, the last global batch may leave a rank with a short or no slice.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        pool_factor: int = 100,
    ):
        super().__init__(
            lengths, batch_size, num_replicas=num_replicas, rank=rank, shuffle=shuffle, drop_last=drop_last
        )
        if self.local_rank >= self.nranks:
            raise ValueError(f"rank {rank} is out of range for {num_replicas} replicas")
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be at least 1, got {pool_factor}")
        self.lengths = np.asarray(lengths)
        self.seed = seed
        self.global_batch_size = batch_size * self.nranks
        self.pool_size = pool_factor * self.global_batch_size

    def _fit_to_replicas(self, order: np.ndarray) -> np.ndarray:
        """Cut or wrap ``order`` so that every rank gets the same number of full batches."""
        step = self.global_batch_size
        if self.drop_last:
            return order[: len(order) // step * step]
        if self.shuffle and self.nranks > 1:
            return np.concatenate([order, np.resize(order, -len(order) % step)])
        return order

    def _cut(self, order: np.ndarray) -> List[List[int]]:
        size = self.global_batch_size
        return [order[start : start + size].tolist() for start in range(0, len(order), size)]

    def _by_length(self, indices: np.ndarray) -> np.ndarray:
        # Stable, so that equal lengths keep their (shuffled) order and the result is deterministic.
        return indices[np.argsort(self.lengths[indices], kind="stable")]

    def _global_batches(self) -> List[List[int]]:
        if not self.shuffle:
            return self._cut(self._fit_to_replicas(self._by_length(np.arange(len(self.lengths)))))
        rng = np.random.default_rng([self.seed, self.epoch])
        order = self._fit_to_replicas(rng.permutation(len(self.lengths)))
        pools = (order[start : start + self.pool_size] for start in range(0, len(order), self.pool_size))
        batches = [batch for pool in pools for batch in self._cut(self._by_length(pool))]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _rank_batches(self) -> List[List[int]]:
        start = self.local_rank * self.batch_size
        slices = (batch[start : start + self.batch_size] for batch in self._global_batches())
        return [indices for indices in slices if indices]

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self._rank_batches())

    def __len__(self) -> int:
        # Building the batches is cheap next to an epoch, and this cannot disagree with __iter__.
        return len(self._rank_batches())


def make_collator(tokenizer) -> DataCollatorWithPadding:
    """Pads a list of dataset items to the longest in the batch.

    Returns int64 numpy arrays ``input_ids`` (padded with the tokenizer's pad
    id), ``attention_mask`` (1 for real tokens) and ``labels``.
    """
    return DataCollatorWithPadding(tokenizer, return_tensors="np", return_attention_mask=True)


def make_dataloader(
    dataset: ReviewDataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> paddle.io.DataLoader:
    """A DataLoader over ``dataset`` with length-bucketed batches and dynamic padding.

    ``shuffle=True`` for training (call ``loader.batch_sampler.set_epoch(epoch)``
    each epoch), ``False`` for evaluation; see :class:`LengthBucketBatchSampler`.
    """
    sampler = LengthBucketBatchSampler(
        dataset.lengths,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
        drop_last=drop_last,
    )
    return paddle.io.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=make_collator(dataset.tokenizer),
        num_workers=num_workers,
    )
