"""CPU settings that decide how fast Paddle runs on this hardware."""
from __future__ import annotations

import os

__all__ = ["prefer_fast_mkl_kernels_on_amd"]


def _cpu_info() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return handle.read(65536)
    except OSError:  # not Linux: leave MKL's own choice alone
        return ""


def prefer_fast_mkl_kernels_on_amd() -> bool:
    """Let the MKL bundled with Paddle use its AVX2 kernels on AMD CPUs; returns whether it was set.

    That MKL dispatches by vendor and gives AMD CPUs a generic code path: on this project's AMD EPYC
    machines a 2048^3 fp32 matmul ran at 72.6 GFLOP/s on 2 threads by default and at 184.2 with
    ``MKL_DEBUG_CPU_TYPE=5``, which selects the AVX2 kernels (torch: 176.3). MKL reads the variable
    at its first call, so it is set on import, before any matrix product. It is only set on AMD CPUs
    that have AVX2, and never over a value the user chose.
    """
    info = _cpu_info()
    if "AuthenticAMD" not in info or " avx2" not in info or "MKL_DEBUG_CPU_TYPE" in os.environ:
        return False
    os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    return True
