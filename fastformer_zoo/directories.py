"""Writing outputs so that nothing already there is lost: no crash, at any instant, loses a directory or
leaves half of it; no two writers both succeed in filling one directory; no output lands on an input.

A directory
(a checkpoint, an export, a prepared dataset) is replaced in steps that can each be interrupted,
with names that say where the replacement stood, so that :func:`recover_directory` can finish or
roll it back on the next start:

1. ``.NAME.tmp-PID-XXXX``: the new directory being written (a leftover is deleted once PID is dead);
2. ``.NAME.new``: the new directory, complete (renamed from 1 in one step, with a ``.complete``
   marker written last inside it, so that recovery never trusts anything else under that name);
3. ``.NAME.old``: the previous directory, moved aside;
4. ``NAME``: the new directory, renamed from 2; then 3 is deleted.

Whenever ``NAME`` is missing, a complete ``.NAME.new`` or the previous ``.NAME.old`` is there to
take its place. Steps 2 to 4, recovery and the check that ``NAME`` may be replaced happen under a lock
(``.NAME.lock``, removed when released), so that what was checked still holds when the directory is swapped.

A command that writes ``NAME`` repairs an interrupted replacement first and says so in one log line. A
``NAME`` that the repair has just completed holds what the interrupted command wrote, which its user never
saw finish: the command that repaired it may replace it without being told to overwrite (as the interrupted
one was about to), where refusing would leave the user stuck on a state they never asked for.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import itertools
import logging
import os
import re
import shutil
import tempfile
from typing import Callable, Iterable, Iterator, Mapping, Optional, Tuple

from .errors import UserError, one_line

__all__ = [
    "write_directory_atomically",
    "recover_directory",
    "check_output_directory",
    "check_output_files",
    "same_file",
]


COMPLETE_MARKER = ".complete"  # written last into a finished staging directory, removed once it is in place

logger = logging.getLogger("fastformer_zoo")

# The identity (:func:`_identity`) of each directory this process's recovery completed, by path: the one
# command that repaired it may replace it without overwrite (see the module docstring).
_completed_by_recovery: dict = {}


def _siblings(output_dir: str) -> tuple:
    parent, name = os.path.split(output_dir)
    return os.path.join(parent, f".{name}.new"), os.path.join(parent, f".{name}.old"), os.path.join(parent, f".{name}.tmp-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def _remove(path: str) -> None:
    """Delete a file, a symbolic link (not what it points to) or a directory tree."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def _is_complete(path: str) -> bool:
    """Whether ``path`` is a staging directory that a writer finished (it holds the marker written last)."""
    return os.path.isdir(path) and not os.path.islink(path) and os.path.isfile(os.path.join(path, COMPLETE_MARKER))


def recover_directory(output_dir: str) -> str:
    """Finish or roll back an interrupted replacement of ``output_dir``; remove dead writers' leftovers.

    A ``.NAME.new`` counts only if its writer finished it (the marker inside); anything else under
    the staging names is removed. Returns what it did ("" when there was nothing to do), for the log.
    """
    return _locked_recovery(str(output_dir), log=False)


def _locked_recovery(given: str, log: bool) -> str:
    target = os.path.realpath(given)
    if not os.path.isdir(os.path.dirname(target)):
        return ""  # no folder, so no replacement was ever started there
    try:
        with _replacement_lock(target, given):
            return _recover_and_log(target, given) if log else _recover(target)
    except OSError as error:
        raise _cannot_write(given, target, error) from None


