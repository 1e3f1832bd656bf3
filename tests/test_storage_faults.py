"""Disk full and read-only folders: a clear error naming the file, earlier files intact."""

import errno
import os
from pathlib import Path

import pytest
import torch

from fabrec.checkpoint import load_checkpoint, save_checkpoint
from fabrec.errors import FabrecError
from fabrec.io import write_json_atomic


def test_enospc_during_checkpoint_write_keeps_the_previous_one(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "last.pt"
    save_checkpoint(p, {"step": 1, "w": torch.ones(3)})
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        real_save(obj, f, *a, **k)  # bytes half-written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(FabrecError, match="last.pt: cannot write \\(No space left on device\\)"):
        save_checkpoint(p, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(p)["step"] == 1
    assert [q.name for q in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_folder(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    write_json_atomic(d / "metrics.json", {"a": 1})
    d.chmod(0o555)
    try:
        with pytest.raises(FabrecError, match="metrics.json: cannot write"):
            write_json_atomic(d / "metrics.json", {"a": 2})
        assert (d / "metrics.json").read_text().strip().endswith("}")
    finally:
        d.chmod(0o755)


def test_read_only_filesystem_as_root(tmp_path: Path, monkeypatch) -> None:
    """As root (CI) permissions do not bite, so inject the EROFS a read-only mount gives."""
    import tempfile

    write_json_atomic(tmp_path / "m.json", {"a": 1})

    def ro(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", ro)
    with pytest.raises(FabrecError, match="m.json: cannot write \\(Read-only file system\\)"):
        write_json_atomic(tmp_path / "m.json", {"a": 2})
    assert '"a": 1' in (tmp_path / "m.json").read_text()
