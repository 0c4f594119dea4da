"""What every LabelTune project offers the app, whatever its data: images or XRD patterns.

The app (``ui/``), the workers and the command line speak to a project through :class:`LabelProject`;
what differs between the domains (what a label is, how items are stored, how a batch is made) stays
inside the two implementations, :class:`labeltune.core.project.Project` (images, SQLite store) and
:class:`labeltune.core.xrd.xrd_project.XrdProject` (XRD patterns, plain files). See docs/adr/0020.

This module imports nothing heavy and nothing from Qt: it is the seam between the layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

Domain = Literal["image", "xrd"]
DOMAINS: tuple[Domain, ...] = ("image", "xrd")


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

    def undo(self) -> object | None:
        """Undo the last label change; what changed, or ``None`` when there was nothing to undo."""
        ...

    def redo(self) -> object | None:
        """Redo the last undone label change; what changed, or ``None``."""
        ...

    def close(self) -> None:
        """Release what the project holds open (a database connection); idempotent."""
        ...


__all__ = ["DOMAINS", "Domain", "LabelProject"]
