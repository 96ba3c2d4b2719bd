"""Label sets: the names of a task's classes, in class-id order.

A prepared dataset keeps its label set in ``label.txt``, one name per line, line ``i`` naming
class id ``i`` (PaddleNLP's convention for text classification). Star ratings are one preset of
it: the five names of :data:`STAR_LABELS`. No paddle here.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from ..errors import UserError

__all__ = ["STAR_LABELS", "LABEL_FILE", "STATS_FILE", "natural_order", "read_label_file", "label_file_text", "dataset_labels"]

STAR_LABELS = ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")
LABEL_FILE = "label.txt"
# What marks a folder as a dataset tools/prepare_data.py wrote; older datasets name their classes there.
STATS_FILE = "stats.json"


def natural_order(names: Iterable[str]) -> List[str]:
    """``names`` sorted so that "2" < "10" and "class 2" < "class 10", otherwise alphabetically."""

    def key(name: str):
        # re.split with a group puts the digit runs at the odd places
        parts = re.split(r"(\d+)", name)
        return [(0, int(part), "") if place % 2 else (1, 0, part.casefold()) for place, part in enumerate(parts)]

    return sorted(set(names), key=lambda name: (key(name), name))


def read_label_file(path) -> List[str]:
    """The names of a ``label.txt``: one per line, in class-id order; trailing blank lines are ignored.

    Raises:
        UserError: the file cannot be read, is not UTF-8, is empty, or holds a blank line between
            names or a name twice.
    """
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise UserError(f"cannot read the label file ({error.strerror or error}); expected one label name per line", path) from None
    except UnicodeDecodeError:
        raise UserError("not valid UTF-8; expected one label name per line", path) from None
    names = [line.strip() for line in text.rstrip("\r\n \t").splitlines()]
    if not any(names):
        raise UserError("holds no label names; expected one label name per line", path)
    seen = {}
    for number, name in enumerate(names, start=1):
        if not name:
            raise UserError("blank line between label names; expected one name on every line", path, number)
        if name in seen:
            raise UserError(f"label {name!r} again (first on line {seen[name]}); expected each name once", path, number)
        seen[name] = number
    return names


def label_file_text(names: Sequence[str]) -> str:
    """The content of a ``label.txt`` naming ``names`` in class-id order."""
    return "".join(f"{name}\n" for name in names)


def dataset_labels(data_dir) -> Optional[List[str]]:
    """The label set of a prepared dataset folder: its ``label.txt``, or the names an older ``stats.json``
    lists; None where the folder has neither (a split written by hand, outside any dataset)."""
    label_file = Path(data_dir, LABEL_FILE)
    if label_file.is_file():
        return read_label_file(label_file)
    stats_file = Path(data_dir, STATS_FILE)
    if not stats_file.is_file():
        return None
    try:
        names = json.loads(stats_file.read_text(encoding="utf-8")).get("label_names")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise UserError(f"no {LABEL_FILE} and no 'label_names' list in {STATS_FILE}; expected a folder written by tools/prepare_data.py", data_dir)
    return names