def _recover(output_dir: str) -> str:
    """:func:`recover_directory` of a resolved path, whose lock the caller holds."""
    new, old, tmp_prefix = _siblings(output_dir)
    done = []
    for leftover in glob.glob(glob.escape(tmp_prefix) + "*"):
        pid = leftover[len(tmp_prefix):].split("-", 1)[0]
        if not (pid.isdigit() and _alive(int(pid))):
            _remove(leftover)
            done.append(f"removed the unfinished {os.path.basename(leftover)}")
    if os.path.lexists(new) and not _is_complete(new):
        _remove(new)
        done.append(f"removed {os.path.basename(new)}, which no writer finished")
    if os.path.lexists(new):  # complete and newer than output_dir: finish the replacement
        if os.path.lexists(output_dir):
            if os.path.lexists(old):
                _remove(old)
            os.replace(output_dir, old)
        os.replace(new, output_dir)
        done.append(f"finished an interrupted replacement (put the complete {os.path.basename(new)} in its place)")
    if os.path.lexists(old):
        if os.path.lexists(output_dir):
            _remove(old)
        else:  # the new directory never got complete: bring the previous one back
            os.replace(old, output_dir)
            done.append(f"rolled back an interrupted replacement (put the previous {os.path.basename(old)} back)")
    if os.path.isfile(os.path.join(output_dir, COMPLETE_MARKER)):
        os.unlink(os.path.join(output_dir, COMPLETE_MARKER))
    if any(action.startswith("finished") for action in done):
        _completed_by_recovery[output_dir] = _identity(output_dir)
    return "; ".join(done)


def _identity(path: str) -> tuple:
    """What tells a directory apart from one put in its place later, or changed since (its ctime moves with both)."""
    held = os.stat(path, follow_symlinks=False)
    return held.st_dev, held.st_ino, held.st_ctime_ns


def _recover_and_log(target: str, given: str) -> str:
    """:func:`_recover` (the caller holds the lock), saying what it did in one line naming ``given``."""
    done = _recover(target)
    if done:
        logger.warning("%s: %s", given, done)
    return done


def _completed_here(target: str) -> bool:
    """Whether ``target`` is still the very directory this process's recovery completed (not one put there since)."""
    try:
        return _completed_by_recovery.get(target) == _identity(target)
    except OSError:
        return False


