"""Readers of labelled text files: raw files (JSON lines, CSV, TSV; gzip or plain) and the prepared
splits written by :mod:`.prepare`. They only parse files: no paddle here.

A raw row becomes an example ``{"text": str, "label": str}``, the label by name. Two kinds of label
field exist: a star rating (McAuley ``overall``, MARC ``stars``, a ``rating`` column), read as one
of the names of :data:`~.labels.STAR_LABELS`, and any other label field (``label``, MARC's
``product_category``, ...), whose strings or integers are the names. Unusable rows are skipped and
counted per reason in a :class:`ReadReport`. A prepared split holds ``{"text", "label": class id}``.
"""
import csv
import gzip
import json
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import UserError
from .labels import STAR_LABELS, dataset_labels

__all__ = [
    "check_texts",
    "without_line_break_tags",
    "SPLIT_NAMES",
    "TEXT_COLUMN_CANDIDATES",
    "LABEL_COLUMN_CANDIDATES",
    "RATING_COLUMN_CANDIDATES",
    "TITLE_COLUMN_CANDIDATES",
    "Example",
    "ReadReport",
    "iter_reviews",
    "read_reviews",
    "read_prepared",
    "read_split",
]

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
    (whitespace only), ``text_not_valid_unicode`` (lone surrogates); for star ratings ``missing_rating``,
    ``rating_not_a_number``, ``rating_not_integral`` (e.g. 4.5), ``rating_out_of_range`` (not 1..5);
    for other labels ``missing_label``, ``label_not_a_name`` (not a string or integer, or a string
    spanning lines). A row is counted under the first check it fails, text before label.
    ``label_counts`` counts the kept rows per label name; ``star_ratings`` says which kind of label
    field the file has (None until a row is read).
    """

    path: str
    rows: int = 0
    kept: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)
    first_skipped: List[str] = field(default_factory=list)
    label_counts: Dict[str, int] = field(default_factory=dict)
    star_ratings: Optional[bool] = None

    def record_kept(self, label: str) -> None:
        self.rows += 1
        self.kept += 1
        self.label_counts[label] = self.label_counts.get(label, 0) + 1

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
    """Names of the text, label and title fields of one file, and whether the label is a star rating."""

    text: str
    label: str
    title: Optional[str]
    stars: bool


_JSON_SCHEMAS = {
    "McAuley": _Fields(text="reviewText", label="overall", title="summary", stars=True),
    "MARC": _Fields(text="review_body", label="stars", title="review_title", stars=True),
    "text/label": _Fields(text="text", label="label", title="title", stars=False),
}

TEXT_COLUMN_CANDIDATES = ("text", "reviewText", "review_body", "review", "description", "sentence", "content")
# Star ratings first: a file with both a rating and a label column is a review file.
RATING_COLUMN_CANDIDATES = ("rating", "overall", "stars")
LABEL_COLUMN_CANDIDATES = ("label",)
TITLE_COLUMN_CANDIDATES = ("title", "summary", "review_title")


@dataclass(frozen=True)
class FieldChoice:
    """The fields a user named (each None for the default), and the names of a header-less CSV/TSV."""

    text: Optional[str] = None
    label: Optional[str] = None
    rating: Optional[str] = None
    title: Optional[str] = None
    columns: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        if self.label is not None and self.rating is not None:
            raise UserError(f"both a label field ({self.label!r}) and a rating field ({self.rating!r}) given; expected one")

    def label_field(self, default: Optional[_Fields]) -> Tuple[str, bool]:
        """The label field and whether it holds star ratings: the user's choice, else the ``default`` schema's."""
        if self.rating is not None:
            return self.rating, True
        if self.label is not None:
            return self.label, False
        return default.label, default.stars


class _RawReview(NamedTuple):
    """The three fields of one row, as found in the file (any type, or None)."""

    text: object
    label: object
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


def text_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
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


def json_objects(path: PathLike) -> Iterator[Tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file."""
    for number, line in text_lines(path):
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


