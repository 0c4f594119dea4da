"""What a project, run folder or label file from elsewhere may make LabelTune read or write (ADR 0043).

Projects and run folders travel by e-mail and USB stick, so their content is input, not instructions:

* **Reads.** An image project reads a sample file only when it lies inside the project folder or under a
  folder *this user imported on this computer* (:func:`remember_roots`, kept in the user data dir, which
  a project from elsewhere cannot write). A database row pointing anywhere else (``/etc/passwd``,
  ``../../.ssh/id_rsa``) makes :func:`refuse_foreign_rows` raise :class:`ForeignRowsError`, which lists
  the folders that hold such files: the app asks whether to trust them, ``labeltune project trust`` does.
* **Writes.** A class or phase name becomes one folder name (:func:`folder_name`): ``/``, ``..`` and an
  absolute name cannot lead out of the output folder the user chose.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from labeltune.core.atomic import write_text_atomic
from labeltune.core.errors import UnusableInputError

__all__ = [
    "ROOTS_FILE",
    "ForeignRowsError",
    "folder_name",
    "foreign_rows",
    "imported_roots",
    "inside",
    "outside_clause",
    "refuse_foreign_rows",
    "remember_roots",
    "resolves_inside",
]

log = logging.getLogger(__name__)

ROOTS_FILE = "imported_folders.json"
"""In the user data dir: the folders this user imported into a project here (``{"folders": [...]}``)."""

_NOT_IN_NAMES = frozenset('/\\:*?"<>|')


def folder_name(label: str) -> str:
    """``label`` as a single folder name: separators and ``:*?"<>|`` become ``_``; never ``.``/``..``/empty.

    Class names come from a run's ``config.json`` or a phase library, files that may come from anyone;
    ``out / folder_name(label)`` always stays directly inside ``out``.
    """
    cleaned = "".join("_" if ch in _NOT_IN_NAMES or ord(ch) < 32 else ch for ch in str(label))
    return cleaned.strip(" .") or "_"


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (made absolute, ``..`` resolved, symlinks not followed) lies in ``folder``."""
    child = os.path.normcase(os.path.normpath(os.path.abspath(path)))
    parent = os.path.normcase(os.path.normpath(os.path.abspath(folder)))
    return child == parent or child.startswith(os.path.join(parent, ""))


