"""Unlabelled text for masked-LM pretraining: a corpus folder drawn from review files, and the leak check
that keeps every later dev and test review out of it. No paddle here.

A corpus folder holds ``train.jsonl`` and ``dev.jsonl`` (one ``{"text": str}`` a line) and ``stats.json``.
Texts are compared for leaks and duplicates by their *leak key*: case-folded, whitespace collapsed, so
that a review re-typed with other spacing or capitals still counts as the same review. A held-out text
also counts by what follows each sentence end in its first 200 characters (8 words or more of it), so that
a split prepared with its titles (``"Title. Body"``) still catches a corpus text that is its body alone.
"""
import json
import os
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

import numpy as np

from paddlenlp_fastformer.file_utils import write_text_atomically

from ..directories import check_output_directory, write_directory_atomically
from ..errors import UserError
from .readers import PathLike, is_unicode, json_objects, text_lines, without_line_break_tags

__all__ = ["TEXT_FIELDS", "CORPUS_STATS_FILE", "iter_texts", "read_corpus_split", "leak_key", "check_no_leak", "prepare_corpus"]

# The text field of a prepared split or text corpus, of McAuley files and of MARC files, in that order.
TEXT_FIELDS = ("text", "reviewText", "review_body")
CORPUS_STATS_FILE = "stats.json"
CORPUS_SPLITS = ("train", "dev")


def iter_texts(path: PathLike) -> Iterator[Tuple[int, str]]:
    """``(line number, text)`` of each usable text of a file: JSON lines (the first of :data:`TEXT_FIELDS` a row
    has; labels and other fields are ignored) or, for a ``.txt`` file, each non-blank line. Gzip or plain.

    HTML line breaks become spaces. Rows without a non-empty string text are skipped; a line that is not a JSON
    object is an error.
    """
    if Path(path).name.endswith((".txt", ".txt.gz")):
        for number, line in text_lines(path):
            line = without_line_break_tags(line)
            if line.strip() and is_unicode(line):
                yield number, line.rstrip("\r\n")
        return
    for number, obj in json_objects(path):
        text = next((obj[name] for name in TEXT_FIELDS if name in obj), None)
        text = without_line_break_tags(text) if isinstance(text, str) else None
        if text and text.strip() and is_unicode(text):
            yield number, text


def read_corpus_split(path: PathLike, role: str) -> List[str]:
    """The texts of a corpus split (or of any file :func:`iter_texts` reads); a missing or empty one is refused."""
    if not Path(path).is_file():
        raise UserError(f"{role} not found; expected a file written by tools/prepare_corpus.py", path)
    texts = [text for _, text in iter_texts(path)]
    if not texts:
        raise UserError(f"{role} holds no text", path)
    return texts


def leak_key(text: str) -> str:
    """What two texts must share to count as the same review."""
    return " ".join(text.split()).casefold()


# How far into a held-out text a title can end: the bodies after sentence ends within it count as the text too,
# if they are long enough not to be a stock phrase ("Works great.") that other reviews share by chance.
TITLE_SPAN = 200
MIN_BODY_WORDS = 8


def _held_out_keys(held_out: Sequence[PathLike]) -> Dict[str, Tuple[str, int]]:
    """Leak key -> (held-out file, line) of every text of the held-out files, and of its body after a title."""
    keys: Dict[str, Tuple[str, int]] = {}
    for path in held_out:
        if not Path(path).is_file():
            raise UserError("held-out file not found; expected a dev or test split (JSON lines or .txt) to keep out", path)
        for number, text in iter_texts(path):
            key = leak_key(text)
            keys.setdefault(key, (str(path), number))
            for end in (i for i in range(min(len(key), TITLE_SPAN)) if key[i] in ".!?" and key[i + 1 : i + 2] == " "):
                if len(key[end + 2 :].split()) >= MIN_BODY_WORDS:
                    keys.setdefault(key[end + 2 :], (str(path), number))
    return keys


def check_no_leak(corpus: Dict[str, Sequence[str]], held_out: Sequence[PathLike]) -> None:
    """Refuse pretraining text that holds any review of the ``held_out`` files (the dev and test splits of
    later fine-tunes). ``corpus`` maps each corpus file's name to its texts; the error names both files."""
    keys = _held_out_keys(held_out)
    for name, texts in corpus.items():
        leaked = [index for index, text in enumerate(texts) if leak_key(text) in keys]
        if leaked:
            held_path, held_line = keys[leak_key(texts[leaked[0]])]
            raise UserError(
                f"{name}: holds {len(leaked)} review(s) of the held-out file {held_path} (the first is its line "
                f"{held_line}, text {leaked[0] + 1} here); expected pretraining text without any dev or test review "
                "used later (tools/prepare_corpus.py --exclude drops them)"
            )


