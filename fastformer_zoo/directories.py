"""Replacing directories so that no crash, at any instant, loses what was there or leaves half of it.

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
take its place.
"""
from __future__ import annotations

import errno
import glob
import os
import shutil
import tempfile
from typing import Callable

__all__ = [
    "write_directory_atomically",
    "recover_directory",
]


COMPLETE_MARKER = ".complete"  # written last into a finished staging directory, removed once it is in place


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
    output_dir = os.path.realpath(output_dir)
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
        done.append("finished an interrupted replacement")
    if os.path.lexists(old):
        if os.path.lexists(output_dir):
            _remove(old)
        else:  # the new directory never got complete: bring the previous one back
            os.replace(old, output_dir)
            done.append("rolled back an interrupted replacement")
    if os.path.isfile(os.path.join(output_dir, COMPLETE_MARKER)):
        os.unlink(os.path.join(output_dir, COMPLETE_MARKER))
    return "; ".join(done)


def _share(directory: str) -> None:
    """Directories 0755, files 0644: mkdtemp and some writers (e.g. safetensors) create them private to their owner."""
    os.chmod(directory, 0o755)
    for root, directories, files in os.walk(directory):
        for name in directories:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def write_directory_atomically(save_fn: Callable[[str], None], output_dir: str, overwrite: bool = False) -> None:
    """Run ``save_fn(staging_dir)``, then replace ``output_dir`` by it (see the module docstring).

    A crash at any point leaves either the previous ``output_dir`` or the new one, whole, or a state
    that :func:`recover_directory` (called here first) turns into one of them. A symbolic link to a
    directory stays in place: the directory it points to is replaced.

    Raises:
        NotADirectoryError: ``output_dir`` is a file.
        FileExistsError: ``output_dir`` holds something and ``overwrite`` is false.
    """
    output_dir = os.path.realpath(output_dir)
    recover_directory(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise NotADirectoryError(f"{output_dir}: exists and is not a directory")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir}: exists and is not empty (choose another directory or overwrite)")
    new, old, tmp_prefix = _siblings(output_dir)
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f"{os.path.basename(tmp_prefix)}{os.getpid()}-", dir=os.path.dirname(output_dir))
    try:
        save_fn(staging)
        _share(staging)
        open(os.path.join(staging, COMPLETE_MARKER), "w").close()  # last: what recovery trusts
        os.replace(staging, new)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.lexists(output_dir):
        os.replace(output_dir, old)
    os.replace(new, output_dir)
    _remove(old)
    os.unlink(os.path.join(output_dir, COMPLETE_MARKER))
