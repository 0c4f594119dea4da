"""Injected file-system faults: tests run as root, so ``chmod`` proves nothing (issue 13, docs/adr/0042).

``inject(errno.ENOSPC, folder)`` makes the Python-level file calls that write under ``folder`` raise
``OSError(code, os.strerror(code), path)`` while the ``with`` block runs; calls elsewhere go through:

- opening for writing (``open``/``io.open``, hence ``Path.open``/``write_text``/``write_bytes``, and
  ``os.open`` with a write flag, hence ``tempfile.mkstemp``); with ``reads=True`` opening for reading too;
- ``os.replace``/``os.rename`` (either end under ``folder``), ``os.mkdir`` (``Path.mkdir``, ``makedirs``),
  ``os.link``/``os.symlink``, ``shutil.copyfile``/``copy2`` (they open);
- ``sqlite3.connect``: a new database cannot be made (SQLITE_CANTOPEN); an existing one opens and its
  writes fail with SQLite's own error for the fault (``sqlite_faults.arm``), as on a real disk;
- with ``at="write"`` (the default for ENOSPC: a disk fills up while writing) the open succeeds, truncating
  the file as the real call would, and the first ``write`` on it fails, so an in-place writer leaves a
  half-written file behind, which is what the tests are there to catch.

``hits`` (the yielded list) names each faulted path, so a test can prove the fault was met.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_faults

FAULTS = {
    "disk full": 28,  # errno.ENOSPC
    "read-only": 30,  # errno.EROFS
    "permission denied": 13,  # errno.EACCES
    "folder gone": 2,  # errno.ENOENT
}
"""The four faults of issue 13, by the words the user must see (errno values as on Linux and macOS)."""

REASONS = {
    28: "disk full",
    30: "read-only",
    13: "permission denied",
    2: "folder no longer exists — was a drive removed?",
}
"""What the user reads for each errno (core/file_problems.py)."""

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _error(code: int, path: object) -> OSError:
    return OSError(code, os.strerror(code), os.fspath(path) if isinstance(path, (str, os.PathLike)) else path)


class _FailingWrites(io.RawIOBase):
    """Stands in for an opened file whose writes fail (ENOSPC while writing)."""

    def __init__(self, inner: Any, code: int, path: str, hits: list[str]) -> None:
        super().__init__()
        self._inner, self._code, self._path, self._hits = inner, code, path, hits

    def write(self, data: Any) -> int:
        self._hits.append(self._path)
        raise _error(self._code, self._path)

    def writelines(self, lines: Any) -> None:
        self.write(b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.close()
        super().close()

    def fileno(self) -> int:  # io.RawIOBase's own would refuse; fsync of the real file goes through
        return int(self._inner.fileno())

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


@contextlib.contextmanager
def inject(code: int, under: Path, *, reads: bool = False, at: str = "") -> Iterator[list[str]]:
    """Make writes under ``under`` fail with errno ``code`` (see the module doc); yield the hits."""
    root = os.path.join(os.path.realpath(under), "")
    at = at or ("write" if code == 28 else "open")
    hits: list[str] = []
    real = {
        "open": builtins.open,
        "os_open": os.open,
        "os_write": os.write,
        "replace": os.replace,
        "rename": os.rename,
        "mkdir": os.mkdir,
        "link": os.link,
        "symlink": os.symlink,
        "connect": sqlite3.connect,
    }
    faulty_fds: set[int] = set()

    def inside(path: object) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False
        text = os.fsdecode(path)
        full = os.path.realpath(text if os.path.isabs(text) else os.path.join(os.getcwd(), text))
        return os.path.join(full, "").startswith(root)

    def fail(path: object) -> OSError:
        hits.append(os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path))
        return _error(code, path)

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        writing = any(ch in mode for ch in "wax+")
        if isinstance(file, int) and file in faulty_fds:
            faulty_fds.discard(file)
            handle = real["open"](file, mode, *args, **kwargs)
            return _FailingWrites(handle, code, f"fd {file}", hits)
        if not inside(file) or not (writing or reads):
            return real["open"](file, mode, *args, **kwargs)
        if at == "write" and writing:
            handle = real["open"](file, mode, *args, **kwargs)  # truncates, as a full disk's open does
            return _FailingWrites(handle, code, os.fspath(file), hits)
        raise fail(file)

    def fake_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        writing = bool(flags & _WRITE_FLAGS)
        if not inside(path) or not (writing or reads):
            return real["os_open"](path, flags, *args, **kwargs)
        if at == "write" and writing:
            fd = real["os_open"](path, flags, *args, **kwargs)
            faulty_fds.add(fd)
            return fd
        raise fail(path)

    def fake_os_write(fd: int, data: Any) -> int:
        if fd in faulty_fds:
            raise fail(f"fd {fd}")
        return real["os_write"](fd, data)

    def two_paths(name: str) -> Any:
        def call(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            if inside(src) or inside(dst):
                raise fail(dst if inside(dst) else src)
            return real[name](src, dst, *args, **kwargs)

        return call

    def fake_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if inside(path) and not os.path.lexists(path):  # an existing one: EEXIST, as the real call says
            raise fail(path)
        real["mkdir"](path, *args, **kwargs)

    def fake_connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        if not inside(database):
            return real["connect"](database, *args, **kwargs)
        hits.append(os.fsdecode(database))
        if code == 2 or not os.path.exists(database):  # SQLite cannot create or find the file
            error = sqlite3.OperationalError("unable to open database file")
            error.sqlite_errorcode = 14  # type: ignore[attr-defined]  # SQLITE_CANTOPEN, as SQLite says it
            raise error
        # An existing database opens, as on a real read-only or full disk; its writes fail (sqlite_faults)
        return sqlite_faults.arm(real["connect"](database, *args, **kwargs), code, Path(database).parent)

    patches = [
        (builtins, "open", fake_open),
        (io, "open", fake_open),
        (os, "open", fake_os_open),
        (os, "write", fake_os_write),
        (os, "replace", two_paths("replace")),
        (os, "rename", two_paths("rename")),
        (os, "link", two_paths("link")),
        (os, "symlink", two_paths("symlink")),
        (os, "mkdir", fake_mkdir),
        (sqlite3, "connect", fake_connect),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield hits
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative POSIX path -> bytes): compare before and after a fault.

    The thumbnail cache is left out: the gallery's background loaders write it meanwhile (a temporary
    file listed, then renamed before it is read), and it is a cache, which a fault may only slow down.
    """
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if name.startswith("cache/thumbnails/") or "-wal" in path.name or "-shm" in path.name:
            continue
        if path.is_file():
            found[name] = path.read_bytes()
    return found


def temp_files(folder: Path) -> list[str]:
    """Leftovers of an interrupted write (``*.tmp``, ``*.partial``) under ``folder``."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".partial")) or ".tmp." in p.name or p.name.startswith(".~")
    )
