"""What every LabelTune project offers the app, whatever its data: images or XRD patterns.

The app (``ui/``), the workers and the command line speak to a project through :class:`LabelProject`;
what differs between the domains (what a label is, how items are stored, how a batch is made) stays
inside the two implementations, :class:`labeltune.core.project.Project` (images, SQLite store) and
:class:`labeltune.core.xrd.xrd_project.XrdProject` (XRD patterns, plain files). See docs/adr/0020, and
docs/adr/0021 for the one undo stack (core/undo.py), the change and history types below and the XRD store.

This module imports nothing heavy and nothing from Qt: it is the seam between the layers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

Domain = Literal["image", "xrd"]
DOMAINS: tuple[Domain, ...] = ("image", "xrd")
"""The kinds of project, in the order the app offers them (the one list: core/project.py uses it too)."""

ItemT = TypeVar("ItemT")
LabelT = TypeVar("LabelT")


@dataclass(frozen=True)
class LabelChange(Generic[ItemT, LabelT]):
    """What one undo or redo changed: which item, its file, and its label before and after.

    ``item`` is how the project names the item: a sample's database id (images) or the pattern's
    ``labels.csv`` key (XRD). A label is a class name or ``None`` (images), or an
    :class:`~labeltune.core.xrd.xrd_project.XrdLabel` (XRD; empty = unlabeled).
    """

    item: ItemT
    path: Path
    before: LabelT
    after: LabelT
    batch: tuple[ItemT, ...] = ()
    """Every item, when the step changed several at once (``set_labels``; ``item`` is the first of them,
    ``before``/``after`` its labels): undone and redone as one step, see docs/adr/0039."""

    @property
    def sample_id(self) -> ItemT:
        """The image project's name for :attr:`item` (a database id)."""
        return self.item

    @property
    def items(self) -> tuple[ItemT, ...]:
        """Every item this step changed: the batch, or :attr:`item` alone."""
        return self.batch or (self.item,)


@dataclass(frozen=True)
class LabelEvent(Generic[LabelT]):
    """One row of an item's label history: the label it got, from whom (``source``), when and why."""

    value: LabelT
    source: str
    time: float
    note: str | None = None


@runtime_checkable
class LabelProject(Protocol):
    """An open project: a folder with items, their labels (with undo), and training runs."""

    @property
    def folder(self) -> Path:
        """The project folder."""
        ...

    @property
    def name(self) -> str:
        """The display name (the window title shows it)."""
        ...

    @property
    def domain(self) -> str:
        """``"image"`` or ``"xrd"``: which page of the app shows it."""
        ...

    @property
    def runs_dir(self) -> Path:
        """Where training runs made from this project go."""
        ...

    def can_undo(self) -> bool:
        """Whether :meth:`undo` has a label change to undo."""
        ...

    def can_redo(self) -> bool:
        """Whether :meth:`redo` has a label change to redo."""
        ...

    def undo(self) -> LabelChange[Any, Any] | None:
        """Undo the last label change; what changed, or ``None`` when there was nothing to undo."""
        ...

    def redo(self) -> LabelChange[Any, Any] | None:
        """Redo the last undone label change; what changed, or ``None``."""
        ...

    def label_history(self, path: str | os.PathLike[str], /) -> Sequence[LabelEvent[Any]]:
        """Every label an item (given by its path) has had, oldest first."""
        ...

    def close(self) -> None:
        """Release what the project holds open (a database connection); idempotent."""
        ...


__all__ = ["DOMAINS", "Domain", "LabelChange", "LabelEvent", "LabelProject"]
