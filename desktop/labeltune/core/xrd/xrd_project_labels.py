"""Setting an XRD project's labels, their history, undo and redo.

A mixin of :class:`~labeltune.core.xrd.xrd_project.XrdProject`, which gives it the project's labels, undo
stack and history and the path keys; what a label is, ``labels.csv`` and the history file are
core/xrd/xrd_labels.py's. Every change is written to ``labels.csv`` (by ``XrdProject._save_labels``) before
it is appended to the history; many patterns labeled at once are one write and one undo step
(docs/adr/0039).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from labeltune.core.domain import LabelChange, LabelEvent
from labeltune.core.errors import StorageError
from labeltune.core.undo import LabelBatch, UndoStack
from labeltune.core.xrd.xrd_labels import LabelHistory, XrdLabel, XrdProjectError, check_label

__all__ = ["XrdLabelBatch", "XrdLabelChange", "XrdLabelsMixin"]

XrdLabelChange = LabelChange[str, XrdLabel]
"""A label change of an XRD project: the pattern's ``labels.csv`` key, its file, both labels."""
XrdLabelBatch = LabelBatch[str, XrdLabel]
"""The undo entry of many patterns labeled at once (:meth:`XrdProject.set_labels`, docs/adr/0039)."""


class XrdLabelsMixin:
    """Setting labels, their history, undo and redo."""

    _labels: dict[str, XrdLabel]
    _undo_stack: UndoStack[XrdLabelChange | XrdLabelBatch]
    _history: LabelHistory

    if TYPE_CHECKING:  # XrdProject's

        def key(self, path: str | os.PathLike[str]) -> str:
            """The project-relative POSIX path used in ``labels.csv`` for a pattern file."""

        def path_of(self, key: str) -> Path:
            """The file behind a ``labels.csv`` path."""

        def patterns(self) -> list[Path]:
            """The pattern files in ``patterns/``."""

        def _save_labels(self) -> None:
            """Write ``labels.csv`` (whole or not at all)."""

        @property
        def labels_file(self) -> Path:
            """The ``labels.csv`` file."""

    def labels(self, path: str | os.PathLike[str]) -> XrdLabel:
        """The label of one pattern (an empty label when it has none)."""
        return self._labels.get(self.key(path), XrdLabel())

    def labeled_count(self) -> int:
        """How many patterns in ``patterns/`` have a label."""
        return sum(1 for p in self.patterns() if self.labels(p).is_labeled)

    def set_label(
        self,
        path: str | os.PathLike[str],
        phases: Sequence[str],
        fractions: Sequence[float] | None = None,
        *,
        source: str = "human",
    ) -> XrdLabel:
        """Label one pattern (no phases = unlabeled); written to ``labels.csv`` before returning.

        ``source`` is recorded in the history (``import``: from a label file); a person's change
        (``human``) can be undone.
        """
        label = check_label(phases, fractions)
        key = self.key(path)
        before = self.labels(key)
        if label == before:
            return label
        self._apply(key, label, note=None, source=source)
        if source == "human":
            self._undo_stack.push(XrdLabelChange(key, self.path_of(key), before, label))
        return label

    def set_labels(
        self,
        paths: Iterable[str | os.PathLike[str]],
        phases: Sequence[str],
        fractions: Sequence[float] | None = None,
        *,
        source: str = "human",
    ) -> list[str]:
        """Give many patterns one label: one ``labels.csv`` write, one history block, one undo step.

        Returns the keys whose label changed (a pattern that has the label already is left alone). A
        failed write leaves ``labels.csv`` and the labels as they were (:class:`XrdProjectError`).
        A person's change of several patterns is undone and redone as one step (docs/adr/0039).
        """
        label = check_label(phases, fractions)
        keys = list(dict.fromkeys(self.key(path) for path in paths))
        before = [self.labels(key) for key in keys]
        changed = [key for key, old in zip(keys, before, strict=True) if old != label]
        if not changed:
            return []
        self._apply_many(dict.fromkeys(changed, label), None, source)
        if source == "human":
            old_labels = [old for old in before if old != label]
            if len(changed) == 1:
                self._undo_stack.push(
                    XrdLabelChange(changed[0], self.path_of(changed[0]), old_labels[0], label)
                )
            else:
                n = len(changed)
                self._undo_stack.push(XrdLabelBatch(changed, old_labels, [label] * n, ["human"] * n, source))
        return changed

    def set_each_label(self, labels: Mapping[Path, XrdLabel] | Mapping[str, XrdLabel]) -> list[str]:
        """Give each pattern its own label (labels from file names): one write, one human undo step.

        Returns the keys whose label changed; a failed write changes nothing (:class:`XrdProjectError`).
        """
        wanted = {
            self.key(path): check_label(label.phases, label.fractions) for path, label in labels.items()
        }
        changed = [key for key, label in wanted.items() if self.labels(key) != label]
        if not changed:
            return []
        before = [self.labels(key) for key in changed]
        after = [wanted[key] for key in changed]
        self._apply_many(dict(zip(changed, after, strict=True)), None, "human")
        n = len(changed)
        self._undo_stack.push(XrdLabelBatch(changed, before, after, ["human"] * n, "human"))
        return changed

    def undo(self) -> XrdLabelChange | None:
        """Undo the last label change; what the undo changed (``None``: nothing to undo)."""
        return self._undo_stack.undo(
            lambda change: (
                self._step_batch(change, undo=True)
                if isinstance(change, LabelBatch)
                else self._step(change.item, change.before, "undo")
            )
        )

    def redo(self) -> XrdLabelChange | None:
        """Redo the last undone label change; what the redo changed (``None``: nothing to redo)."""
        return self._undo_stack.redo(
            lambda change: (
                self._step_batch(change, undo=False)
                if isinstance(change, LabelBatch)
                else self._step(change.item, change.after, "redo")
            )
        )

    def _step_batch(self, entry: XrdLabelBatch, undo: bool) -> XrdLabelChange:
        """Give every pattern of a batch its label before (undo) or after (redo) it, in one write."""
        values = entry.before if undo else entry.after
        first = self.labels(entry.items[0])
        self._apply_many(dict(zip(entry.items, values, strict=True)), "undo" if undo else "redo")
        return XrdLabelChange(
            entry.items[0], self.path_of(entry.items[0]), first, values[0], tuple(entry.items)
        )

    def can_undo(self) -> bool:
        """Whether there is a change to undo."""
        return self._undo_stack.can_undo()

    def can_redo(self) -> bool:
        """Whether there is an undone change to redo."""
        return self._undo_stack.can_redo()

    def _step(self, key: str, label: XrdLabel, note: str) -> XrdLabelChange:
        """Give ``key`` the label ``label`` as an undo or redo (``note``); what changed."""
        before = self.labels(key)
        self._apply(key, label, note)
        return XrdLabelChange(key, self.path_of(key), before, label)

    def _apply(self, key: str, label: XrdLabel, note: str | None, source: str = "human") -> None:
        """Write ``label`` to ``labels.csv`` (all or nothing), then append it to the history."""
        self._apply_many({key: label}, note, source)

    def _apply_many(self, labels: dict[str, XrdLabel], note: str | None, source: str = "human") -> None:
        """Write the patterns' labels to ``labels.csv`` in one write (all or nothing), then the history."""
        previous = {key: self._labels.get(key) for key in labels}
        unrecorded = [  # before labels.csv changes
            (key, event)
            for key, old in previous.items()
            if (event := self._history.unrecorded(key, old or XrdLabel())) is not None
        ]
        for key, label in labels.items():
            if label.is_labeled:
                self._labels[key] = label
            else:
                self._labels.pop(key, None)
        try:
            self._save_labels()
        except BaseException as exc:
            for key, old in previous.items():
                if old is None:
                    self._labels.pop(key, None)
                else:
                    self._labels[key] = old
            if isinstance(exc, OSError) and not isinstance(exc, StorageError):  # one line: which file, why
                reason = exc.strerror or str(exc)
                raise XrdProjectError(f"cannot save the labels in {self.labels_file}: {reason}") from exc
            raise  # a StorageError already names labels.csv and the reason in words (ADR 0042)
        now = time.time()
        self._history.append_many(
            [*unrecorded, *((key, LabelEvent(v, source, now, note)) for key, v in labels.items())]
        )

    def label_history(self, path: str | os.PathLike[str]) -> list[LabelEvent[XrdLabel]]:
        """Every label a pattern has had, oldest first (source ``human``; ``import``: see below).

        A label that ``labels.csv`` holds but the history does not (written by another tool, or by a
        version of LabelTune that kept no history) is shown as an ``import`` event dated by the file,
        and is recorded as one before the pattern's label next changes.
        """
        key = self.key(path)
        unrecorded = self._history.unrecorded(key, self.labels(key))
        events = self._history.events(key)
        return events if unrecorded is None else [*events, unrecorded]
