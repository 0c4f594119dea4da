"""A path field with its Browse… button on one row, as dialogs that ask for a file or folder lay it out."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton


def path_row(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    """``edit`` taking the room, ``button`` beside it."""
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row
