"""Duplicate texts across splits: the rule every dataset writer (:mod:`.prepare`, :mod:`.pairs`) follows.

Two rows are copies when their texts are equal character for character as the reader gives
them: stripped of leading and trailing whitespace, with the title in front under ``with_title``. Case, inner
spacing and punctuation count ("Good" and "good" are two texts); the looser leak key of :mod:`.corpus` is for
pretraining text. A text in two splits lets a model be scored on what it trained on, so by default none is:

* Pooled inputs: every row stays, and all copies of a text land in one split. The sample is drawn as it
  always was; then each text whose copies fell in several splits joins the split of one of its copies taken
  at random, its other copies swapping places with rows of that split whose text is drawn once. Split sizes
  and the class skew stay as asked, and a draw without a text in two splits comes out as earlier versions
  wrote it. Copies are kept rather than dropped because most of them are distinct reviews of a few words
  ("Good", "Works great"), whose loss would thin the natural skew and leave fewer rows than a split that
  asks for all of them needs.
* ``keep_splits`` (the user's own train, dev and test files): nothing moves between the files. A dev row
  whose text is in the train file, and a test row whose text is in the train or the dev file, is dropped
  before sampling (so a split still gets its asked size if its file has the rows), with a warning naming
  both files and the count. The same file given for two splits can only be deliberate (e.g. the test file
  reused as dev, for data that ships without a dev split): it is warned about and kept whole, not emptied.
* ``keep_duplicates=True``: rows stay as drawn or as given; the texts in several splits are still counted.

``stats.json`` records what was done under ``"duplicates"``; the log says it once the dataset is written.
"""
import hashlib
import logging
from typing import Dict, Iterable, List, Sequence

import numpy as np

from ..directories import same_file
from ..errors import UserError
from .readers import SPLIT_NAMES

__all__ = ["text_keys", "texts_in_several_splits", "keep_copies_together", "refuse_repeated_inputs", "drop_shared_texts",
           "duplicates_line", "log_duplicates"]  # fmt: skip

logger = logging.getLogger(__name__)


def text_keys(texts: Iterable[str]) -> np.ndarray:
    """A 16-byte BLAKE2b digest of each text (numpy ``S16``), so that the 1.7M reviews of the paper's file are
    compared without being held in memory. Equal texts give equal keys; two different texts sharing one by
    chance is a 1 in 10^26 event at that size."""
    digests = bytearray()
    for text in texts:
        digests += hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
    return np.frombuffer(bytes(digests), dtype="S16")


def texts_in_several_splits(split_keys: Sequence[np.ndarray]) -> int:
    """How many distinct texts occur in more than one of the splits whose :func:`text_keys` are given."""
    _, splits_holding = np.unique(np.concatenate([np.unique(keys) for keys in split_keys]), return_counts=True)
    return int((splits_holding > 1).sum())


def keep_copies_together(draws: np.ndarray, sizes: Sequence[int], texts: np.ndarray, rng) -> int:
    """Swap rows of ``draws`` (pooled row numbers in draw order, split after split, ``sizes`` long each) so that
    the drawn copies of each text (``texts``: a text id per pooled row) sit in one split. Returns how many moved.

    No random number is used where no text is in two splits, so such a draw is left exactly as it was.
    """
    split_of = np.repeat(np.arange(len(sizes)), sizes)
    _, text_of, copies = np.unique(texts[draws], return_inverse=True, return_counts=True)
    copies = copies[text_of]
    positions_of: Dict[int, List[int]] = {}
    for position in np.flatnonzero(copies > 1):
        positions_of.setdefault(int(text_of[position]), []).append(int(position))
    lone = [[int(p) for p in np.flatnonzero((split_of == split) & (copies == 1))] for split in range(len(sizes))]
    moved = 0
    for positions in positions_of.values():
        if len({split_of[position] for position in positions}) > 1:
            moved += _move_copies(draws, positions, split_of, lone, rng, sizes)
    return moved


def _move_copies(draws: np.ndarray, positions: List[int], split_of: np.ndarray, lone: List[List[int]], rng,
                 sizes: Sequence[int]) -> int:  # fmt: skip
    """Bring the copies of one text (at draw ``positions``) into the split of one of them taken at random, among
    splits with enough rows of a once-drawn text (``lone``, per split) to swap with the copies outside it.

    Taking a copy at random makes a text's split as likely as a single row's: the class skew of each split holds.
    """
    def outside(split: int) -> List[int]:
        return [position for position in positions if split_of[position] != split]

    able = [position for position in positions if len(lone[split_of[position]]) >= len(outside(split_of[position]))]
    if not able:
        raise UserError(f"cannot put the {len(positions)} drawn copies of one text into one of the splits {list(sizes)}: "
                        "none has enough rows of other texts to swap with them; expected larger splits, or "
                        "--keep-duplicates to let copies fall in several splits")  # fmt: skip
    target = split_of[able[int(rng.integers(len(able)))]]
    strangers = outside(target)
    for position in strangers:
        partner = lone[target].pop()
        draws[position], draws[partner] = draws[partner], draws[position]
        lone[split_of[position]].append(position)  # the once-drawn row now sits where the copy was
    return len(strangers)


