"""The classes of an image project: adding, renaming, merging, deleting and ordering them.

A mixin of :class:`~labeltune.core.project.Project`; see core/project_store/base.py. A change that
relabels samples appends a history row for each (with a note saying why) and clears undo/redo.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence

from labeltune.core.errors import UnusableInputError
from labeltune.core.project_store.base import StoreBase, clean_class_name

__all__ = ["ClassesMixin"]

log = logging.getLogger("labeltune.core.project")


class ClassesMixin(StoreBase):
    """The class list and the edits that relabel whole classes."""

    def _require_class(self, name: str) -> str:
        cleaned = clean_class_name(name)
        if cleaned not in self._meta["classes"]:
            raise UnusableInputError(
                f"unknown class {cleaned!r}; known classes: {', '.join(self._meta['classes']) or '-'}"
            )
        return cleaned

    def _relabel(self, conn: sqlite3.Connection, old: Sequence[str], new: str | None, note: str) -> int:
        """Append a human row setting every sample currently labeled one of ``old`` to ``new``."""
        ids: list[int] = []
        for name in old:
            ids.extend(row[0] for row in conn.execute("SELECT id FROM samples WHERE label = ?", (name,)))
        now = time.time()
        conn.executemany(
            "INSERT INTO labels (sample_id, value, source, time, note) VALUES (?, ?, 'human', ?, ?)",
            [(sample_id, new, now, note) for sample_id in ids],
        )
        return len(ids)

    def add_class(self, name: str) -> None:
        """Append a class (raises :class:`UnusableInputError` if it exists or is empty)."""
        cleaned = clean_class_name(name)
        with self._lock:
            if cleaned in self._meta["classes"]:
                raise UnusableInputError(f"class {cleaned!r} already exists")
            self._save_meta(classes=[*self._meta["classes"], cleaned])

    def rename_class(self, old: str, new: str) -> int:
        """Rename a class in place (same hotkey); return how many samples were relabeled.

        Each relabeled sample gets a history row (source ``human``, note ``rename``), so re-importing
        the old folder name does not bring the old class back.  Clears undo/redo.
        """
        with self._lock:
            old = self._require_class(old)
            new = clean_class_name(new)
            if new == old:
                return 0
            if new in self._meta["classes"]:
                raise UnusableInputError(f"class {new!r} already exists; merge the classes instead")
            with self._write() as conn:
                count = self._relabel(conn, [old], new, "rename")
                self._save_meta(classes=[new if c == old else c for c in self._meta["classes"]])
            self._undo_stack.clear()
            log.info("renamed class %r to %r (%d samples)", old, new, count)
            return count

    def merge_classes(self, sources: Iterable[str], target: str) -> int:
        """Relabel the samples of ``sources`` as ``target`` and drop those classes; return the count.

        ``target`` may be new (it takes the place of the first merged class) or one of the sources.
        Clears undo/redo.
        """
        with self._lock:
            names: list[str] = []
            for name in sources:
                cleaned = self._require_class(name)
                if cleaned not in names:
                    names.append(cleaned)
            if not names:
                raise UnusableInputError("choose at least one class to merge")
            target = clean_class_name(target)
            merged = [n for n in names if n != target]
            classes = list(self._meta["classes"])
            if target not in classes:
                first = min(classes.index(n) for n in names)
                classes.insert(first, target)
            classes = [c for c in classes if c not in merged]
            with self._write() as conn:
                count = self._relabel(conn, merged, target, "merge")
                self._save_meta(classes=classes)
            self._undo_stack.clear()
            log.info("merged classes %s into %r (%d samples)", merged, target, count)
            return count

    def delete_class(self, name: str) -> int:
        """Remove a class; its samples become unlabeled (history rows with note ``delete``).

        Returns how many samples lost their label.  Clears undo/redo.
        """
        with self._lock:
            name = self._require_class(name)
            with self._write() as conn:
                count = self._relabel(conn, [name], None, "delete")
                self._save_meta(classes=[c for c in self._meta["classes"] if c != name])
            self._undo_stack.clear()
            log.info("deleted class %r (%d samples now unlabeled)", name, count)
            return count

    def reorder_classes(self, order: Sequence[str]) -> None:
        """Set the class order (hotkeys 1–9 follow it); ``order`` must hold exactly the current classes."""
        with self._lock:
            new = [clean_class_name(c) for c in order]
            if sorted(new) != sorted(self._meta["classes"]):
                raise UnusableInputError(
                    f"a new class order must list each class once: {', '.join(self._meta['classes'])}"
                )
            self._save_meta(classes=new)