def _detect_json_schema(obj: dict, path: PathLike, line: int, choice: FieldChoice) -> _Fields:
    """The schema sharing the most field names with ``obj`` (the file's first row), counting only the
    roles the user did not name (a named text field says nothing about which label field the file has)."""
    named = {"text"} if choice.text else set()
    names = {
        schema: tuple(name for role, name in (("text", f.text), ("label", f.label), ("title", f.title)) if role not in named)
        for schema, f in _JSON_SCHEMAS.items()
    }  # fmt: skip
    overlap = {schema: len(set(fields) & obj.keys()) for schema, fields in names.items()}
    best = max(overlap, key=overlap.get)
    if overlap[best] == 0:
        expected = " or ".join(f"{schema} ({', '.join(fields)})" for schema, fields in names.items())
        raise UserError(f"unknown fields {sorted(obj)}; expected {expected}, or --text-column and --label-column", path, line)
    return _JSON_SCHEMAS[best]


def _json_fields(obj: dict, path: PathLike, line: int, choice: FieldChoice) -> _Fields:
    """The fields of a JSON-lines file: the user's names, else those of the schema detected on its first row.

    A field the user named must be in the first row: a misspelt name would otherwise skip every row.
    """
    for role, name in (("text", choice.text), ("label", choice.label or choice.rating)):
        if name is not None and name not in obj:
            raise UserError(f"the first row has no {role} field {name!r}; its fields are {sorted(obj)}", path, line)
    detected = None
    if choice.text is None or (choice.label is None and choice.rating is None):
        detected = _detect_json_schema(obj, path, line, choice)
    label, stars = choice.label_field(detected)
    title = choice.title or (detected.title if detected else None)
    return _Fields(text=choice.text or detected.text, label=label, title=title, stars=stars)


def _json_reviews(path: PathLike, choice: FieldChoice, report: ReadReport) -> Iterator[Tuple[int, _RawReview]]:
    """Raw rows of a JSON-lines file; fields not named by the user are detected on the first row."""
    if choice.columns:
        raise UserError("--columns names the columns of a CSV/TSV file without a header; this is JSON lines, "
                        "whose fields are named (use --text-column/--label-column)", path)  # fmt: skip
    fields = None
    for number, obj in json_objects(path):
        if fields is None:
            fields = _json_fields(obj, path, number, choice)
            report.star_ratings = fields.stars
        title = obj.get(fields.title) if fields.title else None
        yield number, _RawReview(obj.get(fields.text), obj.get(fields.label), title)


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


def _label_column(header: List[str], choice: FieldChoice, path: PathLike) -> Tuple[str, bool]:
    """The label column and whether it holds star ratings: the user's, else a rating column, else ``label``."""
    if choice.rating is not None:
        return _pick_column(header, choice.rating, (), "rating", path), True
    if choice.label is not None:
        return _pick_column(header, choice.label, (), "label", path), False
    for candidates, stars in ((RATING_COLUMN_CANDIDATES, True), (LABEL_COLUMN_CANDIDATES, False)):
        for name in candidates:
            if name in header:
                return name, stars
    expected = list(RATING_COLUMN_CANDIDATES + LABEL_COLUMN_CANDIDATES)
    raise UserError(f"no label column; expected one of {expected} in the header {header}, or --label-column", path, 1)


def _delimited_reviews(
    path: PathLike, delimiter: str, with_title: bool, choice: FieldChoice, report: ReadReport
) -> Iterator[Tuple[int, _RawReview]]:
    """Raw rows of a CSV/TSV file: with a header row, or with the column names ``choice.columns``."""
    names = list(choice.columns) if choice.columns else None
    reader = csv.DictReader((line for _, line in text_lines(path)), fieldnames=names, delimiter=delimiter)
    file_format = "TSV" if delimiter == "\t" else "CSV"
    try:
        header = reader.fieldnames or []
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise UserError(f"the header names the column(s) {repeated} more than once; expected distinct names", path, 1)
        text = _pick_column(header, choice.text, TEXT_COLUMN_CANDIDATES, "text", path)
        label, report.star_ratings = _label_column(header, choice, path)
        title = _pick_column(header, choice.title, TITLE_COLUMN_CANDIDATES, "title", path) if with_title else None
        for row in reader:
            yield reader.line_num, _RawReview(row.get(text), row.get(label), row.get(title) if title else None)
    except csv.Error as exc:
        raise UserError(f"malformed {file_format} ({exc})", path, reader.line_num) from None


