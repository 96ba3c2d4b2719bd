"""Building and loading the C++ library of ``csrc/fastformer_cpu_ops.cc``.

The library is compiled with ``paddle.utils.cpp_extension`` (g++, OpenMP, ``-march=native``) into
``~/.cache/paddlenlp_fastformer/`` on first use, or ahead of time with
``python -m paddlenlp_fastformer.kernels``. The build directory is keyed by what the library depends
on: the source, the compiler flags, the Paddle installation (its version and where its headers and
libraries are) and the CPU. Every checkout of the package with the same Paddle installation shares one
build; a changed source, another Paddle installation (a venv of its own) or another machine builds afresh,
once. A build that fails (no compiler, say) is logged once and the model runs on the pure-Paddle
reference ops.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import sysconfig
from pathlib import Path

from ..cpu import cpu_model_name
from ..file_utils import cache_directory, output_redirected_to, write_bytes_atomically

__all__ = ["SOURCE", "build_directory", "build", "load"]

logger = logging.getLogger("paddlenlp_fastformer")

SOURCE = Path(__file__).with_name("csrc") / "fastformer_cpu_ops.cc"
LIBRARY_NAME = "fastformer_cpu_ops"
CHECKSUM_FILE = "library.sha256"  # of the built library, recorded once it loaded
CXX_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno"]
_state = {"library": None, "failed": False}


def _paddle_libraries() -> Path:
    """The libraries of the Paddle installation this process imported, as Paddle's extension builder names them."""
    import paddle

    return Path(paddle.__file__).parent / "libs"


def _link_flags() -> list:
    # Paddle's own OpenMP runtime (Intel's, which also serves GCC's OpenMP calls), so that the kernels follow
    # paddle's thread setting; libmvec for vectorised erf and exp.
    libraries = _paddle_libraries()
    return [f"-L{libraries}", "-l:libiomp5.so", f"-Wl,-rpath,{libraries}", "-lmvec"]


def build_directory() -> Path:
    """Where the library of this source and flags, this Paddle installation and this CPU is (or will be) built.

    Not keyed by where the package is: Paddle's builder rebuilds whenever the paths it was given change, so it
    compiles a copy of the source inside this directory (:func:`_staged_source`), the same path for every
    checkout. Keyed by the Paddle installation's path, as its headers, libraries and the library's run path
    are there: two environments with their own Paddle each build once, instead of rebuilding over each other.
    """
    import paddle

    parts = [" ".join(CXX_FLAGS + _link_flags()), paddle.__version__, sysconfig.get_path("include"), cpu_model_name()]
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), *(part.encode() for part in parts)])).hexdigest()[:16]
    return cache_directory() / f"cpu_ops-{key}"


def _staged_source(directory: Path) -> Path:
    """The source copied into ``directory``, written only where it differs: an untouched copy keeps its time,
    which the builder compares with the library's to decide whether to compile."""
    staged = directory / SOURCE.name
    source = SOURCE.read_bytes()
    if not staged.is_file() or staged.read_bytes() != source:
        write_bytes_atomically(staged, source)
    return staged


def build():
    """Compile (once per source, Paddle installation and CPU) and load the kernels; returns the op module."""
    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    # Processes started together (data-parallel ranks, test workers) must not compile into one directory at once.
    # Paddle's extension builder logs each step and warns that ccache is missing: none of it helps a user.
    with open(directory / ".lock", "w") as lock, output_redirected_to(directory / "build.log"):
        fcntl.flock(lock, fcntl.LOCK_EX)
        from paddle.utils.cpp_extension import load as load_extension

        library_file = directory / LIBRARY_NAME / f"{LIBRARY_NAME}.so"
        checksum_file = directory / CHECKSUM_FILE
        if _matches_checksum(library_file, checksum_file):
            module = _import_recorded(directory)
            if module is not None:
                return module
        elif library_file.exists():
            # A truncated or damaged library would crash the process when loaded (a bus error): build afresh.
            shutil.rmtree(library_file.parent, ignore_errors=True)
            checksum_file.unlink(missing_ok=True)
        module = load_extension(
            name=LIBRARY_NAME,
            sources=[str(_staged_source(directory))],
            extra_cxx_cflags=list(CXX_FLAGS),
            extra_ldflags=_link_flags(),
            build_directory=str(directory),
            verbose=False,
        )
        if not _matches_checksum(library_file, checksum_file):
            checksum_file.write_text(_sha256(library_file) + "\n")
        return module


def _import_recorded(directory: Path):
    """The op module of the library ``directory`` holds and recorded after its build, loaded without the builder;
    None if that fails (the builder then decides).

    Paddle's builder finds an up-to-date library by running ``setup.py build`` in a new Python process, about 2 s
    at every process start; the directory's name already keys the source, flags, Paddle and CPU, and the checksum
    vouches for the file. The loader is Paddle's own (private, so any failure falls back to the builder).
    """
    try:
        from paddle.utils.cpp_extension.extension_utils import _import_module_from_library

        return _import_module_from_library(LIBRARY_NAME, str(directory / LIBRARY_NAME), False)
    except Exception:  # noqa: BLE001 - another Paddle's loader: the builder below still works
        return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _matches_checksum(library_file: Path, checksum_file: Path) -> bool:
    """Whether the built library is the one recorded after its build (a missing record counts as not)."""
    try:
        return library_file.is_file() and checksum_file.read_text().strip() == _sha256(library_file)
    except OSError:
        return False


def load():
    """The op module, built on first call; None (after one logged warning) where it cannot be built."""
    if _state["library"] is None and not _state["failed"]:
        try:
            _state["library"] = build()
        except Exception as error:  # a missing compiler must not stop training: the reference ops remain
            _state["failed"] = True
            log = build_directory() / "build.log"
            logger.warning(
                "fused CPU kernels unavailable, using the pure-Paddle ops: %s (build log: %s)",
                " ".join(str(error).split())[:300],
                log,
            )
    return _state["library"]
