"""The one training loop both stages run: steps, signals, deadlines, non-finite skips,
validation and checkpoint cadence, the run folder's config and metrics.

A trainer supplies what differs between the stages (:class:`Trainer`): its step, when its
validation is due and what it measures, when its current phase ends (the landmark stage's ITL
phase hands over to encoder finetuning), how a metrics line looks, and how it saves itself.
The loop decides everything else, the same way for both:

0. continue from the run folder's ``last.pt`` (:func:`resume_state`; the trainer restores
   its own parts from it) and write its ``config.yaml`` (:func:`start_run_folder`);
1. run the step; a non-finite loss raises unless ``on_nonfinite == "skip"`` (then the batch is
   skipped with a note, the weights unchanged);
2. write the trainer's metrics line, if it has one for this step;
3. validate when due, when the phase ends or when the time is up;
4. move to the next phase when the current one ends in time;
5. save every ``checkpoint_every`` steps, after a validation when the trainer asks for it, and
   always when the run stops (planned end, time limit, SIGINT / SIGTERM);
6. after a signal, raise :class:`~fabrec.signals.TrainingInterrupted` naming the checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from fabrec.checkpoint import load_checkpoint
from fabrec.errors import FabrecError, NonFiniteLoss
from fabrec.io import write_text_atomic
from fabrec.runtime import Deadline
from fabrec.signals import TrainingInterrupted, graceful_stop

def make_run_dir(path: str | Path, *subdirs: str) -> Path:
    """Create a run folder (and sub-folders); a failure is a FabrecError naming it."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for s in subdirs:
            (out / s).mkdir(exist_ok=True)
    except OSError as e:
        raise FabrecError(f"{out}: cannot create run folder ({e.strerror})") from None
    return out


def append_jsonl(path: str | Path, rec: dict[str, Any]) -> None:
    """Append one JSON line and fsync it; a write failure is a FabrecError naming the file."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise FabrecError(f"{path}: cannot write ({e.strerror or e})") from None


def truncate_jsonl(path: str | Path, step: int) -> None:
    """Drop lines logged after ``step`` (resuming from a checkpoint logs no step twice) and
    lines cut by a kill."""
    p = Path(path)
    if not p.exists():
        return
    keep = []
    for line in p.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("step", 0) <= step:
            keep.append(line)
    write_text_atomic(p, "".join(k + "\n" for k in keep))


log = logging.getLogger(__name__)


class Trainer(Protocol):
    """What a stage supplies to :func:`run_loop`."""

    skip_logs: dict[str, float]  # the step's logs when a non-finite batch was skipped

    def train_step(self, batch: Any, skipped: int, step: int) -> dict[str, float]:
        """Optimise on one batch (``None``: every image of it was unreadable; ``skipped`` of
        them); return the losses. ``step`` counts the steps done before this one."""

    def log_record(self, step: int, logs: dict[str, float]) -> dict[str, Any] | None:
        """The metrics line after ``step`` steps, or None when none is due."""

    def validation_due(self, step: int) -> bool:
        """Whether the regular validation cadence falls on ``step``."""

    def validate(self, step: int) -> dict[str, Any] | None:
        """Measure (and keep the best model); the metrics line, or None when nothing was measured."""

    def phase_over(self, step: int, deadline: Deadline) -> bool:
        """Whether the current phase ends after ``step`` steps."""

    def next_phase(self, step: int) -> bool:
        """Start the next phase at ``step``; False when there is none (the run ends)."""

    def save(self, step: int) -> None:
        """Write the resumable checkpoint."""


@dataclass(frozen=True)
class Cadence:
    """How often the loop logs and saves. ``checkpoint_every`` 0: only when due otherwise."""

    checkpoint_every: int = 0
    save_after_validation: bool = False
    on_nonfinite: str = "raise"


@dataclass
class LoopEnd:
    """Where :func:`run_loop` stopped: the step, why (``steps`` or ``time``), and the seconds
    spent outside the steps (validation, checkpoints)."""

    step: int
    stopped: str
    side_seconds: float = 0.0


def resume_state(out: Path, resume: bool, kind: str) -> dict[str, Any] | None:
    """The checkpoint a run continues from: ``out/last.pt`` when resuming and it exists (else
    None); it must hold a ``kind`` model (a run folder is not shared between stages)."""
    last = out / "last.pt"
    if not (resume and last.exists()):
        return None
    state = load_checkpoint(last)
    if state.get("kind") != kind:
        raise FabrecError(f"{last}: not a {kind} training checkpoint; use another --out")
    return state


def start_run_folder(out: Path, config_yaml: str, step: int) -> Path:
    """Write the run's ``config.yaml`` and cut ``metrics.jsonl`` back to ``step`` (a resumed
    run logs no step twice). Returns the metrics path."""
    write_text_atomic(out / "config.yaml", config_yaml)
    metrics = out / "metrics.jsonl"
    truncate_jsonl(metrics, step)
    return metrics


def _step(trainer: Trainer, batch: Any, skipped: int, step: int, on_nonfinite: str) -> dict[str, float]:
    try:
        return trainer.train_step(batch, skipped, step)
    except NonFiniteLoss as e:
        if on_nonfinite != "skip":
            raise
        log.warning("skipped a batch: %s", e)
        return dict(trainer.skip_logs)


def run_loop(trainer: Trainer, batches: Iterable[tuple[Any, int]], start: int, cadence: Cadence,
             deadline: Deadline, metrics: Path | None, bar: tqdm, checkpoint: Path,
             agree: Callable[[bool], bool] = lambda flag: flag) -> LoopEnd:
    """Run ``trainer`` over ``batches`` (``(batch, unreadable images)`` pairs) from step
    ``start`` (see the module docstring). ``metrics`` None: this process writes no metrics
    (a DDP rank other than 0); ``agree`` makes every process take rank 0's time decision."""
    step, side, phase_over, out_of_time = start, 0.0, False, False
    with graceful_stop() as stop:
        if trainer.phase_over(step, deadline) and not trainer.next_phase(step):
            return LoopEnd(step, "steps")
        for batch, skipped in batches:
            logs = _step(trainer, batch, skipped, step, cadence.on_nonfinite)
            step += 1
            bar.update(1)
            rec = trainer.log_record(step, logs)
            if rec is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in rec.items() if isinstance(v, float)})
                if metrics is not None:
                    append_jsonl(metrics, rec)
            t0 = time.perf_counter()
            phase_over = trainer.phase_over(step, deadline)
            out_of_time = agree(deadline.passed())
            validated = False
            if trainer.validation_due(step) or phase_over or out_of_time:
                rec = trainer.validate(step)
                validated = rec is not None
                if validated and metrics is not None:
                    append_jsonl(metrics, rec)
            if phase_over and not out_of_time and trainer.next_phase(step):
                phase_over = False
            done = phase_over or out_of_time or stop.requested
            if (done or (cadence.checkpoint_every and step % cadence.checkpoint_every == 0)
                    or (validated and cadence.save_after_validation)):
                trainer.save(step)
            side += time.perf_counter() - t0
            if done:
                break
    if stop.requested:
        raise TrainingInterrupted(step, str(checkpoint))
    return LoopEnd(step, "time" if out_of_time and not phase_over else "steps", side)
