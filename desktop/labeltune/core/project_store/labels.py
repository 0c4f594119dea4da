"""The labels of an image project: setting them (with their history) and undoing human changes.

A mixin of :class:`~labeltune.core.project.Project`; see core/project_store/base.py. Every change
appends a row to the append-only ``labels`` table (the history); the undo stack is the one both kinds
of project use (core/undo.py).
"""

from __future__ import annotations

import time

from labeltune.core.domain import LabelEvent
from labeltune.core.errors import UnusableInputError
from labeltune.core.project_store.base import (
    PERSON_SOURCES,
    ImageLabelChange,
    LabelSource,
    SampleRef,
    StoreBase,
    check_source,
    clean_class_name,
)

__all__ = ["LabelsMixin"]


class LabelsMixin(StoreBase):
    """Setting labels, their history, undo and redo."""

    def set_label(
        self,
        sample: SampleRef,
        label: str | None,
        source: LabelSource = "human",
        *,
        create_class: bool = False,
    ) -> None:
        """Set (or with ``None`` remove) a sample's label; it is committed before this returns.

        An unknown class raises :class:`UnusableInputError` unless ``create_class`` is true, which
        appends it to :attr:`classes`.  Setting the label a sample already has from the same source,
        or removing a label it does not have, records nothing.  A person's change (``human``, or
        ``accepted``: a model's suggestion confirmed) can be undone; it clears the redo stack.
        """
        check_source(source)
        cleaned = None if label is None else clean_class_name(label)
        with self._lock:
            with self._write(durable=source in PERSON_SOURCES) as conn:  # an import can be run again
                sample_id, key, current, current_source = self._lookup(conn, sample)
                if cleaned == current and (current_source == source or cleaned is None):
                    return
                new_class = cleaned is not None and cleaned not in self._meta["classes"]
                if new_class and not create_class:
                    raise UnusableInputError(
                        f"unknown class {cleaned!r}; known classes: {', '.join(self._meta['classes']) or '-'}"
                    )
                conn.execute(
                    "INSERT INTO labels (sample_id, value, source, time) VALUES (?, ?, ?, ?)",
                    (sample_id, cleaned, source, time.time()),
                )
                if new_class:
                    self._save_meta(classes=[*self._meta["classes"], cleaned])
            if source in PERSON_SOURCES and cleaned != current:
                self._undo_stack.push(ImageLabelChange(sample_id, self._abs(key), current, cleaned))

    def label_history(self, sample: SampleRef) -> list[LabelEvent[str | None]]:
        """Every label change of a sample, oldest first."""
        with self._lock:
            conn = self._db()
            sample_id = self._lookup(conn, sample)[0]
            rows = conn.execute(
                "SELECT value, source, time, note FROM labels WHERE sample_id = ? ORDER BY id", (sample_id,)
            ).fetchall()
        return [LabelEvent(value, source, when, note) for value, source, when, note in rows]

    def can_undo(self) -> bool:
        """Whether :meth:`undo` has something to undo."""
        return self._undo_stack.can_undo()

    def can_redo(self) -> bool:
        """Whether :meth:`redo` has something to redo."""
        return self._undo_stack.can_redo()

    def undo(self) -> ImageLabelChange | None:
        """Undo the last human label change (by appending the previous value); ``None`` if none left.

        The change returned is what the undo did: the label the sample had, and the one it has now.
        """
        with self._lock:
            return self._undo_stack.undo(
                lambda change: self._apply_history(change.item, change.before, "undo")
            )

    def redo(self) -> ImageLabelChange | None:
        """Redo the last undone change; ``None`` if there is none."""
        with self._lock:
            return self._undo_stack.redo(
                lambda change: self._apply_history(change.item, change.after, "redo")
            )

    def _apply_history(self, sample_id: int, value: str | None, note: str) -> ImageLabelChange:
        with self._write(durable=True) as conn:
            _id, key, current, _source = self._lookup(conn, sample_id)
            conn.execute(
                "INSERT INTO labels (sample_id, value, source, time, note) VALUES (?, ?, 'human', ?, ?)",
                (sample_id, value, time.time(), note),
            )
        return ImageLabelChange(sample_id, self._abs(key), current, value)
