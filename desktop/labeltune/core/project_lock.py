"""Which LabelTune holds a project open: a small lock file, to warn before a project is opened twice.

Two app windows on one project would each keep their own undo history and caches, and the labels of one
could quietly overwrite the other's.  The app writes ``labeltune.lock`` (host, process id, user, time)
into a project it opens and removes it on close.  The lock only *warns*: a lock left by a crash is
recognised (same host, process gone) and replaced silently, and a lock from another computer or a live
process can always be overridden by the user.  The command line does not take the lock (a ``labeltune
train`` beside the open app is fine: the store is SQLite in WAL mode).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import logging
import os
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = "labeltune.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who wrote a project's lock file."""

    host: str
    pid: int
    user: str
    since: str  # ISO time, local

    def describe(self) -> str:
        """A sentence for the user: where, who and since when."""
        try:
            when = dt.datetime.fromisoformat(self.since).strftime("%d %b %Y %H:%M")
        except ValueError:
            when = self.since or "an unknown time"
        where = "on this computer" if self.host == socket.gethostname() else f"on the computer “{self.host}”"
        who = f" by {self.user}" if self.user else ""
        return f"{where}{who} (process {self.pid}), since {when}"


def _me() -> LockHolder:
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):
        user = ""
    return LockHolder(
        socket.gethostname(), os.getpid(), user, dt.datetime.now().isoformat(timespec="seconds")
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this computer (never signals it)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    try:  # Linux: a process killed but not yet reaped by its parent (a zombie) holds nothing any more
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def read_lock(folder: str | os.PathLike[str]) -> LockHolder | None:
    """The lock in ``folder`` as written, or ``None`` (missing or unreadable)."""
    try:
        data = json.loads((Path(folder) / LOCK_FILE).read_text(encoding="utf-8"))
        return LockHolder(str(data["host"]), int(data["pid"]), str(data.get("user", "")), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def other_holder(folder: str | os.PathLike[str]) -> LockHolder | None:
    """Another LabelTune that has ``folder`` open, or ``None`` (no lock, our own, or a stale one)."""
    holder = read_lock(folder)
    if holder is None:
        return None
    ours_or_ended = holder.pid == os.getpid() or not pid_alive(holder.pid)
    if holder.host == socket.gethostname() and ours_or_ended:
        return None  # ours, or left by a process that has ended (a crash)
    return holder


class ProjectLock:
    """The lock this process holds on one project folder; :meth:`release` removes it if it is still ours."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.holder = _me()
        path = self.folder / LOCK_FILE
        tmp = path.with_name(f".{LOCK_FILE}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(self.holder)), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:  # a read-only share: opening still works, without the warning
            log.warning("cannot write the lock file in %s: %s", self.folder, exc)
            with contextlib.suppress(OSError):  # no temporary file left behind (ADR 0042)
                tmp.unlink(missing_ok=True)

    def release(self) -> None:
        """Remove the lock file if this process still holds it."""
        current = read_lock(self.folder)
        if current is not None and (current.host, current.pid) == (self.holder.host, self.holder.pid):
            try:
                (self.folder / LOCK_FILE).unlink()
            except OSError as exc:
                log.warning("cannot remove the lock file in %s: %s", self.folder, exc)