def _delimiter_for(path: PathLike) -> Optional[str]:
    """The field delimiter for a .csv/.tsv file (optionally .gz), None for JSON lines."""
    name = Path(path).name.lower()
    name = name[: -len(".gz")] if name.endswith(".gz") else name
    return {".csv": ",", ".tsv": "\t"}.get(Path(name).suffix)


def is_unicode(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: JSON's "\\ud800" escapes give lone surrogates that cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Review sites that store HTML (IMDB, some Amazon files) keep "<br />" for a line break: to a tokenizer it
# would be three words of markup in every paragraph.
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


def without_line_break_tags(text: str) -> str:
    """``text`` with each HTML line break (``<br />``, ``<br/>``, ``<br>``) turned into a space."""
    return _LINE_BREAK_TAG.sub(" ", text) if "<" in text else text


def _review_text(value: object) -> str:
    if value is None:
        raise _SkipRow("missing_text")
    if not isinstance(value, str):
        raise _SkipRow("text_not_a_string")
    if not value.strip():
        raise _SkipRow("empty_text")
    if not is_unicode(value):
        raise _SkipRow("text_not_valid_unicode")
    text = without_line_break_tags(value).strip()
    if not text:
        raise _SkipRow("empty_text")
    return text


def _star_label(value: object) -> str:
    """The star-rating label name of an integral rating in 1..5, given as number or string."""
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
    if not 1 <= rating <= len(STAR_LABELS):
        raise _SkipRow("rating_out_of_range")
    return STAR_LABELS[int(rating) - 1]


def _named_label(value: object) -> str:
    """A label name: a string (stripped, on one line) or an integer (also 3.0, or "3" as CSV gives it)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _SkipRow("missing_label")
    if isinstance(value, bool):  # JSON true/false are no class names
        raise _SkipRow("label_not_a_name")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if isinstance(value, str) and is_unicode(value) and len(value.strip().splitlines()) == 1:
        return value.strip()
    raise _SkipRow("label_not_a_name")


def _with_title(title: object, text: str) -> str:
    """``"title. text"``: the title as a first sentence, so the two stay distinguishable.

    No period is added after a title that already ends a sentence ("Great!").
    A missing or blank title leaves the text alone.
    """
    if not isinstance(title, str) or not title.strip() or not is_unicode(title):
        return text
    title = title.strip()
    separator = " " if title[-1] in ".!?" else ". "
    return f"{title}{separator}{text}"


def _example(raw: _RawReview, with_title: bool, stars: bool) -> Example:
    # Validity depends on the text body only, so that with_title changes the
    # texts but never which rows are kept.
    text = _review_text(raw.text)
    label = _star_label(raw.label) if stars else _named_label(raw.label)
    return {"text": _with_title(raw.title, text) if with_title else text, "label": label}


def _shown(names: Sequence[str], limit: int = 8) -> str:
    """Up to ``limit`` names, quoted, for a one-line message (and how many there are in all)."""
    listed = ", ".join(repr(name) for name in names[:limit])
    return listed + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def iter_reviews(
    path: PathLike,
    *,
    report: Optional[ReadReport] = None,
    with_title: bool = False,
    fields: FieldChoice = FieldChoice(),
    labels: Optional[Sequence[str]] = None,
    labels_from: str = "the label set",
) -> Iterator[Example]:
    """Yield the valid examples ``{"text", "label": name}`` of one raw file, updating ``report`` as rows are read.

    The format is chosen per file: ``.csv``/``.tsv`` (also ``.csv.gz``) are delimited, with a header
    row unless ``fields.columns`` names the columns; anything else is JSON lines, whose fields
    (McAuley ``reviewText/overall/summary``, MARC ``review_body/stars/review_title``, or
    ``text/label/title``) are detected from the first row. Gzip is detected from the content.
    ``fields`` names the text, label (or rating) and title fields instead, in any format; CSV/TSV
    columns otherwise default to the first present of ``TEXT_COLUMN_CANDIDATES``,
    ``RATING_COLUMN_CANDIDATES`` then ``LABEL_COLUMN_CANDIDATES``, ``TITLE_COLUMN_CANDIDATES``.

    ``with_title`` prepends the title: ``"title. text"``. With ``labels``, a row whose label is not
    one of them is an error (``labels_from`` says where the set came from), not a skipped row.

    Raises:
        UserError: the file is missing or unreadable, not UTF-8, holds a line that is not a JSON
            object, lacks the named fields, or holds a label outside ``labels``.
    """
    report = report if report is not None else ReadReport(str(path))
    delimiter = _delimiter_for(path)
    if delimiter is None:
        rows = _json_reviews(path, fields, report)
    else:
        rows = _delimited_reviews(path, delimiter, with_title, fields, report)
    known = None if labels is None else set(labels)
    for number, raw in rows:
        try:
            example = _example(raw, with_title, report.star_ratings)
        except _SkipRow as skip:
            report.record_skip(skip.reason, number)
            continue
        if known is not None and example["label"] not in known:
            raise UserError(
                f"label {example['label']!r} is not in {labels_from}; expected one of {_shown(list(labels))}", path, number
            )
        report.record_kept(example["label"])
        yield example


def read_reviews(path: PathLike, **options) -> Tuple[List[Example], ReadReport]:
    """All valid examples of one raw review file and the report of what was skipped.

    ``options`` are those of :func:`iter_reviews` (without ``report``).
    """
    report = ReadReport(str(path))
    examples = list(iter_reviews(path, report=report, **options))
    return examples, report


def read_prepared(path: PathLike, num_labels: int) -> List[Example]:
    """Read a split written by :func:`prepare_dataset` (``{"text", "label": class id}`` JSON lines).

    Prepared files are this package's own output, so any deviation is an error
    rather than a skipped row.
    """
    examples = []
    for number, obj in json_objects(path):
        text, label = obj.get("text"), obj.get("label")
        label_ok = isinstance(label, int) and not isinstance(label, bool) and 0 <= label < num_labels
        if not isinstance(text, str) or not text.strip() or not label_ok or not is_unicode(text):
            raise UserError(
                f'expected {{"text": non-empty, valid Unicode string, "label": integer 0..{num_labels - 1}}}', path, number
            )
        examples.append({"text": text, "label": label})
    return examples


def read_split(path: PathLike, label_names: Sequence[str], role: str = "split") -> List[Example]:
    """The examples of a prepared split, their class ids in the order of ``label_names``.

    The split's own label set (``label.txt`` of its folder) says what its ids mean; where it orders
    the names otherwise, ids are translated by name, and a name missing from ``label_names`` is an
    error. A split without a label set beside it must use ``label_names``' ids. A missing or empty
    file is refused (``role`` names it in the message).
    """
    if not Path(path).is_file():
        raise UserError(f"{role} not found; expected a file written by tools/prepare_data.py", path)
    own_names = dataset_labels(Path(path).parent) or list(label_names)
    examples = read_prepared(path, len(own_names))
    if not examples:
        raise UserError(f"{role} holds no examples", path)
    if list(own_names) == list(label_names):
        return examples
    index = {name: position for position, name in enumerate(label_names)}
    unknown = sorted({own_names[example["label"]] for example in examples} - index.keys())
    if unknown:
        raise UserError(f"{role} has the label(s) {_shown(unknown)}, which the model does not know; expected labels among {_shown(list(label_names))}", path)
    return [{"text": example["text"], "label": index[own_names[example["label"]]]} for example in examples]


def check_texts(texts: Sequence) -> None:
    """Texts given to a model to classify or summarise (not read from a file): each a string with a word in it."""
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"text {number} is empty; expected a text")
