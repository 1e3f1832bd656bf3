"""The shared AFLW2000-3D half's parts and yaw bins, light (no PyTorch): the held-out 30 % by a
stable hash of ``aflw2000/<stem>`` (``fabrec.splits.is_validation``) and the |yaw| bins every
pose table uses."""

from __future__ import annotations

from fabrec.splits import is_validation

HELD_OUT_PERMILLE = 300
BINS = ((0, 30), (30, 60), (60, 90))


def aflw_held_out(stem: str) -> bool:
    """Whether an AFLW2000-3D photo is in the held-out part (about 30 %, stable by name)."""
    return is_validation(f"aflw2000/{stem}", HELD_OUT_PERMILLE)


def bin_of(yaw: float) -> str:
    """The |yaw| bin of a pose, ``"0-30"``, ``"30-60"`` or ``"60-90"`` (90 and past in the last)."""
    a = abs(yaw)
    return next(f"{lo}-{hi}" for lo, hi in BINS if a < hi or hi == 90)
