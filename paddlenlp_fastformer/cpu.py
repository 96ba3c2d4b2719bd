"""Process-wide CPU settings that decide how fast Paddle runs, applied by :func:`tune_cpu`.

Importing the package changes none of them: the tools call :func:`tune_cpu` first thing (MKL reads
its variable at its first matrix product), and the model calls it at its first forward pass on the CPU
(:func:`tune_cpu_at_first_forward`) unless its config says ``tune_cpu=False``. Both settings are
measured in ``docs/speed.md``; ``PADDLENLP_FASTFORMER_TUNE_CPU=0`` turns both off, and a variable the
user set is never overridden.
"""
from __future__ import annotations

import ctypes
import logging
import os
import platform

__all__ = ["TUNE_SWITCH", "cpu_instruction_sets", "cpu_model_name", "switched_off", "tune_cpu_at_first_forward", "prefer_fast_mkl_kernels_on_amd", "keep_freed_memory_for_reuse", "tune_cpu"]

TUNE_SWITCH = "PADDLENLP_FASTFORMER_TUNE_CPU"
logger = logging.getLogger("paddlenlp_fastformer")
_warned: set = set()  # the switches whose odd value was warned about
_applied: dict = {}  # what tune_cpu applied, once it ran (by the tools' explicit call or the model's first forward)
_GLIBC_MALLOC_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)


def _cpu_info() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return handle.read(65536)
    except OSError:  # not Linux: leave MKL's own choice alone
        return ""


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` reports."""
    for line in _cpu_info().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


# The vector and matrix instruction sets that decide which engine and precision run fastest, in /proc/cpuinfo's names.
INSTRUCTION_SETS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_instruction_sets() -> list:
    """Which of ``INSTRUCTION_SETS`` this CPU has (empty where /proc/cpuinfo is not readable)."""
    for line in _cpu_info().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [name for name in INSTRUCTION_SETS if name in flags]
    return []


def prefer_fast_mkl_kernels_on_amd() -> bool:
    """Let the MKL bundled with Paddle use its AVX2 kernels on AMD CPUs; returns whether it was set.

    That MKL dispatches by vendor and gives AMD CPUs a generic code path; ``MKL_DEBUG_CPU_TYPE=5``
    selects its AVX2 kernels (about 2.5x the matrix-product throughput on the AMD EPYC machines of
    ``docs/speed.md``). MKL reads the variable at its first call, so this must run before any matrix
    product. It is only set on AMD CPUs that have AVX2, and never over a value the user chose.
    """
    info = _cpu_info()
    if "AuthenticAMD" not in info or " avx2" not in info or "MKL_DEBUG_CPU_TYPE" in os.environ:
        return False
    os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    return True


def keep_freed_memory_for_reuse() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of giving it back; returns whether it did.

    Paddle's CPU allocator takes every tensor from malloc and frees it when the tensor dies. glibc
    serves large blocks (128 KiB and up, the bar rising to 32 MiB as blocks are freed) by ``mmap``
    and unmaps them on free, so each new activation is fresh memory that page-faults on first touch
    (``docs/speed.md`` measures what that costs; PyTorch's caching allocator avoids it). Here malloc
    stops using ``mmap`` and trims its heap only beyond 1 GiB free, so the process keeps its peak
    footprint (as a caching allocator does). Only with glibc, and not when the user set any
    ``MALLOC_*`` tuning variable.
    """
    if any(name in os.environ for name in _GLIBC_MALLOC_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


OFF_VALUES, ON_VALUES = ("0", "false", "off", "no"), ("1", "true", "on", "yes", "")


def switched_off(variable: str) -> bool:
    """Whether the environment ``variable`` (a switch that is on by default) says off: 0, false, off or no, in any
    case; a value that is neither is warned about once and counts as on."""
    value = os.environ.get(variable, "1").strip().lower()
    if value not in OFF_VALUES + ON_VALUES and variable not in _warned:
        _warned.add(variable)
        logger.warning("%s=%r: expected 0 or 1 (off or on); taking it as on", variable, os.environ[variable])
    return value in OFF_VALUES


def tune_cpu() -> dict:
    """Apply both settings unless ``PADDLENLP_FASTFORMER_TUNE_CPU=0``; returns which took effect."""
    if switched_off(TUNE_SWITCH):
        applied = {"mkl_avx2_on_amd": False, "malloc_keeps_memory": False}
    else:
        applied = {"mkl_avx2_on_amd": prefer_fast_mkl_kernels_on_amd(), "malloc_keeps_memory": keep_freed_memory_for_reuse()}
    _applied.update(applied)
    return applied


def tune_cpu_at_first_forward() -> None:
    """:func:`tune_cpu` from the model's first forward pass on the CPU, unless it ran already; says so once in the log.

    Code that never calls :func:`tune_cpu` (PaddleNLP's Trainer, a notebook) then still runs at the speed the
    tools do (``docs/speed.md``). MKL reads its variable at its first matrix product, so where one ran before the
    model's first forward that part cannot take effect; calling :func:`tune_cpu` first thing is the sure way.
    ``PADDLENLP_FASTFORMER_TUNE_CPU=0`` or ``FastformerConfig(tune_cpu=False)`` leaves Paddle's defaults alone.
    """
    if _applied:  # tune_cpu() ran already: the tools' call, or an earlier forward
        return
    applied = [name for name, done in tune_cpu().items() if done]
    if applied:
        logger.info("CPU tuning applied at the model's first forward: %s (%s=0 or config.tune_cpu=False to keep Paddle's "
                    "defaults; docs/speed.md)", ", ".join(applied), TUNE_SWITCH)  # fmt: skip
