"""A run folder's files are replaced whole or not at all: a failed write keeps the previous file.

Faults are injected at the file-system calls (tests run as root: permissions prove nothing).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from labeltune.core import atomic
from labeltune.core.train_callbacks import write_history
from labeltune.core.train_step import EpochRecord


def record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch, 1.0 / epoch, 0.5, 1.2, 0.4, 0.4, 0.3, 1e-3, 1.0, 8, 8)


def fail_at_fsync(monkeypatch: pytest.MonkeyPatch, code: int = errno.ENOSPC, after: int = 0) -> None:
    """The disk fills up (or turns read-only) when the ``after + 1``-th write is committed."""
    calls = [0]
    real = atomic.os.fsync

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)


def test_history_survives_a_full_disk(tmp_path, monkeypatch):
    write_history(tmp_path, [record(1), record(2)])
    before = (tmp_path / "history.csv").read_bytes()
    fail_at_fsync(monkeypatch)
    with pytest.raises(OSError, match=r"disk full|No space left"):
        write_history(tmp_path, [record(1), record(2), record(3)])
    assert (tmp_path / "history.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]  # no temporary file left


def test_a_checkpoint_that_cannot_be_finished_keeps_the_previous_one(tmp_path, monkeypatch):
    atomic.write_atomic(tmp_path / "checkpoint.pt", lambda tmp: torch.save({"epoch": 1}, tmp))
    fail_at_fsync(monkeypatch, errno.EROFS)
    with pytest.raises(OSError):
        atomic.write_atomic(tmp_path / "checkpoint.pt", lambda tmp: torch.save({"epoch": 2}, tmp))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_full_disk_mid_run_is_one_line_and_keeps_the_last_checkpoint(
    image_folder, tmp_path, monkeypatch, capsys
):
    from labeltune import cli

    monkeypatch.setenv("LABELTUNE_CHECKPOINT_SECONDS", "0")
    run = tmp_path / "run"
    # manifest.csv, config.json, then epoch 1: history.csv and checkpoint.pt; epoch 2's history.csv fails
    fail_at_fsync(monkeypatch, after=4)
    args = ["train", str(image_folder()), "--strategy", "features", "--backbone", "resnet18", "--weights"]
    args += ["none", "--input-size", "32", "--epochs", "3", "--batch-size", "8", "--out", str(run), "--json"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    reason = "disk full; what the run saved before is kept"
    assert err.strip() == f"labeltune: error: cannot write {run / 'history.csv'}: {reason}"
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["epoch"] == 1
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 1
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3
    assert not list(Path(run).glob(".*.tmp"))
