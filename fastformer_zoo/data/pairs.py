"""Text -> summary pairs for sequence-to-sequence training (a review and its title): a pairs folder drawn from
review files, and its reader. No paddle here.

A pairs folder holds ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl`` (one ``{"text": str, "summary": str}``
a line) and ``stats.json``. The source is the first of :data:`~.corpus.TEXT_FIELDS` a row has, the summary
the first of :data:`SUMMARY_FIELDS`; a row missing either (or holding only whitespace) is skipped and counted.
"""
import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from paddlenlp_fastformer.file_utils import write_text_atomically

from ..directories import check_output_directory, write_directory_atomically
from ..errors import UserError
from .corpus import TEXT_FIELDS
from .duplicates import drop_shared_texts, log_duplicates, text_keys, texts_in_several_splits
from .readers import SPLIT_NAMES, PathLike, is_unicode, json_objects

__all__ = ["SUMMARY_FIELDS", "prepare_pairs", "read_pairs"]

# McAuley's review title, MARC's, and a generic one.
SUMMARY_FIELDS = ("summary", "review_title", "title")
PAIRS_STATS_FILE = "stats.json"


def _usable(value) -> bool:
    return isinstance(value, str) and bool(value.strip()) and is_unicode(value)


def _file_pairs(path: PathLike) -> Tuple[List[Dict[str, str]], Dict[str, int]]:
    """The usable pairs of one JSON-lines file and how many rows were read and skipped."""
    pairs, counts = [], {"rows": 0, "kept": 0, "skipped": 0}
    for _, obj in json_objects(path):
        counts["rows"] += 1
        text = next((obj[name] for name in TEXT_FIELDS if name in obj), None)
        summary = next((obj[name] for name in SUMMARY_FIELDS if name in obj), None)
        if _usable(text) and _usable(summary):
            pairs.append({"text": text, "summary": summary})
            counts["kept"] += 1
        else:
            counts["skipped"] += 1
    if not pairs:
        raise UserError(f"holds no row with a text ({' / '.join(TEXT_FIELDS)}) and a summary ({' / '.join(SUMMARY_FIELDS)})", path)
    return pairs, counts


def _text_keys(pairs: Sequence[Dict[str, str]]):
    # Outer whitespace aside, as the review reader strips it: the same normalisation as prepare_data's.
    return text_keys(pair["text"].strip() for pair in pairs)


def prepare_pairs(
    inputs: Sequence[PathLike], output_dir: PathLike, sizes: Sequence[int], seed: int = 42, overwrite: bool = False,
    keep_duplicates: bool = False,
) -> dict:  # fmt: skip
    """Write a pairs folder from the official ``train, dev, test`` files (``inputs``), each sampled down to its
    entry of ``sizes`` with ``numpy.random.default_rng(seed)`` (0, or more than the file holds, keeps it whole).

    As ``tools/prepare_data.py --keep-splits`` does, a dev or test pair whose text an earlier file holds is
    dropped before sampling, with a warning naming both files, unless ``keep_duplicates``; the same file given
    for two splits is warned about and kept whole (see :mod:`.prepare` for the rule). The log says so once the
    folder is written; ``stats.json`` counts it under ``"duplicates"``.
    """
    output_dir = Path(output_dir)
    if len(inputs) != len(SPLIT_NAMES) or len(sizes) != len(SPLIT_NAMES):
        raise UserError(f"got {len(inputs)} inputs and {len(sizes)} sizes; expected three of each: train, dev, test")
    check_output_directory(output_dir, overwrite, "pairs", PAIRS_STATS_FILE, inputs, foreign=("label.txt",))  # a dataset's
    paths = [str(path) for path in inputs]
    read = [_file_pairs(path) for path in paths]
    kept, duplicates, notes = drop_shared_texts(paths, [_text_keys(pairs) for pairs, _ in read], keep_duplicates)
    rng = np.random.default_rng(seed)
    splits, stats = {}, {"seed": seed, "inputs": {}, "splits": {}}
    for name, path, size, (pairs, counts), mask in zip(SPLIT_NAMES, paths, sizes, read, kept):
        pairs = [pair for pair, keep in zip(pairs, mask) if keep]
        if 0 < size < len(pairs):
            pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), size=size, replace=False))]
        splits[name] = pairs
        stats["inputs"][path] = counts
        stats["splits"][name] = {"count": len(pairs), "mean_summary_words": round(float(np.mean([len(p["summary"].split()) for p in pairs])), 1)}
    duplicates["texts_in_several_splits"] = texts_in_several_splits([_text_keys(pairs) for pairs in splits.values()])
    stats["duplicates"] = duplicates

    def write(staging: str) -> None:
        for name, pairs in splits.items():
            lines = "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs)
            write_text_atomically(Path(staging, f"{name}.jsonl"), lines)
        write_text_atomically(Path(staging, PAIRS_STATS_FILE), json.dumps(stats, indent=2) + "\n")

    write_directory_atomically(write, str(output_dir), overwrite=overwrite)
    log_duplicates(notes, duplicates)
    return stats


def read_pairs(path: PathLike, role: str) -> List[Dict[str, str]]:
    """The pairs of a split written by :func:`prepare_pairs`; a missing or empty file, or a bad row, is refused."""
    if not Path(path).is_file():
        raise UserError(f"{role} not found; expected a file written by tools/prepare_pairs.py", path)
    pairs = []
    for number, obj in json_objects(path):
        if not (_usable(obj.get("text")) and _usable(obj.get("summary"))):
            raise UserError('expected {"text": non-empty string, "summary": non-empty string}', path, number)
        pairs.append({"text": obj["text"], "summary": obj["summary"]})
    if not pairs:
        raise UserError(f"{role} holds no pairs", path)
    return pairs
