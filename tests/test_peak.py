"""The FMA-peak microbenchmark: a real compiled kernel, and a clear answer without a compiler."""

import shutil

import pytest

from fabrec.peak import fma_peak


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")
def test_fma_peak_is_measured_per_thread_and_in_total() -> None:
    p = fma_peak(2, seconds=0.02, reps=1)
    assert p.per_thread is not None and p.total is not None, p.note
    # at least one scalar FMA per cycle at 1 GHz; a second thread never halves the total
    assert p.per_thread > 2 and p.total > 0.5 * p.per_thread


def test_without_a_compiler_the_peak_is_reported_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    p = fma_peak(1, seconds=0.01, reps=1)
    assert p.per_thread is None and p.total is None and "compiler" in p.note


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")
def test_the_bf16_peak_counts_amx_where_the_cpu_has_it() -> None:
    from fabrec.peak import KINDS, precision_peak
    from fabrec.runtime import cpu_flags

    flags = cpu_flags()
    p = precision_peak(1, "bf16", seconds=0.01, reps=1)
    if "amx_bf16" in flags:
        dot = fma_peak(1, "bf16", seconds=0.01, reps=1)
        assert p.kind == KINDS["amx"] and p.total and dot.total and p.total > 2 * dot.total
    elif "avx512_bf16" in flags:
        assert p.kind == KINDS["bf16"] and p.total
    else:
        assert p.total is None and "avx512_bf16" in p.note
    assert precision_peak(1, "fp32", seconds=0.01, reps=1).kind == KINDS["fp32"]


def test_auto_precision_is_bf16_exactly_where_the_cpu_has_bf16_units() -> None:
    import torch

    from fabrec.runtime import cpu_bf16_units, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_bf16_units() else "fp32")
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"  # not measured against fp32 there
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