def refuse_repeated_inputs(paths: Sequence[str]) -> None:
    """Pooled inputs: a file given twice would make each of its rows a copy of itself, which no one means."""
    for later, path in enumerate(paths):
        for earlier in paths[:later]:
            if same_file(earlier, path):
                raise UserError(f"is given twice as an input (also as {earlier}); expected each file once", path)


def drop_shared_texts(paths: Sequence[str], keys: Sequence[np.ndarray], keep_duplicates: bool,
                      names: Sequence[str] = SPLIT_NAMES):
    """For the user's own split files (``paths``: the splits ``names``; ``keys``: their rows' :func:`text_keys`): per
    file, a mask of the rows to keep (those whose text no earlier file holds; all with ``keep_duplicates``), the
    duplicates report and the warnings to log, one line per pair of files sharing texts.

    Raises:
        UserError: a file that had rows and has none left: its rows all repeat the earlier files.
    """
    kept = [np.ones(len(file_keys), dtype=bool) for file_keys in keys]
    shared, notes = [], []
    for later in range(1, len(paths)):
        for earlier in range(later):
            if any(same_file(paths[first], paths[earlier]) for first in range(earlier)):
                continue  # compared already, under the name it was first given
            rows = np.isin(keys[later], keys[earlier])
            if not rows.any():
                continue
            same = same_file(paths[earlier], paths[later])
            pair = {"file": paths[later], "split": names[later], "with_file": paths[earlier],
                    "with_split": names[earlier], "rows": int(rows.sum()), "same_file": same}  # fmt: skip
            shared.append(pair)
            notes.append(_shared_note(pair, keep_duplicates))
            if not (same or keep_duplicates):  # the same file twice is deliberate: dropping would only empty it
                kept[later] &= ~rows
    for path, name, mask in zip(paths, names, kept):
        if len(mask) and not mask.any():
            earlier = ", ".join(sorted({pair["with_file"] for pair in shared if pair["file"] == path}))
            raise UserError(f"all {len(mask)} of its rows repeat texts of the earlier split file(s) {earlier}; expected "
                            f"a {name} file with texts of its own, or --keep-duplicates", path)  # fmt: skip
    _, distinct = np.unique(np.concatenate(keys), return_index=True)
    dropped = {name: int((~mask).sum()) for name, mask in zip(names, kept)}
    duplicates = {"policy": "keep" if keep_duplicates else "drop", "repeated_rows": int(sum(map(len, keys)) - len(distinct)),
                  "moved": 0, "dropped": dropped, "shared": shared}  # fmt: skip
    return kept, duplicates, notes


def _shared_note(pair: dict, keep_duplicates: bool) -> str:
    """The warning about two split files sharing texts (see :func:`drop_shared_texts`)."""
    split, earlier = pair["split"], pair["with_split"]
    if pair["same_file"]:
        return (f"{pair['file']} is both the {earlier} and the {split} file: {split} holds only texts of {earlier} "
                f"(kept whole, as given); expected separate files for a fair {split} score")  # fmt: skip
    action = "kept, as --keep-duplicates asks" if keep_duplicates else f"dropped from {split} (--keep-duplicates keeps them)"
    return f"{pair['file']} ({split}) holds {pair['rows']} row(s) whose text is in {pair['with_file']} ({earlier}): {action}"


def duplicates_line(duplicates: dict) -> str:
    """One line saying what the ``"duplicates"`` report of a dataset's stats says."""
    policy, moved, dropped = duplicates["policy"], duplicates["moved"], duplicates["dropped"]
    if policy == "group":
        done = f"each text's copies kept in one split ({moved} row(s) swapped to join theirs), none dropped"
    elif policy == "drop":
        done = (f"dropped {dropped['dev']} dev and {dropped['test']} test row(s) whose text an earlier split file holds "
                "(copies within a file stay)")
    else:
        done = "rows kept as drawn or given (--keep-duplicates)"
    return (f"duplicate texts: {duplicates['repeated_rows']} row(s) of the inputs repeat an earlier row's text; {done}; "
            f"{duplicates['texts_in_several_splits']} text(s) in more than one split")  # fmt: skip


def log_duplicates(notes: Sequence[str], duplicates: dict) -> None:
    """Log the warnings, then the report. Called once the output is written, so that a run that fails ends
    with its one error line alone, and what the log says is about files that exist."""
    for note in notes:
        logger.warning(note)
    logger.info(duplicates_line(duplicates))