def resolves_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (relative: to ``folder``) names a file under ``folder`` (a list the user gave).

    Inside: what the path resolves to (links followed) lies under ``folder``; or the path, written
    without ``..``, lies under it (a link in the folder to data elsewhere: the folder owner's choice).
    ``..`` is never taken lexically: after a link it can lead anywhere. (A project or run folder that
    arrives from elsewhere gets the stricter :func:`inside` on resolved paths instead.)
    """
    base = os.path.abspath(folder)
    full = os.path.join(base, path)
    if inside(os.path.realpath(full), os.path.realpath(base)):
        return True
    return ".." not in Path(full).parts and inside(os.path.normpath(full), base)


def _roots_path() -> Path:
    from labeltune.core.weights.store import data_dir

    return data_dir() / ROOTS_FILE


def imported_roots() -> list[str]:
    """The folders this user imported on this computer (absolute); empty when the file is unreadable."""
    try:
        data = json.loads(_roots_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", _roots_path(), exc)
        return []
    folders = data.get("folders") if isinstance(data, dict) else None
    return [f for f in folders or [] if isinstance(f, str) and os.path.isabs(f)]


def remember_roots(folders: Iterable[str | os.PathLike[str]]) -> None:
    """Record ``folders`` as imported by this user (a folder already covered by one recorded is skipped).

    Best effort: a data dir that cannot be written is logged, not raised; the import itself went through.
    """
    known = imported_roots()
    added: list[str] = []
    for folder in sorted(os.path.normpath(os.path.abspath(f)) for f in folders):  # parents first
        if not any(inside(folder, root) for root in (*known, *added)):
            added.append(folder)
    if not added:
        return
    path = _roots_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"folders": [*known, *added]}, indent=1) + "\n")
    except OSError as exc:
        log.warning("cannot record imported folders in %s: %s", path, exc)


def outside_clause(roots: Sequence[str]) -> tuple[str, list[object]]:
    """An SQL condition on ``path`` keeping the keys that may lie outside ``roots`` (and its parameters).

    A quick first pass in SQLite, so 100 000 rows under an imported folder are not fetched at each
    open: relative keys without ``..`` are inside the project folder; an absolute key without ``..``
    that starts with a root's prefix is under it. What is left is judged by :func:`foreign_rows`.
    """
    absolute = "(path LIKE '/%' OR path LIKE '\\%' OR path LIKE '_:%')"
    prefixes = [os.path.join(os.path.normpath(os.path.abspath(r)), "").replace(os.sep, "/") for r in roots]
    if not prefixes or len(prefixes) > 200:  # a very long list: let Python judge every absolute key
        return f"instr(path, '..') > 0 OR {absolute}", []
    under = " OR ".join("substr(path, 1, ?) = ?" for _ in prefixes)
    params: list[object] = [value for prefix in prefixes for value in (len(prefix), prefix)]
    return f"instr(path, '..') > 0 OR ({absolute} AND NOT ({under}))", params


def foreign_rows(folder: Path, keys: Iterable[str], own_roots: Sequence[str] = ()) -> list[str]:
    """The stored sample paths of the project in ``folder`` that it may not read (see the module text).

    ``keys`` are database keys (relative to ``folder`` or absolute); ``own_roots`` are folders trusted
    besides :func:`imported_roots` (the project's own data roots when this user opened it here before).
    """
    roots = [str(folder), *imported_roots(), *own_roots]
    prefixes = tuple(os.path.join(os.path.normcase(os.path.normpath(os.path.abspath(r))), "") for r in roots)
    verdicts: dict[str, bool] = {}  # per folder: 100 000 images lie in a few dozen folders

    def outside(text: str) -> bool:
        path = text if os.path.isabs(text) else os.path.join(folder, text)
        return not os.path.join(os.path.normcase(os.path.normpath(path)), "").startswith(prefixes)

    foreign = []
    for key in keys:
        parent, _, name = key.replace("\\", "/").rpartition("/")
        if name in ("", ".", "..") or not parent:  # judged as a whole: its folder says nothing
            is_foreign = outside(key)
        else:
            verdict = verdicts.get(parent)
            if verdict is None:
                verdict = verdicts[parent] = outside(parent + "/x")
            is_foreign = verdict
        if is_foreign:
            foreign.append(key)
    return foreign


def refuse_foreign_rows(
    conn: sqlite3.Connection, folder: Path, recorded: Sequence[str], db_file: Path
) -> None:
    """Raise :class:`ForeignRowsError` when the project in ``folder`` names files it may not read.

    ``recorded``: the project's own ``sources`` (project.json); ``db_file``: its database, for the message.

    Only absolute keys and keys with ``..`` can lie outside; the project's own data roots count when this
    user opened it here before (its recent projects list), so projects made before the rule still open.
    """
    from labeltune.core.settings import Settings

    where, params = outside_clause([str(folder), *imported_roots()])
    keys = [row[0] for row in conn.execute(f"SELECT path FROM samples WHERE {where}", params)]
    if not keys:
        return
    sources = [s if os.path.isabs(s) else os.path.join(folder, s) for s in recorded]
    own = sources if str(folder.resolve()) in Settings.load().recent_projects else []
    foreign = foreign_rows(folder, keys, own)
    if foreign:
        raise ForeignRowsError(folder, foreign, sources, db_file)


class ForeignRowsError(UnusableInputError):
    """A project names sample files outside its folder and every folder this user imported (ADR 0043).

    :attr:`folders` are the folders that hold them (the project's own recorded sources where they cover
    a file, else the file's folder); :func:`remember_roots` of them is "trust":
    the app asks the user, the CLI has ``labeltune project trust``.
    """

    def __init__(self, folder: Path, foreign: Sequence[str], sources: Sequence[str], db_file: Path) -> None:
        self.project_folder = folder
        self.count = len(foreign)
        self.first = foreign[0]
        self.folders = _holding_folders(folder, foreign, sources)
        super().__init__(
            f"{db_file}: {self.count} sample file{'s' if self.count != 1 else ''} outside the "
            f"project folder and every folder imported on this computer (first: {self.first}); LabelTune "
            "does not read files a project names on its own: if you trust this project, run "
            f"`labeltune project trust {folder}` (the app asks), or copy the files into the project folder"
        )


def _holding_folders(folder: Path, foreign: Sequence[str], sources: Sequence[str]) -> list[str]:
    """The few folders that hold ``foreign`` rows: a recorded source covering one, else its own folder."""
    found: list[str] = []
    for key in foreign:
        path = os.path.normpath(key if os.path.isabs(key) else os.path.join(folder, key))
        if any(inside(path, known) for known in found):
            continue
        covering = [s for s in sources if inside(path, s) and not _too_wide(s)]
        found.append(os.path.normpath(min(covering, key=len)) if covering else os.path.dirname(path))
    return sorted(found)


def _too_wide(source: str) -> bool:
    """A recorded source no one should trust wholesale: a drive's root, the home folder or above it."""
    path = os.path.normpath(os.path.abspath(source))
    return os.path.dirname(path) == path or inside(os.path.expanduser("~"), path)
