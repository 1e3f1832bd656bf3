"""Graceful stop: SIGINT / SIGTERM during training set a flag; the loop saves and exits."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class TrainingInterrupted(Exception):
    """Raised by a training loop after it saved a checkpoint in answer to SIGINT/SIGTERM."""

    def __init__(self, step: int, checkpoint: str) -> None:
        super().__init__(f"stopped by signal at step {step}; checkpoint saved to {checkpoint} (rerun with --resume)")
        self.step = step


class StopFlag:
    """``requested`` turns True once SIGINT or SIGTERM arrives."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signum = signum


@contextmanager
def graceful_stop() -> Iterator[StopFlag]:
    """Install the handlers for the duration (main thread only; elsewhere a no-op flag)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old = {s: signal.signal(s, flag) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def ignore_stop_signals(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: workers ignore SIGINT/SIGTERM, so a signal sent to the
    whole process group (Ctrl-C, ``pkill``) reaches the training loop, which saves and stops,
    instead of killing a worker and crashing the loop before it can save."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
