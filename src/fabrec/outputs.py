"""Output paths checked before any work, and deterministic input shards for many processes.

:func:`check_out` turns every output-path mistake (a file where a folder is wanted, a folder
where a file is wanted, a folder that cannot be created or written) into one
:class:`FabrecError` line naming the path. :func:`shard_of` splits inputs by a stable hash of
their relative names, so ``--shard K/N`` over the same folder covers every file exactly once
across ``K = 1..N``, whatever the order the files are listed in and however many processes run.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from fabrec.errors import FabrecError

T = TypeVar("T")


def check_out(path: str | Path, kind: str, flag: str = "--out") -> Path:
    """``path`` usable as an output ``kind`` (``folder`` or ``file``): it need not exist, but
    the nearest existing ancestor must be a writable folder, and ``path`` must not already be
    the other kind. Returns ``path``; raises :class:`FabrecError` otherwise."""
    p = Path(path)
    if kind == "folder" and p.exists() and not p.is_dir():
        raise FabrecError(f"{flag} {p}: is a file; give a folder (new or existing) for the results")
    if kind == "file" and p.is_dir():
        raise FabrecError(f"{flag} {p}: is a folder; give a file name")
    probe = p if (kind == "folder" and p.is_dir()) else p.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise FabrecError(f"{flag} {p}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise FabrecError(f"{flag} {p}: cannot write in {probe} (permission denied)")
    return p


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
