"""The project lock warns about a project open in another LabelTune, and never blocks a crashed one's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labeltune.core.project_lock import LOCK_FILE, ProjectLock, other_holder, pid_alive, read_lock


def _write_lock(folder: Path, host: str, pid: int) -> None:
    lock = {"host": host, "pid": pid, "user": "ana", "since": "2026-12-06T09:30:00"}
    (folder / LOCK_FILE).write_text(json.dumps(lock))


@pytest.fixture
def live_pid() -> object:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def test_a_live_process_on_this_host_or_another_host_holds_the_project(tmp_path: Path, live_pid: int) -> None:
    assert other_holder(tmp_path) is None  # no lock
    _write_lock(tmp_path, socket.gethostname(), live_pid)
    holder = other_holder(tmp_path)
    assert holder is not None and holder.pid == live_pid
    assert "on this computer by ana" in holder.describe() and "06 Dec 2026 09:30" in holder.describe()
    _write_lock(tmp_path, "lab-pc-7", 4242)  # another computer: its processes cannot be checked
    holder = other_holder(tmp_path)
    assert holder is not None and "“lab-pc-7”" in holder.describe()


def test_a_stale_or_own_lock_does_not_count(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = int(finished.stdout)
    assert not pid_alive(dead)
    _write_lock(tmp_path, socket.gethostname(), dead)  # left by a crash
    assert other_holder(tmp_path) is None
    (tmp_path / LOCK_FILE).write_text("{not json")
    assert other_holder(tmp_path) is None
    lock = ProjectLock(tmp_path)
    held = read_lock(tmp_path)
    assert held is not None and held.pid == os.getpid() and other_holder(tmp_path) is None
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_release_leaves_a_lock_taken_over_by_another_process(tmp_path: Path, live_pid: int) -> None:
    lock = ProjectLock(tmp_path)
    _write_lock(tmp_path, socket.gethostname(), live_pid)  # "Open anyway" in another window
    lock.release()
    held = read_lock(tmp_path)
    assert held is not None and held.pid == live_pid


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are read from /proc (Linux)")
def test_a_killed_process_not_yet_reaped_holds_nothing(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(process.pid)
        process.kill()
        deadline = time.monotonic() + 10
        while "Z" not in Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()[:1]:
            assert time.monotonic() < deadline
        _write_lock(tmp_path, socket.gethostname(), process.pid)  # killed, its parent has not waited yet
        assert not pid_alive(process.pid) and other_holder(tmp_path) is None
    finally:
        process.wait()
