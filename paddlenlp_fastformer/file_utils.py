"""Writing files and directories so that readers never see them half-written."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from typing import Callable, Iterator

__all__ = ["write_directory_atomically", "write_text_atomically", "output_redirected_to"]


def write_directory_atomically(save_fn: Callable[[str], None], output_dir: str, overwrite: bool = False) -> None:
    """Run ``save_fn(tmp_dir)`` and move the finished directory to ``output_dir`` in one rename.

    An interrupted or failed save leaves no half-written ``output_dir``; a previous one is kept until
    the new one is complete.
    """
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise NotADirectoryError(f"{output_dir}: exists and is not a directory")
    if os.path.exists(output_dir) and os.listdir(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir}: exists and is not empty (choose another directory or overwrite)")
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.", dir=parent)
    try:
        save_fn(staging)
        # mkdtemp makes the directory private to its owner; checkpoints and exports are meant to be shared.
        os.chmod(staging, 0o755)
        if os.path.exists(output_dir):
            retired = staging + ".old"
            os.replace(output_dir, retired)
            os.replace(staging, output_dir)
            shutil.rmtree(retired)
        else:
            os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text_atomically(path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) so that readers see the old file or the whole new one.

    A temporary file in the same directory is flushed to disk and renamed over ``path``.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8"))
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private to its owner; what we write (data, vocabularies) is meant to be shared.
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise


@contextlib.contextmanager
def output_redirected_to(log_path) -> Iterator[None]:
    """Send everything printed meanwhile to ``log_path``: Python's output and warnings, and that of C++
    code and subprocesses (file descriptors 1 and 2 are redirected), which ``contextlib.redirect_stdout``
    would not catch. For third-party steps whose chatter would flood a tool's console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "wb") as log, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
