"""paddlenlp_fastformer.cpu: when the MKL kernel choice is changed, and that a user's choice wins."""
import os
import subprocess
import sys

import pytest

from paddlenlp_fastformer import cpu
from paddlenlp_fastformer.cpu import TUNE_SWITCH

AMD = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n"
AMD_WITHOUT_AVX2 = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx\n"
INTEL = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx avx2 fma\n"


@pytest.mark.parametrize("info, expected", [(AMD, "5"), (AMD_WITHOUT_AVX2, None), (INTEL, None), ("", None)])
def test_set_only_on_amd_with_avx2(monkeypatch, info, expected):
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    monkeypatch.setattr(cpu, "_cpu_info", lambda: info)
    assert cpu.prefer_fast_mkl_kernels_on_amd() is (expected is not None)
    assert cpu.os.environ.get("MKL_DEBUG_CPU_TYPE") == expected


def test_user_value_is_kept(monkeypatch):
    monkeypatch.setenv("MKL_DEBUG_CPU_TYPE", "2")
    monkeypatch.setattr(cpu, "_cpu_info", lambda: AMD)
    assert cpu.prefer_fast_mkl_kernels_on_amd() is False
    assert cpu.os.environ["MKL_DEBUG_CPU_TYPE"] == "2"


def test_malloc_is_left_alone_when_the_user_tuned_it(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert cpu.keep_freed_memory_for_reuse() is False


def test_malloc_keeps_freed_memory_on_glibc(monkeypatch):
    for name in cpu._GLIBC_MALLOC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert cpu.keep_freed_memory_for_reuse() is True  # these machines run glibc


def test_switch_turns_all_tuning_off(monkeypatch):
    monkeypatch.setenv(cpu.TUNE_SWITCH, "0")
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    assert cpu.tune_cpu() == {"mkl_avx2_on_amd": False, "malloc_keeps_memory": False}
    assert "MKL_DEBUG_CPU_TYPE" not in cpu.os.environ


_FIRST_FORWARD = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
import paddle
from paddlenlp_fastformer import FastformerConfig, FastformerModel
config = FastformerConfig(vocab_size=50, hidden_size=16, num_attention_heads=2, intermediate_size=32, tune_cpu=sys.argv[1] == "1")
model = FastformerModel(config)
assert "MKL_DEBUG_CPU_TYPE" not in os.environ  # building the model changes nothing process-wide
for _ in range(2):
    model(paddle.to_tensor([[5, 6, 7, 0]]))
print("MKL_DEBUG_CPU_TYPE", os.environ.get("MKL_DEBUG_CPU_TYPE"))
"""


@pytest.mark.parametrize("config_tunes, switch", [(True, None), (False, None), (True, "0")])
def test_the_first_cpu_forward_tunes_unless_told_not_to(config_tunes, switch):
    """A library user who never calls tune_cpu() gets it at the model's first CPU forward, said once in the log."""
    env = {key: value for key, value in os.environ.items() if key not in ("MKL_DEBUG_CPU_TYPE", TUNE_SWITCH)}
    if switch is not None:
        env[TUNE_SWITCH] = switch
    run = subprocess.run([sys.executable, "-c", _FIRST_FORWARD, "1" if config_tunes else "0"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    said = run.stderr.count("CPU tuning applied at the model's first forward")
    info = cpu._cpu_info()
    amd_with_avx2 = "AuthenticAMD" in info and " avx2" in info
    tunes = config_tunes and switch is None
    assert said == (1 if tunes else 0), run.stderr[-2000:]
    assert run.stdout.strip().endswith("5" if tunes and amd_with_avx2 else "None")
