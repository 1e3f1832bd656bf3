"""How a landmark model is run on photos: one typed set of options (:class:`InferenceOptions`)
for ``predict``, ``eval``, ``serve``, ``bench`` and the Python API
(:meth:`fabrec.predict.LandmarkPredictor.from_pretrained`). Each field declares its command-line
flag and help, and :func:`add_inference_flags` generates the flags of the fields a command
takes, so a new option is one field. Light: no PyTorch import.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields, replace
from typing import Any

from fabrec.errors import FabrecError
from fabrec.faces.detectors import ALL_ROTATIONS, DEFAULT_DETECTOR, DEFAULT_MIN_SCORE
from fabrec.registry import DECODERS, DETECTORS, DEVICES


def parse_rotations(text: str) -> tuple[int, ...]:
    """``0,90,180,270`` or ``all`` -> the orientations; multiples of 90 only."""
    if text.strip() == "all":
        return ALL_ROTATIONS
    try:
        rot = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        rot = ()
    if not rot or any(r % 90 for r in rot):
        raise FabrecError(f"--rotations expects multiples of 90 degrees such as 0,90,180,270, got '{text}'")
    return rot


DEFAULT_FLIP_FROM = 30.0  # degrees of yaw from which a face is found again with test-time flip


def parse_degrees_or_off(text: str) -> float | None:
    """``30`` -> 30.0; ``off`` -> None."""
    if text.strip() == "off":
        return None
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0.0 <= v <= 180.0:
        raise FabrecError(f"--flip-from expects degrees of yaw (0-180) or 'off', got '{text}'")
    return v


def _opt(default: Any, flag: str | None, help: str, **cli: Any) -> Any:
    """A field with its flag (None: no flag), help and argparse extras (``choices``, ``type``,
    ``negate``: a ``--no-...`` flag that sets a True default to False; ``parse``: text -> value)."""
    return field(default=default, metadata={"flag": flag, "help": help, **cli})


@dataclass(frozen=True)
class InferenceOptions:
    """The options of running a landmark model on photos (see each field's help)."""

    detector: str = _opt(DEFAULT_DETECTOR, "--detector", "face detector: yunet (bundled, finds rotated faces "
                         "too), opencv (Haar cascade) or dlib (pip install 'fabrec[dlib]')", choices=DETECTORS)
    min_score: float = _opt(DEFAULT_MIN_SCORE, "--min-score", "YuNet: drop detections scoring below this (0..1)",
                            type=float)
    min_face: float = _opt(0.0, "--min-face", "drop faces smaller than this many pixels (mean box side)", type=float)
    min_confidence: float | None = _opt(
        None, "--min-confidence", "drop detected faces whose mean point confidence is below this (non-faces give "
        "flat heatmaps); default: 0 (off) where the model file holds a face filter (the bundled one does), else "
        "the cut the model file holds (0 for the bundled models and models without one)", type=float)
    face_filter: bool = _opt(True, "--no-face-filter", "keep detections the model's face filter takes for "
                             "non-faces (prints, patterns, hands); the filter is fitted per model file and kept "
                             "inside it", negate=True)
    rotations: tuple[int, ...] = _opt((0,), "--rotations", "YuNet: photo orientations searched, degrees, e.g. "
                                      "0,90,180,270 or 'all' for photos with sideways or upside-down faces (each "
                                      "face keeps the orientation the model is most sure of; about 2x slower, "
                                      "more false detections)", parse=parse_rotations, shown="0")
    decoder: str | None = _opt(None, "--decoder", "heatmap decoder (default: the model file's)",
                               choices=DECODERS)
    precision: str = _opt("auto", "--dtype", "auto: bf16 autocast on CPUs with bfloat16 units (AMX, AVX-512 BF16: "
                          "faster, AFW NME the same as fp32), else fp32; fp32: the published points on every "
                          "machine; bf16: bfloat16 autocast (points move slightly)", choices=("auto", "fp32", "bf16"))
    fold_batchnorm: bool = _opt(True, "--fold-bn", "BatchNorm folded into the convolutions before them (about "
                                "10%% faster; the same points on every AFW and AFLW test face, confidences within "
                                "1e-4); --no-fold-bn runs the network as trained", action=argparse.BooleanOptionalAction)
    flip: bool = _opt(False, "--flip", "test-time flip: average each face's heatmaps with its mirror image's "
                      "(twice the work; needs a scheme with flip pairs)", action="store_true")
    flip_from: float | None = _opt(
        DEFAULT_FLIP_FROM, "--flip-from", "test-time flip for turned heads: faces whose head pose turns at least this many "
        "degrees of yaw are found again with their heatmaps averaged with the mirror image's (held-out AFLW2000-3D "
        "NME at 60-90 degrees 8.0 -> 6.7 %%; two more network passes for those faces only; 68-point models); 0: "
        "every face; 'off': never (the paper's way)", parse=parse_degrees_or_off, shown="30", metavar="DEG")
    quality: bool = _opt(True, "--no-quality", "skip the reconstruction (faster)", negate=True)
    batch_size: int = _opt(32, "--batch-size", "faces per network batch", type=int)
    device: str = _opt("auto", "--device", "auto (CUDA when present), cpu or cuda", choices=DEVICES)
    # PyTorch's CPU threads (process-wide): "auto" one per core not kept busy by other processes,
    # a number, or None to leave PyTorch's setting; the command line's --threads sets them
    threads: int | str | None = _opt("auto", None, "")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise FabrecError("--batch-size must be >= 1")
        if not 0.0 <= self.min_score <= 1.0:
            raise FabrecError(f"--min-score must be between 0 and 1 (a detector score), got {self.min_score:g}")
        if not self.min_face >= 0.0:
            raise FabrecError(f"--min-face must be >= 0 pixels, got {self.min_face:g}")


DETECTION = ("detector", "min_score", "min_face", "min_confidence", "face_filter", "rotations")
NETWORK = ("decoder", "precision", "fold_batchnorm", "flip", "device")


def add_inference_flags(p: argparse.ArgumentParser, names: tuple[str, ...],
                        choices: dict[str, tuple[str, ...]] | None = None, **defaults: Any) -> None:
    """Add the flags of the fields ``names`` to ``p``; ``choices`` and ``defaults`` override a
    field's choices and default for this command (``bench``: ``batch_size=1``, fp16 on CUDA)."""
    by_name = {f.name: f for f in fields(InferenceOptions)}
    for n in names:
        f = by_name[n]
        m = dict(f.metadata)
        if choices and n in choices:
            m["choices"] = choices[n]
        flag, help_, default = m.pop("flag"), m.pop("help"), defaults.get(n, f.default)
        if m.pop("negate", False):
            p.add_argument(flag, dest=n, action="store_false", default=default, help=help_)
            continue
        parse, shown = m.pop("parse", None), m.pop("shown", None)
        if parse is not None:
            p.add_argument(flag, dest=n, default=shown, help=help_, **m)
            continue
        p.add_argument(flag, dest=n, default=default, help=help_, **m)


def options_from_args(a: argparse.Namespace, **extra: Any) -> InferenceOptions:
    """The options a parsed command line gives (fields it has no flag for keep their defaults;
    ``threads``: left as the command line set them)."""
    values: dict[str, Any] = {"threads": None}
    for f in fields(InferenceOptions):
        if f.metadata.get("flag") and hasattr(a, f.name):
            v = getattr(a, f.name)
            parse = f.metadata.get("parse")
            values[f.name] = parse(v) if parse is not None and isinstance(v, str) else v
    return replace(InferenceOptions(), **values, **extra)


def with_overrides(options: InferenceOptions | None, **overrides: Any) -> InferenceOptions:
    """``options`` (default: :class:`InferenceOptions`) with keyword overrides, one clear error
    for an unknown name."""
    known = {f.name for f in fields(InferenceOptions)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise FabrecError(f"unknown inference option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    if "rotations" in overrides:
        overrides["rotations"] = tuple(overrides["rotations"])
    return replace(options or InferenceOptions(), **overrides)

