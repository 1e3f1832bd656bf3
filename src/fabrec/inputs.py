"""What ``fabrec predict`` is given: files and folders -> input files with names no two share.

Light on purpose (no OpenCV, NumPy or PyTorch): the inputs are checked before anything heavy
loads, so a mistyped path fails at once.

The naming rule (stated in the README):

- an input's **name** (the ``file`` field of its records, its ``--shard`` key, its ``--boxes``
  key) is its path relative to the deepest folder holding every input -- a single folder input
  is that folder itself, so ``predict photos/`` names ``photos/a/x.jpg`` ``a/x.jpg`` and
  ``predict coll/a coll/b`` names ``a/x.jpg`` and ``b/x.jpg``;
- its outputs (``x.json``, ``x_landmarks.jpg``, ...) sit at that name's place under ``--out``,
  named after the file without its extension, or with it (``x.jpg.json``, ``x.png.json``) when
  two inputs of the run would otherwise share an output name;
- a file given twice (directly and through a folder, say) is predicted once.

:func:`shard_of` splits inputs by a stable hash of their names, so ``--shard K/N`` over the
same folder covers every file exactly once across ``K = 1..N``, whatever the order the files
are listed in and however many processes run.
"""

from __future__ import annotations

import csv
import json
import math
import os
import zlib
from collections import Counter
from pathlib import Path, PurePath
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from fabrec.errors import FabrecError

if TYPE_CHECKING:
    from fabrec.faces.detectors import BoxXYWH

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS


class InputFile(NamedTuple):
    """One file to predict.

    Attributes:
        path: the file as given or found.
        name: its name relative to the inputs' common folder (see the module docstring).
        out: where its outputs go, relative to ``--out``, without a suffix: ``a/x`` writes
            ``a/x.json``, ``a/x_landmarks.jpg``, ...
    """

    path: Path
    name: PurePath
    out: PurePath

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_EXTENSIONS


def _listed(p: Path) -> list[Path]:
    if not p.exists():
        raise FabrecError(f"{p}: no such file or folder")
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_EXTENSIONS)
    if p.suffix.lower() not in MEDIA_EXTENSIONS:
        raise FabrecError(f"{p}: not an image or video ({p.suffix or 'no extension'})")
    return [p]


def expand_inputs(inputs: list[str]) -> list[InputFile]:
    """Files and folders (searched recursively for images and videos) -> the input files, in
    the order given (folders sorted), each named by the module's rule. Raises
    :class:`FabrecError` naming the first missing path or unsupported file."""
    given = [Path(s) for s in inputs]
    found = [(p, f) for p in given for f in _listed(p)]
    if not found:
        raise FabrecError("no images or videos in the inputs")
    roots = [given[0]] if len(given) == 1 and given[0].is_dir() else [p if p.is_dir() else p.parent for p in given]
    base = Path(os.path.commonpath([os.path.abspath(r) for r in roots]))
    seen: set[str] = set()
    named: list[tuple[Path, PurePath]] = []
    for _, f in found:
        a = os.path.abspath(f)
        if a not in seen:
            seen.add(a)
            named.append((f, PurePath(os.path.relpath(a, base))))
    stems = Counter(n.with_suffix("") for _, n in named)
    outs = [n.with_suffix("") if stems[n.with_suffix("")] == 1 else n for _, n in named]
    taken = Counter(outs)
    for i, o in enumerate(outs):  # x.jpg beside x.png and x.jpg.png: the last resort, a number
        if taken[o] > 1:
            taken[o] -= 1
            outs[i] = o.with_name(f"{o.name}~{taken[o] + 1}")
    return [InputFile(f, n, o) for (f, n), o in zip(named, outs)]


BoxRow = tuple[str, tuple[float, float, float, float]]


def read_box_rows(path: str | Path) -> tuple[list[BoxRow], list[int]]:
    """Rows ``path,x,y,w,h`` (an optional ``path,...`` header, ``#`` comments) -> (good rows,
    1-based line numbers of malformed rows: not four finite numbers, or w / h not positive)."""
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise FabrecError(f"{p}: cannot read box file ({e})") from None
    good: list[BoxRow] = []
    bad: list[int] = []
    for i, r in enumerate(rows, start=1):
        if not r or r[0].startswith("#") or (not good and not bad and r[0].strip().lower() == "path"):
            continue
        try:
            x, y, w, h = (float(v) for v in r[1:5])
        except (ValueError, IndexError):
            bad.append(i)
            continue
        if len(r) < 5 or w <= 0 or h <= 0 or not all(math.isfinite(v) for v in (x, y, w, h)):
            bad.append(i)
            continue
        good.append((r[0], (x, y, w, h)))
    return good, bad


def read_boxes_file(path: str | Path) -> dict[str, list[BoxXYWH]]:
    """``{"name": [[x, y, w, h], ...]}`` JSON, or CSV rows ``path,x,y,w,h``; keys are file names
    or relative paths (``predict --boxes``: faces given instead of detected)."""
    p = Path(path)
    if not p.is_file():
        raise FabrecError(f"{p}: boxes file not found")
    out: dict[str, list[BoxXYWH]] = {}
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("expected an object of name -> [[x, y, w, h], ...]")
            for k, v in data.items():
                if not isinstance(v, list) or not all(isinstance(b, list) for b in v):
                    raise ValueError(f"'{k}' must map to a list of [x, y, w, h] boxes, got {json.dumps(v)[:60]}")
                out[k] = [tuple(float(t) for t in b) for b in v]  # type: ignore[misc]
        else:
            good, bad = read_box_rows(p)
            if bad:
                raise ValueError(f"line {bad[0]} is not path,x,y,w,h with w, h > 0")
            for name, b in good:
                out.setdefault(name, []).append(b)
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FabrecError(f"{p}: bad boxes file ({e})") from None
    for k, bs in out.items():
        for b in bs:
            if len(b) != 4 or not all(math.isfinite(v) for v in b) or b[2] <= 0 or b[3] <= 0:
                raise FabrecError(f"{p}: bad box for '{k}': {b} (need x, y, w > 0, h > 0)")
    return out


T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise FabrecError(f"--shard expects K/N such as 3/8, got '{text}'") from None
    if not 1 <= k <= n:
        raise FabrecError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_index(name: str, n: int) -> int:
    """The 1-based shard of an input's relative name among ``n`` (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(name.replace(os.sep, "/").encode("utf-8")) % n + 1


def shard_of(files: Sequence[tuple[T, Path]], k: int, n: int) -> list[tuple[T, Path]]:
    """The ``(file, relative name)`` pairs of shard ``k`` of ``n``."""
    return [f for f in files if shard_index(str(f[1]), n) == k]
