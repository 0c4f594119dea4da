"""The labels of an image project: setting them (with their history) and undoing human changes.

A mixin of :class:`~labeltune.core.project.Project`; see core/project_store/base.py. Every change
appends a row to the append-only ``labels`` table (the history); the undo stack is the one both kinds
of project use (core/undo.py). Many samples labeled at once (:meth:`LabelsMixin.set_labels`) are one
transaction and one undo step (docs/adr/0039).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import TypeVar

from labeltune.core.domain import LabelEvent
from labeltune.core.errors import LabelTuneError, StorageError, UnusableInputError
from labeltune.core.file_problems import storage_reason
from labeltune.core.progress import Progress, ProgressCallback, check_stop
from labeltune.core.project_store.base import (
    CHUNK,
    DB_FILE,
    PERSON_SOURCES,
    ImageLabelBatch,
    ImageLabelChange,
    LabelSource,
    SampleRef,
    StoreBase,
    check_source,
    clean_class_name,
)
from labeltune.core.undo import LabelBatch

__all__ = ["ASIDE_ROWS", "BATCH_ROWS", "LabelsMixin"]

BATCH_ROWS = 5_000
"""History rows a batch writes between two progress reports (and checks of the stop event)."""
ASIDE_ROWS = 500
"""A batch of more samples is written through a connection of its own (see ``_batch_write``)."""
RefT = TypeVar("RefT", bound=SampleRef)
_INSERT = "INSERT INTO labels (sample_id, value, source, time, note) VALUES (?, ?, ?, ?, ?)"


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

    def set_labels(
        self,
        samples: Iterable[SampleRef],
        label: str | None,
        source: LabelSource = "human",
        *,
        create_class: bool = False,
        progress: ProgressCallback | None = None,
        stop_event: threading.Event | None = None,
    ) -> list[int]:
        """Give many samples one label (``None``: remove it): one transaction, one undo step.

        See :meth:`assign_labels`, which this calls with ``label`` for every sample.
        """
        return self.assign_labels(
            dict.fromkeys(samples, label),
            source,
            create_class=create_class,
            progress=progress,
            stop_event=stop_event,
        )

    def assign_labels(
        self,
        labels: Mapping[RefT, str | None],
        source: LabelSource = "human",
        *,
        create_class: bool = False,
        progress: ProgressCallback | None = None,
        stop_event: threading.Event | None = None,
    ) -> list[int]:
        """Give each sample its label in ONE transaction and push ONE undo step; the ids that changed.

        Each sample is treated as :meth:`set_label` treats it (no-ops record nothing, an unknown class
        raises unless ``create_class``), but all rows are written, with their history, in one
        transaction: a failure or the ``stop_event`` (:class:`StoppedError`) part-way leaves the store
        exactly as it was. An unknown sample raises :class:`UnusableInputError` before anything is
        written; a database or file error becomes a :class:`LabelTuneError` naming the project folder.
        A person's change of several samples is one undo step that gives each its own previous label
        and source back (one sample: as :meth:`set_label`). ``progress`` hears ``labeling`` reports.
        """
        check_source(source)
        wanted: dict[SampleRef, str | None] = {
            ref: None if value is None else clean_class_name(value) for ref, value in labels.items()
        }
        with self._saving("save the labels"):
            entry, changed = self._write_labels(wanted, source, create_class, progress, stop_event)
        if entry is not None:
            with self._lock:
                self._undo_stack.push(entry)
        return changed

    @contextlib.contextmanager
    def _batch_write(self, size: int, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction for ``size`` rows: the shared connection, or one of its own for a big batch.

        A big batch (over :data:`ASIDE_ROWS`) runs in a worker thread for seconds; on a connection of its
        own it does not hold the project's lock meanwhile, so the GUI thread goes on reading through the
        shared connection (WAL: readers see the labels before the batch until it commits).
        """
        if size <= ASIDE_ROWS:
            with self._write(durable) as conn:
                yield conn
            return
        conn = self._aside_connection()
        try:
            with self._transaction(conn, durable) as aside:
                yield aside
        finally:
            conn.close()

    def _aside_connection(self) -> sqlite3.Connection:
        """A new connection to the project's database (for one big batch; the caller closes it)."""
        with self._lock:
            path = self._db().execute("PRAGMA database_list").fetchone()[2]
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _write_labels(
        self,
        wanted: dict[SampleRef, str | None],
        source: LabelSource,
        create_class: bool,
        progress: ProgressCallback | None,
        stop_event: threading.Event | None,
    ) -> tuple[ImageLabelChange | ImageLabelBatch | None, list[int]]:
        """Write the history rows of :meth:`assign_labels`; its undo entry and the ids changed."""
        names: dict[str | None, str | None] = {None: None}  # one string object per class name, not per row
        rows: list[tuple[int, str | None, str, float, None]] = []
        items, before, after = array("q"), [], []
        sources: list[str | None] = []
        known, new_classes = set(self._meta["classes"]), []
        now = time.time()
        with self._batch_write(len(wanted), durable=source in PERSON_SOURCES) as conn:
            current = self._current_labels(conn, list(wanted))
            for ref, value in wanted.items():
                sample_id, label, label_source = current[ref]
                if value == label and (label_source == source or value is None):
                    continue
                if value is not None and value not in known:
                    if not create_class:
                        known_names = ", ".join(self._meta["classes"]) or "-"
                        raise UnusableInputError(f"unknown class {value!r}; known classes: {known_names}")
                    known.add(value)
                    new_classes.append(value)
                rows.append((sample_id, value, source, now, None))
                items.append(sample_id)  # also a source-only change ("import" → "human"): undo restores it
                before.append(names.setdefault(label, label))
                after.append(names.setdefault(value, value))
                sources.append(label_source)
            self._insert_rows(conn, rows, progress, stop_event)
            if new_classes:
                with self._lock:
                    self._save_meta(classes=[*self._meta["classes"], *new_classes])
            first_key = self._lookup(conn, items[0])[1] if len(items) == 1 else ""
        changed = list(items)
        relabeled = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
        if source not in PERSON_SOURCES or not relabeled:  # as set_label: no step that changes no label
            return None, changed
        if len(items) == 1:
            return ImageLabelChange(items[0], self._abs(first_key), before[0], after[0]), changed
        return ImageLabelBatch(items, before, after, sources, source), changed

    def _current_labels(
        self, conn: sqlite3.Connection, refs: list[SampleRef]
    ) -> dict[SampleRef, tuple[int, str | None, str | None]]:
        """``(id, label, label_source)`` of each sample (a repeated sample: its first ref only)."""
        ids = [ref for ref in refs if isinstance(ref, int) and not isinstance(ref, bool)]
        found: dict[int, tuple[int, str | None, str | None]] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            query = f"SELECT id, label, label_source FROM samples WHERE id IN ({','.join('?' * len(chunk))})"
            found.update((row[0], row) for row in conn.execute(query, chunk))
        result: dict[SampleRef, tuple[int, str | None, str | None]] = {}
        seen: set[int] = set()
        for ref in refs:
            row = found.get(ref) if isinstance(ref, int) and not isinstance(ref, bool) else None
            if row is None:
                sample_id, _key, label, label_source = self._lookup(conn, ref)  # a path, or unknown: raises
                row = (sample_id, label, label_source)
            if row[0] not in seen:
                seen.add(row[0])
                result[ref] = row
        return result

    @staticmethod
    def _insert_rows(
        conn: sqlite3.Connection,
        rows: Sequence[tuple[int, str | None, str, float, str | None]],
        progress: ProgressCallback | None,
        stop_event: threading.Event | None,
    ) -> None:
        """Append history rows in slices, reporting progress and checking the stop event between them."""
        total = len(rows)
        for start in range(0, total, BATCH_ROWS):
            check_stop(stop_event)
            conn.executemany(_INSERT, rows[start : start + BATCH_ROWS])
            if progress is not None:
                done = min(start + BATCH_ROWS, total)
                progress(Progress("labeling", done, total, f"Labeling {total:,} items…"))

    @contextlib.contextmanager
    def _saving(self, what: str) -> Iterator[None]:
        """Turn a database or file error into one line naming the project folder (nothing was changed)."""
        try:
            yield
        except StorageError:  # already one line naming the database and the reason in words
            raise
        except (sqlite3.Error, OSError) as exc:
            reason = storage_reason(exc, self._folder / DB_FILE) or str(exc)  # a pulled drive, a full disk
            raise LabelTuneError(f"cannot {what} in {self._folder}: {reason}; nothing was changed") from exc

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

        The change returned is what the undo did: the label the sample had, and the one it has now (a
        batch: its first sample's, with every sample in ``batch``).
        """
        return self._history_step(undo=True)

    def redo(self) -> ImageLabelChange | None:
        """Redo the last undone change; ``None`` if there is none."""
        return self._history_step(undo=False)

    def _history_step(self, undo: bool) -> ImageLabelChange | None:
        """Undo or redo the newest change; a batch is written first, then moved (see ``_batch_write``)."""
        with self._lock:
            entry = self._undo_stack.peek(redo=not undo)
        stack = self._undo_stack
        if isinstance(entry, LabelBatch):
            change = self._apply_batch(entry, undo)
            with self._lock:
                (stack.undo if undo else stack.redo)(lambda _entry: None)
            return change

        def apply(change: ImageLabelChange | ImageLabelBatch) -> ImageLabelChange:
            if isinstance(change, LabelBatch):  # pushed by another thread meanwhile
                return self._apply_batch(change, undo)
            value = change.before if undo else change.after
            return self._apply_history(change.item, value, "undo" if undo else "redo")

        with self._lock:
            return (stack.undo if undo else stack.redo)(apply)

    def next_undo_size(self, redo: bool = False) -> int:
        """How many samples the next undo (or redo) changes (0: none), so the app can run a big one aside."""
        with self._lock:
            entry = self._undo_stack.peek(redo)
        if entry is None:
            return 0
        return len(entry.items) if isinstance(entry, LabelBatch) else 1

    def _apply_batch(self, entry: ImageLabelBatch, undo: bool) -> ImageLabelChange:
        """Give every sample of a batch its label before (undo) or after (redo) it, in one transaction."""
        note = "undo" if undo else "redo"
        if undo:
            values, sources = entry.before, [source or "human" for source in entry.before_sources]
        else:
            values, sources = entry.after, [entry.source] * len(entry.items)
        rows = list(zip(entry.items, values, sources, repeat(time.time()), repeat(note), strict=False))
        never = [(i,) for i, s in zip(entry.items, entry.before_sources, strict=True) if s is None and undo]
        with self._saving(f"{note} the labels"), self._batch_write(len(rows), durable=True) as conn:
            _id, key, current, _source = self._lookup(conn, entry.items[0])
            self._insert_rows(conn, rows, None, None)
            # a sample nobody had labeled may again be labeled by an import (its history keeps the undo row)
            conn.executemany("UPDATE samples SET label_source = NULL WHERE id = ?", never)
        return ImageLabelChange(entry.items[0], self._abs(key), current, values[0], batch=tuple(entry.items))

    def _apply_history(self, sample_id: int, value: str | None, note: str) -> ImageLabelChange:
        with self._write(durable=True) as conn:
            _id, key, current, _source = self._lookup(conn, sample_id)
            conn.execute(
                "INSERT INTO labels (sample_id, value, source, time, note) VALUES (?, ?, 'human', ?, ?)",
                (sample_id, value, time.time(), note),
            )
        return ImageLabelChange(sample_id, self._abs(key), current, value)
