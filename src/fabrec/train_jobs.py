"""Background training of a label project (``fabrec serve``'s Train button): one job at a time.

A job runs the same commands a user would type, in a child process (memory returns when it
ends; the server stays responsive)::

    fabrec train-landmarks --autoencoder default --dataset folder --root ROOT/NAME/images \\
        --scheme ROOT/NAME/scheme.yaml --train-count all --max-steps N --out ROOT/NAME/train
    fabrec export --model ROOT/NAME/train/best.pt --format safetensors --out ROOT/NAME/NAME.safetensors

(``--init-from auto``, the default: up to 100 photos start from the bundled landmark model.)
Progress is read from the run's ``metrics.jsonl`` (step, loss, validation NME where there is a
validation image); cancelling sends SIGINT, on which training saves ``last.pt`` and stops.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabrec.config import LMTrainConfig
from fabrec.io import complete_lines
from fabrec.label_projects import ProjectError, ProjectStore

log = logging.getLogger(__name__)
MAX_STEPS = 20_000


def suggested_steps(complete: int) -> int:
    """The step count ``train-landmarks`` picks for ``complete`` labelled photos (50 epochs, 500-3,000)."""
    from fabrec.train_landmarks import default_steps

    return default_steps(max(1, complete), min(LMTrainConfig.batch_size, max(1, complete)))


@dataclass
class Job:
    """A training job: its project, planned steps, child process and outcome."""

    name: str
    steps: int
    run_dir: Path
    state: str = "training"  # training -> exporting -> done | failed | cancelled
    message: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    proc: subprocess.Popen | None = None
    cancelled: bool = False


class TrainingJobs:
    """Starts, follows and cancels project trainings; at most one runs at a time."""

    def __init__(self, store: ProjectStore, autoencoder: str = "default", init_from: str = "auto",
                 python: str = sys.executable) -> None:
        self.store, self.autoencoder, self.init_from, self.python = store, autoencoder, init_from, python
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def running(self) -> Job | None:
        """The job now training or exporting, if any."""
        return next((j for j in self._jobs.values() if j.state in ("training", "exporting")), None)

    def start(self, name: str, steps: int | None = None) -> dict[str, Any]:
        """Start training project ``name`` (409 while another job runs; 400 without a fully labelled photo)."""
        info = self.store.describe(name)
        if info["complete"] < 1:
            raise ProjectError(f"project '{name}': label every point of at least one photo first")
        n = suggested_steps(info["complete"]) if steps is None else int(steps)
        if not 1 <= n <= MAX_STEPS:
            raise ProjectError(f"steps must be 1 to {MAX_STEPS}, got {n}")
        with self._lock:
            busy = self.running()
            if busy is not None:
                raise ProjectError(f"project '{busy.name}' is training; one job at a time", 409)
            run_dir = self.store.folder(name) / "train"
            shutil.rmtree(run_dir, ignore_errors=True)  # a new run on the current labels
            run_dir.mkdir()
            job = self._jobs[name] = Job(name, n, run_dir)
            job.proc = self._spawn(self._train_command(name, n), job)
        threading.Thread(target=self._follow, args=(job,), name=f"train-{name}", daemon=True).start()
        log.info("training %s: %d steps on %d photos", name, n, info["complete"])
        return self.status(name)

    def _train_command(self, name: str, steps: int) -> list[str]:
        p = self.store.folder(name)
        return [self.python, "-m", "fabrec", "train-landmarks", "--autoencoder", self.autoencoder,
                "--dataset", "folder", "--root", str(p / "images"), "--scheme", str(p / "scheme.yaml"),
                "--train-count", "all", "--max-steps", str(steps), "--out", str(p / "train"), "--no-progress",
                "--set", "log_every=1", "--init-from", self.init_from]

    def _spawn(self, cmd: list[str], job: Job) -> subprocess.Popen:
        with open(job.run_dir / "log.txt", "ab") as out:  # the child keeps its own descriptor
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _follow(self, job: Job) -> None:
        """Wait for training, then export; record how it ended."""
        assert job.proc is not None
        rc = job.proc.wait()
        if rc == 0 and not job.cancelled:
            job.state = "exporting"
            model = self.store.model_path(job.name)
            staged = job.run_dir / model.name
            job.proc = self._spawn([self.python, "-m", "fabrec", "export", "--model", str(job.run_dir / "best.pt"),
                                    "--format", "safetensors", "--out", str(staged)], job)
            rc = job.proc.wait()
            if rc == 0:
                staged.replace(model)
        job.ended = time.time()
        if job.cancelled:
            job.state, job.message = "cancelled", "cancelled; the previous model (if any) is kept"
        elif rc == 0:
            kept = _progress(job.run_dir / "metrics.jsonl")[0] == 0  # no step taken: cross-validation kept the start
            job.state, job.message = "done", ("cross-validation kept the bundled model (training did not help); "
                                              if kept else "") + f"model {self.store.model_path(job.name).name}"
        else:
            job.state, job.message = "failed", _last_line(job.run_dir / "log.txt")
        log.info("training %s: %s %s", job.name, job.state, job.message)

    def cancel(self, name: str) -> dict[str, Any]:
        """Stop project ``name``'s job (SIGINT, then kill after 20 s); 404 when none runs."""
        job = self._jobs.get(name)
        if job is None or job.state not in ("training", "exporting") or job.proc is None:
            raise ProjectError(f"project '{name}' is not training", 404)
        job.cancelled = True
        job.proc.send_signal(signal.SIGINT)
        try:
            job.proc.wait(20)
        except subprocess.TimeoutExpired:
            job.proc.kill()
        return self.status(name)

    def status(self, name: str) -> dict[str, Any]:
        """``{"state", "step", "steps", "loss", "val_nme", "seconds", "message", "model"}``; state
        ``idle`` when this server has not trained the project."""
        self.store.folder(name)
        job = self._jobs.get(name)
        model = self.store.model_path(name).is_file()
        if job is None:
            return {"state": "idle", "step": 0, "steps": 0, "loss": None, "val_nme": None, "seconds": 0.0,
                    "message": "", "model": model}
        step, loss, val = _progress(job.run_dir / "metrics.jsonl")
        return {"state": job.state, "step": step, "steps": job.steps, "loss": loss, "val_nme": val,
                "seconds": round((job.ended or time.time()) - job.started, 1), "message": job.message,
                "model": model}

    def close(self) -> None:
        """Cancel a running job (server shutdown)."""
        job = self.running()
        if job is not None:
            self.cancel(job.name)


def _progress(metrics: Path) -> tuple[int, float | None, float | None]:
    """(last step, last loss, last validation NME) from a run's metrics.jsonl."""
    step, loss, val = 0, None, None
    for line in complete_lines(metrics):
        rec = json.loads(line)
        step = max(step, int(rec.get("step", 0)))
        if isinstance(rec.get("loss"), float) and math.isfinite(rec["loss"]):  # NaN: a skipped batch
            loss = rec["loss"]
        if isinstance(rec.get("val_nme"), float) and math.isfinite(rec["val_nme"]):  # NaN: no validation images
            val = rec["val_nme"]
    return step, loss, val


def _last_line(path: Path) -> str:
    lines = [s for s in path.read_text(errors="replace").splitlines() if s.strip()] if path.is_file() else []
    return lines[-1][:300] if lines else "training failed"
