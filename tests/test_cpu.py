"""paddlenlp_fastformer.cpu: when the MKL kernel choice is changed, and that a user's choice wins."""
import pytest

from paddlenlp_fastformer import cpu

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
