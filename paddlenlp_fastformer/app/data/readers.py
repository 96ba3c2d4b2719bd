"""Readers of review files: raw Amazon reviews (McAuley or MARC JSON lines, CSV, TSV; gzip or plain)
and the prepared splits written by :mod:`.prepare`. They only parse files: no paddle here.

A raw row becomes an example ``{"text": str, "label": int}`` with ``label = stars - 1``; unusable
rows are skipped and counted per reason in a :class:`ReadReport`.
"""
import csv
import gzip
import json
import math
import os
import zlib
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import UserError

__all__ = [
    "LABEL_NAMES",
    "NUM_CLASSES",
    "SPLIT_NAMES",
    "TEXT_COLUMN_CANDIDATES",
    "RATING_COLUMN_CANDIDATES",
    "TITLE_COLUMN_CANDIDATES",
    "Example",
    "ReadReport",
    "iter_reviews",
    "read_reviews",
    "read_prepared",
    "read_split",
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


@dataclass
class ReadReport:
    """What reading one input file gave: rows seen, rows kept, rows skipped per reason.

    Skip reasons: ``missing_text``, ``text_not_a_string``, ``empty_text``
    (whitespace only), ``text_not_valid_unicode`` (lone surrogates), ``missing_rating``, ``rating_not_a_number``,
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
        raise UserError(f"cannot read file ({exc.strerror or exc}); expected a readable review file", path) from None


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
                    raise UserError(message, path, number) from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise UserError(f"corrupt gzip data ({exc}); expected a complete gzip file", path) from None


def _json_objects(path: PathLike) -> Iterator[Tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file."""
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"invalid JSON ({exc.msg}); expected one JSON object per line", path, number) from None
        except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, or nesting thousands deep
            raise UserError(f"unreadable JSON ({exc}); expected one flat JSON object per line", path, number) from None
        if not isinstance(obj, dict):
            raise UserError(f"got a JSON {type(obj).__name__}; expected one JSON object per line", path, number)
        yield number, obj


def _detect_json_schema(obj: dict, path: PathLike, line: int) -> _Fields:
    """The review schema sharing the most field names with ``obj`` (the file's first row)."""
    overlap = {name: len(set(astuple(fields)) & obj.keys()) for name, fields in _JSON_SCHEMAS.items()}
    best = max(overlap, key=overlap.get)
    if overlap[best] == 0:
        expected = " or ".join(f"{name} ({', '.join(astuple(fields))})" for name, fields in _JSON_SCHEMAS.items())
        raise UserError(f"unknown review fields {sorted(obj)}; expected {expected}", path, line)
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
        raise UserError(f"no {role} column {requested!r}; expected one of the columns {header}", path, 1)
    for name in candidates:
        if name in header:
            return name
    expected = f"expected one of {list(candidates)} in the header {header} or an explicit {role} column name"
    raise UserError(f"no {role} column; {expected}", path, 1)


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
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise UserError(f"the header names the column(s) {repeated} more than once; expected distinct names", path, 1)
        text = _pick_column(header, text_column, TEXT_COLUMN_CANDIDATES, "text", path)
        rating = _pick_column(header, rating_column, RATING_COLUMN_CANDIDATES, "rating", path)
        title = _pick_column(header, title_column, TITLE_COLUMN_CANDIDATES, "title", path) if with_title else None
        for row in reader:
            yield reader.line_num, _RawReview(row.get(text), row.get(rating), row.get(title) if title else None)
    except csv.Error as exc:
        raise UserError(f"malformed {file_format} ({exc})", path, reader.line_num) from None


def _delimiter_for(path: PathLike) -> Optional[str]:
    """The field delimiter for a .csv/.tsv file (optionally .gz), None for JSON lines."""
    name = Path(path).name.lower()
    name = name[: -len(".gz")] if name.endswith(".gz") else name
    return {".csv": ",", ".tsv": "\t"}.get(Path(name).suffix)


def _is_unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: JSON's "\\ud800" escapes give lone surrogates that cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _review_text(value: object) -> str:
    if value is None:
        raise _SkipRow("missing_text")
    if not isinstance(value, str):
        raise _SkipRow("text_not_a_string")
    if not value.strip():
        raise _SkipRow("empty_text")
    if not _is_unicode(value):
        raise _SkipRow("text_not_valid_unicode")
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
    if not isinstance(title, str) or not title.strip() or not _is_unicode(title):
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
        UserError: the file is missing or unreadable, not UTF-8, holds a line
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
        if not isinstance(text, str) or not text.strip() or not label_ok or not _is_unicode(text):
            raise UserError(
                f'expected {{"text": non-empty, valid Unicode string, "label": integer 0..{NUM_CLASSES - 1}}}', path, number
            )
        examples.append({"text": text, "label": label})
    return examples



def read_split(path: PathLike, role: str = "split") -> List[Example]:
    """The examples of a prepared split, refusing a missing or empty file (``role`` names it in the message)."""
    if not Path(path).is_file():
        raise UserError(f"{role} not found; expected a file written by tools/prepare_data.py", path)
    examples = read_prepared(path)
    if not examples:
        raise UserError(f"{role} holds no examples", path)
    return examples
