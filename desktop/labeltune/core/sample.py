"""A sample: one image and its label, the plain record that scanning, projects and training pass around.

It lives in its own small module so that the project store (core/project.py) and the scanners
(core/datasets.py) can both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sample"]


@dataclass(frozen=True)
class Sample:
    """One image: its absolute path, its label (``None`` = unlabeled) and an optional group key."""

    path: Path
    label: str | None
    group: str | None = None
