import numpy as np
import pytest

from fabrec.metrics import auc, ced, failure_rate, nme, summarize


def test_nme_by_hand() -> None:
    gt = np.array([[[0.0, 0.0], [10.0, 0.0]]])
    pred = np.array([[[3.0, 4.0], [10.0, 0.0]]])  # errors 5 and 0 -> mean 2.5
    assert nme(pred, gt, np.array([50.0]))[0] == pytest.approx(5.0)


def test_failure_rate_is_strictly_above() -> None:
    assert failure_rate(np.array([10.0, 10.0001, 2.0, 30.0])) == pytest.approx(50.0)


def test_auc_by_hand() -> None:
    # errors 0, 5, 10, 20 -> contributions 1, 0.5, 0, 0 -> 1.5 / 4
    assert auc(np.array([0.0, 5.0, 10.0, 20.0])) == pytest.approx(0.375)
    assert auc(np.zeros(3)) == 1.0 and auc(np.full(3, 11.0)) == 0.0
    # exact integration agrees with a fine numerical CED integration
    e = np.random.default_rng(0).gamma(2, 2.5, 500)
    t, f = ced(e, steps=100001)
    assert auc(e) == pytest.approx(np.trapezoid(f, t) / 10.0, abs=1e-4)


def test_summary_keys() -> None:
    s = summarize(np.array([1.0, 3.0]))
    assert s == {"nme": 2.0, "fr_10": 0.0, "auc_10": pytest.approx(0.8), "count": 2}