def _pooled_texts(inputs: Sequence[PathLike], excluded: Dict[str, Tuple[str, int]]) -> Tuple[List[str], List[dict]]:
    """The distinct texts of ``inputs`` in reading order, without excluded ones; and what each input gave."""
    seen, texts, reports = set(), [], []
    for path in inputs:
        report = {"path": str(path), "texts": 0, "kept": 0, "duplicates": 0, "excluded": 0}
        for _, text in iter_texts(path):
            report["texts"] += 1
            key = leak_key(text)
            if key in excluded:
                report["excluded"] += 1
            elif key in seen:
                report["duplicates"] += 1
            else:
                seen.add(key)
                texts.append(text)
                report["kept"] += 1
        if not report["texts"]:
            raise UserError(f"holds no text in a field {' / '.join(TEXT_FIELDS)} (or lines of a .txt file)", path)
        reports.append(report)
    return texts, reports


def prepare_corpus(
    inputs: Sequence[PathLike], output_dir: PathLike, dev_size: int, seed: int = 42,
    exclude: Sequence[PathLike] = (), overwrite: bool = False,
) -> dict:  # fmt: skip
    """Write a corpus folder: the distinct texts of ``inputs`` minus every text of the ``exclude`` files,
    shuffled with ``numpy.random.default_rng(seed)``, ``dev_size`` of them to ``dev.jsonl`` (for the
    masked-LM dev loss) and the rest to ``train.jsonl``. Written as one unit; returns ``stats.json``'s content.
    An input or ``exclude`` file inside ``output_dir``, or one of its files under another name, is refused.
    """
    _refuse_own_output(output_dir, [*(("--input", path) for path in inputs), *(("--exclude", path) for path in exclude)])
    # A dataset (label.txt) or pairs folder (test.jsonl) also has a stats.json.
    check_output_directory(output_dir, overwrite, "corpus", CORPUS_STATS_FILE, [*inputs, *exclude], foreign=("label.txt", "test.jsonl"))
    texts, reports = _pooled_texts(inputs, _held_out_keys(exclude))
    if dev_size < 1 or dev_size >= len(texts):
        raise UserError(f"--dev-size {dev_size}: expected at least 1 and fewer than the {len(texts)} distinct texts kept")
    order = np.random.default_rng(seed).permutation(len(texts))
    splits = {"dev": [texts[i] for i in order[:dev_size]], "train": [texts[i] for i in order[dev_size:]]}
    stats = {
        "inputs": reports, "excluded_files": [str(path) for path in exclude], "seed": seed,
        "splits": {name: {"count": len(split), "mean_words": round(float(np.mean([len(t.split()) for t in split])), 1)}
                   for name, split in splits.items()},
    }  # fmt: skip

    def write(staging: str) -> None:
        for name in CORPUS_SPLITS:
            write_text_atomically(Path(staging, f"{name}.jsonl"), _jsonl(splits[name]))
        write_text_atomically(Path(staging, CORPUS_STATS_FILE), json.dumps(stats, indent=2) + "\n")

    write_directory_atomically(write, str(output_dir), overwrite=overwrite)
    return stats


def _refuse_own_output(output_dir: PathLike, named: Sequence[Tuple[str, PathLike]]) -> None:
    """Refuse a file read (``named``: option, path) that lies inside ``output_dir``, or that is one of its files
    under another name (a link, a hard link): the folder is replaced as a whole, so such a file would be this
    tool's own output fed back as text, and gone once the new corpus is in place. Checked before the rest, so
    that the error names this, not the missing --overwrite that would only lead here."""
    folder = os.path.join(os.path.realpath(output_dir), "")
    try:
        written = [entry.path for entry in os.scandir(output_dir) if entry.is_file()]
    except OSError:  # no folder yet (or an unreadable one, which writing it reports)
        written = []
    for option, path in named:
        if os.path.realpath(path).startswith(folder):
            raise UserError(f"the {option} file {path} lies inside it and would be deleted when the new corpus replaces "
                            f"the folder; expected {option} files outside --output-dir, which holds this tool's own output",
                            output_dir)  # fmt: skip
        same = next((other for other in written if os.path.isfile(path) and os.path.samefile(path, other)), None)
        if same is not None:
            raise UserError(f"the {option} file {path} is its {os.path.basename(same)} under another name (a hard link), "
                            f"this tool's own output; expected {option} files apart from what it writes",
                            output_dir)  # fmt: skip


def _jsonl(texts: Iterable[str]) -> str:
    return "".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts)
