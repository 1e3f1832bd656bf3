"""File I/O: robust image decoding and atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fabrec.errors import FabrecError
from fabrec.inputs import IMAGE_EXTENSIONS

MAX_IMAGE_PIXELS = 100_000_000  # decompression-bomb guard (about 10k x 10k)


def find_image(stem_path: str | Path) -> Path | None:
    """The image beside an annotation file: same stem, any known extension, either case."""
    p = Path(stem_path)
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        q = p.with_suffix(ext)
        if q.exists():
            return q
    return None


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB ``uint8 (H, W, 3)``.

    Grayscale is expanded, alpha dropped, 16-bit scaled to 8-bit. Raises :class:`FabrecError`
    naming the file for missing, empty, undecodable or oversized images.
    """
    p = Path(path)
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as e:
        raise FabrecError(f"{p}: cannot read ({e.strerror or e})") from None
    if data.size == 0:
        raise FabrecError(f"{p}: empty file")
    return decode_image(data, str(p))


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header without decoding pixels; None if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            seg = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
            i += 2 + seg
    return None


def decode_image(data: np.ndarray, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes ``(B,) uint8`` to RGB ``uint8 (H, W, 3)`` (see read_image).

    Refuses images over :data:`MAX_IMAGE_PIXELS` before decoding them (decompression bombs)
    and JPEGs without an end-of-image marker (truncated files OpenCV would half-decode).
    """
    raw = data.tobytes()
    size = header_size(raw[: 1 << 16])
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise FabrecError(f"{name}: image too large ({size[0]}x{size[1]}, limit {MAX_IMAGE_PIXELS:,} pixels)")
    if raw[:2] == b"\xff\xd8" and raw.rfind(b"\xff\xd9") < 0:
        raise FabrecError(f"{name}: truncated JPEG (no end-of-image marker)")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise FabrecError(f"{name}: not a decodable image")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
        raise FabrecError(f"{name}: image too large ({img.shape[1]}x{img.shape[0]})")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def list_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursive), sorted; a single image file is itself."""
    r = Path(root)
    if r.is_file():
        return [r]
    return sorted(p for p in r.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def atomic_write(path: str | Path, writer: Callable[[str], None]) -> None:
    """Call ``writer(tmp_path)`` then rename over ``path``: readers see old or new, never half.

    An ``OSError`` (disk full, read-only folder) becomes a :class:`FabrecError` naming
    ``path``; the previous file stays intact.
    """
    p = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        os.close(fd)
        writer(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
        tmp = None
    except OSError as e:
        raise FabrecError(f"{p}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``."""
    atomic_write(path, lambda t: Path(t).write_text(text))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def complete_lines(path: str | Path) -> list[str]:
    """The lines of an append-only text file (JSONL, CSV) that end in a newline, newline kept:
    a last line cut by a crash is left out. ``[]`` when the file does not exist."""
    p = Path(path)
    if not p.exists():
        return []
    return [line for line in p.read_text().splitlines(keepends=True) if line.endswith("\n")]


def write_image_atomic(path: str | Path, rgb: np.ndarray, params: list[int] | None = None) -> None:
    """Atomically write an RGB ``uint8 (H, W, 3)`` image; format from the suffix, ``params`` as
    ``cv2.imencode`` takes them (e.g. ``[cv2.IMWRITE_WEBP_QUALITY, 90]``)."""
    p = Path(path)
    ok, buf = cv2.imencode(p.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params or [])
    if not ok:
        raise FabrecError(f"{p}: cannot encode image")
    atomic_write(p, lambda t: Path(t).write_bytes(buf.tobytes()))
