"""Writing files so that no crash, at any instant, loses what was there or leaves half of it: a file is
written to a temporary name beside it, flushed to disk and renamed over the old one."""
from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

__all__ = ["cache_directory", "write_text_atomically", "write_bytes_atomically", "output_redirected_to"]


def cache_directory() -> Path:
    """Where the package keeps what it builds or measures once per machine (compiled kernels, engine timings):
    ``$XDG_CACHE_HOME/paddlenlp_fastformer``, by default ``~/.cache/paddlenlp_fastformer`` (also where the variable
    holds a relative path, which the XDG base directory specification says to ignore)."""
    root = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(root) if os.path.isabs(root) else Path.home() / ".cache") / "paddlenlp_fastformer"


def write_bytes_atomically(path, data: bytes) -> None:
    """Write ``data`` so that readers see the old file or the whole new one.

    A temporary file in the same directory is flushed to disk and renamed over ``path``.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory; expected a file path", path)
        _write_via_temporary(path, directory, data)
    except OSError as error:  # name the file the user asked for, not the temporary one beside it
        raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from None


def _write_via_temporary(path: str, directory: str, data: bytes) -> None:
    handle, staging = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private to its owner; what we write (data, vocabularies) is meant to be shared.
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise


def write_text_atomically(path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) so that readers see the old file or the whole new one."""
    write_bytes_atomically(path, text.encode("utf-8"))


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
