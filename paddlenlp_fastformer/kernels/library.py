"""Building and loading the C++ library of ``csrc/fastformer_cpu_ops.cc``.

The library is compiled with ``paddle.utils.cpp_extension`` (g++, OpenMP, ``-march=native``) into
``~/.cache/paddlenlp_fastformer/`` on first use, or ahead of time with
``python -m paddlenlp_fastformer.kernels``. The build directory is keyed by the source, the Paddle
version and the CPU, so a changed file or another machine builds afresh. A build that fails (no
compiler, say) is logged once and the model runs on the pure-Paddle reference ops.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
from pathlib import Path

from ..cpu import cpu_model_name
from ..file_utils import output_redirected_to

__all__ = ["SOURCE", "build_directory", "build", "load"]

logger = logging.getLogger("paddlenlp_fastformer")

SOURCE = Path(__file__).with_name("csrc") / "fastformer_cpu_ops.cc"
LIBRARY_NAME = "fastformer_cpu_ops"
CHECKSUM_FILE = "library.sha256"  # of the built library, recorded once it loaded
_state = {"library": None, "failed": False}


def build_directory() -> Path:
    """Where the library of this source, Paddle version and CPU is (or will be) built."""
    import paddle

    key = hashlib.sha256(
        b"\0".join([SOURCE.read_bytes(), paddle.__version__.encode(), cpu_model_name().encode()])
    ).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "paddlenlp_fastformer"
    return root / f"cpu_ops-{key}"


def build():
    """Compile (once per source, Paddle version and CPU) and load the kernels; returns the op module."""
    import paddle

    paddle_libs = Path(paddle.__file__).parent / "libs"
    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    # Processes started together (data-parallel ranks, test workers) must not compile into one directory at once.
    # Paddle's extension builder logs each step and warns that ccache is missing: none of it helps a user.
    with open(directory / ".lock", "w") as lock, output_redirected_to(directory / "build.log"):
        fcntl.flock(lock, fcntl.LOCK_EX)
        from paddle.utils.cpp_extension import load as load_extension

        library_file = directory / LIBRARY_NAME / f"{LIBRARY_NAME}.so"
        checksum_file = directory / CHECKSUM_FILE
        if library_file.exists() and not _matches_checksum(library_file, checksum_file):
            # A truncated or damaged library would crash the process when loaded (a bus error): build afresh.
            shutil.rmtree(library_file.parent, ignore_errors=True)
            checksum_file.unlink(missing_ok=True)
        module = load_extension(
            name=LIBRARY_NAME,
            sources=[str(SOURCE)],
            extra_cxx_cflags=["-O3", "-march=native", "-fopenmp", "-fno-math-errno"],
            # Paddle's own OpenMP runtime (Intel's, which also serves GCC's OpenMP calls), so that the
            # kernels follow paddle's thread setting; libmvec for vectorised erf and exp.
            extra_ldflags=[f"-L{paddle_libs}", "-l:libiomp5.so", f"-Wl,-rpath,{paddle_libs}", "-lmvec"],
            build_directory=str(directory),
            verbose=False,
        )
        if not _matches_checksum(library_file, checksum_file):
            checksum_file.write_text(_sha256(library_file) + "\n")
        return module


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
