"""Output paths checked before any work.

:func:`check_out` turns every output-path mistake (a file where a folder is wanted, a folder
where a file is wanted, a folder that cannot be created or written) into one
:class:`FabrecError` line naming the path.
"""

from __future__ import annotations

import os
from pathlib import Path

from fabrec.errors import FabrecError

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
