"""What the main window asks of the page that shows one kind of project (images, XRD patterns).

The window keeps one page per domain (``LabelProject.domain``) and speaks to the one showing the open
project only through these verbs, so it never asks which kind of project is open. See docs/adr/0024.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ProjectPage(Protocol):
    """A page of the window's stack that shows the open project of its domain (it is also a QWidget)."""

    @property
    def import_text(self) -> str:
        """The text of File ▸ Import while this page shows the open project (``&Import images…``)."""
        ...

    def undo(self) -> None:
        """Undo the last label change of the open project and show what it touched."""
        ...

    def redo(self) -> None:
        """Redo the last undone label change of the open project and show what it touched."""
        ...

    def choose_import(self) -> None:
        """Ask for files (or a folder) to add to the open project, and add them."""
        ...

    def import_files(self, paths: list[Path]) -> None:
        """Add dropped files or folders to the open project: only they."""
        ...

    def shutdown(self) -> None:
        """Stop background work and wait for it (the window is closing)."""
        ...


__all__ = ["ProjectPage"]
