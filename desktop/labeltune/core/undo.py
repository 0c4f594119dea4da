"""One undo/redo stack for every kind of project (images and XRD patterns alike).

The stack only keeps entries and moves them between its two sides; what an entry means and how it is
applied stays with the project: :meth:`UndoStack.undo` and :meth:`UndoStack.redo` take the function that
applies the entry, and move the entry only when that function returns, so a change that failed to be
written (a full disk, a locked database) stays where it was and can be tried again.

Not thread-safe on its own: a project that is shared between threads calls it under its own lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["LabelBatch", "UndoStack"]

T = TypeVar("T")
R = TypeVar("R")
ItemT = TypeVar("ItemT")
LabelT = TypeVar("LabelT")


@dataclass(frozen=True, eq=False)
class LabelBatch(Generic[ItemT, LabelT]):
    """One undo entry for many items labeled at once (``set_labels``): undone and redone as one step.

    Kept compact (no paths, no object per item): a 100 000-item batch is four lists. ``before_sources``
    are the items' label sources before the batch (``None``: never labeled), so undo gives each item back
    its own label *and* source (an imported label stays one an import may update); ``source`` is the
    batch's. See
    docs/adr/0039.
    """

    items: Sequence[ItemT]
    before: Sequence[LabelT]
    after: Sequence[LabelT]
    before_sources: Sequence[str | None]
    source: str


class UndoStack(Generic[T]):
    """Changes that can be undone (newest last) and undone changes that can be redone.

    At most ``limit`` changes are kept on each side; the oldest are forgotten first.
    """

    def __init__(self, limit: int) -> None:
        """Keep at most ``limit`` (at least 1) changes to undo, and as many to redo."""
        if limit < 1:
            raise ValueError(f"an undo stack keeps at least one change, not {limit}")
        self._undo: deque[T] = deque(maxlen=limit)
        self._redo: deque[T] = deque(maxlen=limit)

    @property
    def limit(self) -> int:
        """How many changes each side keeps."""
        return self._undo.maxlen or 0

    def push(self, change: T) -> None:
        """Record a new change: it can be undone, and nothing undone before can be redone any more."""
        self._undo.append(change)
        self._redo.clear()

    def can_undo(self) -> bool:
        """Whether there is a change to undo."""
        return bool(self._undo)

    def can_redo(self) -> bool:
        """Whether there is an undone change to redo."""
        return bool(self._redo)

    def peek(self, redo: bool = False) -> T | None:
        """The change the next :meth:`undo` (``redo``: :meth:`redo`) would apply, or ``None``."""
        side = self._redo if redo else self._undo
        return side[-1] if side else None

    def undo(self, apply: Callable[[T], R]) -> R | None:
        """Undo the newest change with ``apply`` and return what it returns (``None``: nothing to undo).

        The change moves to the redo side only when ``apply`` returns; if it raises, nothing moves.
        """
        if not self._undo:
            return None
        result = apply(self._undo[-1])
        self._redo.append(self._undo.pop())
        return result

    def redo(self, apply: Callable[[T], R]) -> R | None:
        """Redo the newest undone change with ``apply``, as :meth:`undo` does (``None``: nothing to redo)."""
        if not self._redo:
            return None
        result = apply(self._redo[-1])
        self._undo.append(self._redo.pop())
        return result

    def clear(self) -> None:
        """Forget every change on both sides (after an edit that cannot be undone one item at a time)."""
        self._undo.clear()
        self._redo.clear()

    def __len__(self) -> int:
        """How many changes can be undone."""
        return len(self._undo)