@contextlib.contextmanager
def _replacement_lock(target: str, given: str) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``target`` exclusively (the kernel's flock, which ends with the process).

    The file is deleted while still held, so that none is left behind: a writer that was waiting on
    it then finds that the name no longer leads to the file it locked, and takes the lock anew.
    """
    path = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.lock")
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as error:
            if os.path.lexists(path):
                raise UserError(f"cannot be used as the lock of {given} ({error.strerror}); expected a regular file "
                                "or nothing there", path) from None  # fmt: skip
            raise OSError(error.errno, error.strerror) from None  # not the lock's name: the folder cannot be written
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            held = os.fstat(descriptor)
            named = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:  # its holder deleted it as it let go: try again with a new one
            os.close(descriptor)
            continue
        except BaseException:
            os.close(descriptor)
            raise
        if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
            break
        os.close(descriptor)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(descriptor)


def _share(directory: str) -> None:
    """Directories 0755, files 0644: mkdtemp and some writers (e.g. safetensors) create them private to their owner."""
    os.chmod(directory, 0o755)
    for root, directories, files in os.walk(directory):
        for name in directories:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def write_directory_atomically(
    save_fn: Callable[[str], None], output_dir: str, overwrite: bool = False, through_link: bool = True
) -> None:
    """Run ``save_fn(staging_dir)``, then replace ``output_dir`` by it (see the module docstring).

    A crash at any point leaves either the previous ``output_dir`` or the new one, whole, or a state
    that :func:`recover_directory` (called here first) turns into one of them. Whether ``output_dir``
    may be replaced is checked before ``save_fn`` runs and again, under the lock, when it is swapped in:
    of writers racing to fill one directory without ``overwrite``, one succeeds and the others fail.
    A symbolic link to a directory stays in place and the directory it points to is replaced, unless
    ``through_link`` is false (a directory whose place is fixed, e.g. a run's checkpoint): then a link
    there is refused.

    Raises:
        UserError: ``output_dir`` is a file, a refused link, or holds something and ``overwrite`` is false;
            or it cannot be written (the message names ``output_dir``, never a staging name beside it).
    """
    given = str(output_dir)
    absolute = os.path.abspath(output_dir)
    # Without links followed, only the folders above are resolved: the name itself is what gets replaced.
    parent, name = os.path.split(absolute)
    target = os.path.realpath(absolute) if through_link else os.path.join(os.path.realpath(parent), name)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with _replacement_lock(target, given):
            _recover_and_log(target, given)
            _check_replaceable(target, given, overwrite or _completed_here(target))
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-{os.getpid()}-", dir=os.path.dirname(target))
        try:
            save_fn(staging)
            _share(staging)
            open(os.path.join(staging, COMPLETE_MARKER), "w").close()  # last: what recovery trusts
            with _replacement_lock(target, given):
                _recover_and_log(target, given)
                # again: another writer may have filled it meanwhile (then it is no longer what recovery completed)
                _check_replaceable(target, given, overwrite or _completed_here(target))
                _swap(staging, target)
                _completed_by_recovery.pop(target, None)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as error:
        raise _cannot_write(given, target, error) from None


def _check_replaceable(target: str, given: str, overwrite: bool) -> None:
    """Refuse to replace ``target`` now (``given`` is how the user named it); a link reaches here only where
    links are not followed."""
    if os.path.islink(target):
        raise UserError(f"is a symbolic link (to {os.readlink(target)}); expected a directory of its own, which is "
                        "never replaced through a link", given)  # fmt: skip
    if os.path.exists(target) and not os.path.isdir(target):
        raise UserError("exists and is not a directory; expected a folder (or nothing) there", given)
    if os.path.isdir(target) and os.listdir(target) and not overwrite:
        raise UserError("exists and is not empty (another writer may have just filled it); expected an empty or new "
                        "folder: choose another one, or overwrite", given)  # fmt: skip


def _swap(staging: str, target: str) -> None:
    """Steps 2 to 4 of the module docstring; the caller holds the lock."""
    new, old, _ = _siblings(target)
    os.replace(staging, new)
    if os.path.lexists(target):
        os.replace(target, old)
    os.replace(new, target)
    _remove(old)
    os.unlink(os.path.join(target, COMPLETE_MARKER))


# What the user can do about a write that failed, by the system's reason.
_WRITE_HINTS = {
    errno.ENOSPC: "expected free space on its disk",
    errno.EDQUOT: "expected room in the disk quota",
    errno.EFBIG: "expected files of this size to be allowed there (a file-size limit stopped it)",
    errno.EACCES: "expected a folder this user can write",
    errno.EPERM: "expected a folder this user can write",
    errno.EROFS: "expected a folder on a writable file system",
    errno.EEXIST: "expected folders all along its path (a file stands in the way)",
    errno.ENOTDIR: "expected folders all along its path (a file stands in the way)",
}


def _cannot_write(given: str, target: str, error: OSError) -> UserError:
    """One line naming the directory as the user gave it, never the staging names beside it, and why it failed."""
    staging_names = re.compile(re.escape(os.path.join(os.path.dirname(target), f".{os.path.basename(target)}."))
                               + r"(?:tmp-[^/'\"\s]*|new|old)(?=$|[/'\"\s])")  # fmt: skip
    detail = staging_names.sub(given, error.strerror or one_line(error))
    where = staging_names.sub(given, str(error.filename)) if error.filename else given
    if not detail.startswith("cannot write "):  # write_bytes_atomically's errors already name their file
        detail = f"cannot write {given}: {detail}" if where == given else f"cannot write {given}: {where}: {detail}"
    hint = _WRITE_HINTS.get(error.errno)
    return UserError(f"{detail}; {hint}" if hint else detail)


# ----------------------------------------------------------------------------------------------
# what a command may write over: never an input, never another output
# ----------------------------------------------------------------------------------------------
def check_output_directory(
    output_dir, overwrite: bool, what: str, marker: str, inputs: Iterable = (), foreign: Iterable[str] = ()
) -> None:
    """Refuse, before any reading, a folder ``output_dir`` for ``what`` (e.g. "dataset") that is a file, that holds
    files without ``overwrite``, that holds files but no earlier ``what`` (its ``marker`` file, e.g. stats.json, and
    none of the ``foreign`` files another kind of folder with the same marker holds, e.g. a dataset's label.txt
    in a folder a corpus would replace), or that holds one of the ``inputs``, which replacing it would delete. (:func:`write_directory_atomically`
    checks again when it swaps the folder in.) An interrupted replacement of the folder is repaired first, and
    the repaired folder judged; one that the repair completed is replaceable (see the module docstring)."""
    given = str(output_dir)
    _locked_recovery(given, log=True)
    if os.path.exists(given) and not os.path.isdir(given):
        raise UserError(f"exists and is not a directory; expected a folder for the {what}", given)
    if not os.path.isdir(given) or not os.listdir(given):
        return
    if not overwrite and not _completed_here(os.path.realpath(given)):
        raise UserError(f"already holds files; pass --overwrite to replace the {what} there", given)
    if not os.path.isfile(os.path.join(given, marker)):
        raise UserError(f"holds files but no earlier {what} ({marker}); choose a new or empty folder", given)
    others = [name for name in foreign if os.path.exists(os.path.join(given, name))]
    if others:
        raise UserError(f"holds {', '.join(others)}, which no {what} has: it is another kind of folder, and replacing it would "
                        "delete them; choose a new or empty folder", given)  # fmt: skip
    for path in inputs:
        if _inside(str(path), given):
            raise UserError(f"the input {path} lies inside it and would be deleted; choose another folder", given)


def check_output_files(outputs: Mapping[str, Optional[str]], inputs: Iterable[Tuple[str, Optional[str]]]) -> None:
    """Refuse, before any work, an output file that cannot be written or whose writing would lose something.

    ``outputs`` maps how the user named each output (a key such as ``Global.predictions_file``, a flag such as
    ``--save_log_path``) to its path, None where not asked for; ``inputs`` are (name, path) pairs of what the
    command reads, files or directories. An output is refused where it is a directory, where its folder is a
    file, where it is an input (the same file however it is spelt, links and hard links included) or lies
    inside an input directory, and where another output is the same file.
    """
    given = [(name, str(path)) for name, path in outputs.items() if path]
    for name, path in given:
        if os.path.isdir(path):
            raise UserError(f"{_named(name, path)} is a directory; expected a file path")
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise UserError(f"{_named(name, path)}: {parent} is not a directory; expected a file path in a folder")
        for source, read in inputs:
            if read and same_file(path, str(read)):
                raise UserError(f"{_named(name, path)} is {_named(source, read)}, which this command reads; expected "
                                "an output path apart from the inputs (writing it would destroy that file)")  # fmt: skip
            if read and _inside(path, str(read)):
                raise UserError(f"{_named(name, path)} lies inside {_named(source, read)}, which this command reads; "
                                "expected an output path outside it")  # fmt: skip
    for (name, path), (other, other_path) in itertools.combinations(given, 2):
        if same_file(path, other_path):
            raise UserError(f"{_named(name, path)} and {_named(other, other_path)} are the same file; expected one file "
                            "per output")  # fmt: skip


def _named(name: str, path: str) -> str:
    """A setting as the user wrote it (``Global.predictions_file='p.jsonl'``), a flag or a description followed by its path."""
    if "." in name and " " not in name and not name.startswith("-"):
        return f"{name}={str(path)!r}"
    return f"{name} {path}"


def same_file(path: str, other: str) -> bool:
    """Whether two paths name one file (links resolved); False where either does not exist."""
    if os.path.realpath(path) == os.path.realpath(other):
        return True
    try:
        return os.path.samefile(path, other)
    except OSError:  # one of them does not exist (yet)
        return False


def _inside(path: str, directory: str) -> bool:
    """Whether ``path`` lies (however deep) inside the existing ``directory``, links resolved."""
    return os.path.isdir(directory) and os.path.realpath(path).startswith(os.path.join(os.path.realpath(directory), ""))
