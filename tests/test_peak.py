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
