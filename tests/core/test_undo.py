"""The one undo stack both kinds of project use (core/undo.py)."""

from __future__ import annotations

import pytest

from labeltune.core.undo import UndoStack


def test_undo_and_redo_move_changes_between_the_sides() -> None:
    stack: UndoStack[str] = UndoStack(limit=10)
    assert not stack.can_undo() and not stack.can_redo()
    assert stack.undo(str.upper) is None and stack.redo(str.upper) is None
    stack.push("a")
    stack.push("b")
    assert len(stack) == 2 and stack.can_undo() and not stack.can_redo()
    assert stack.undo(str.upper) == "B"  # newest first; the result of apply comes back
    assert stack.can_redo() and len(stack) == 1
    assert stack.redo(lambda change: change * 2) == "bb"
    assert stack.undo(str.upper) == "B" and stack.undo(str.upper) == "A"
    assert not stack.can_undo() and stack.undo(str.upper) is None
    stack.push("c")  # a new change: what was undone can no longer be redone
    assert not stack.can_redo() and stack.redo(str.upper) is None
    stack.clear()
    assert not stack.can_undo() and not stack.can_redo()


def test_a_change_that_fails_to_apply_stays_where_it_was() -> None:
    stack: UndoStack[int] = UndoStack(limit=10)
    stack.push(1)

    def disk_full(_change: int) -> int:
        raise OSError("disk full")

    with pytest.raises(OSError):
        stack.undo(disk_full)
    assert stack.can_undo() and not stack.can_redo()
    assert stack.undo(lambda change: change + 10) == 11  # it can be tried again
    with pytest.raises(OSError):
        stack.redo(disk_full)
    assert stack.can_redo() and not stack.can_undo()


def test_the_oldest_changes_are_forgotten_past_the_limit() -> None:
    stack: UndoStack[int] = UndoStack(limit=3)
    for change in range(5):
        stack.push(change)
    assert stack.limit == 3
    undone = []
    while (change := stack.undo(lambda c: c)) is not None:
        undone.append(change)
    assert undone == [4, 3, 2]
    with pytest.raises(ValueError, match="at least one"):
        UndoStack(limit=0)
