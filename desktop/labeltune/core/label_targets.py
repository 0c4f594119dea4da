"""The image and XRD sides of label import, export and labeling by path (core/label_io.py does the rest).

:func:`label_target` adapts an open project of either kind to :class:`~labeltune.core.label_io.LabelTarget`;
:func:`open_label_project` opens a project folder of either kind. Labels are committed through the
projects' own ``set_label``, exactly as the app commits them (history, and undo for a person's change).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labeltune.core.domain import LabelProject
from labeltune.core.errors import UnusableInputError
from labeltune.core.label_io import LabeledItem, LabelTarget
from labeltune.core.project import Project
from labeltune.core.project_store.base import LabelSource
from labeltune.core.xrd.xrd_project import XrdProject, is_xrd_project

__all__ = ["ImageLabels", "XrdLabels", "label_target", "open_label_project"]


def open_label_project(folder: str | os.PathLike[str]) -> LabelProject:
    """Open the project in ``folder``, image or XRD (raises :class:`UnusableInputError` if it is neither)."""
    return XrdProject.open(folder) if is_xrd_project(folder) else Project.open(folder)


def label_target(project: LabelProject) -> LabelTarget:
    """The label import/export face of an open project of either kind."""
    if isinstance(project, XrdProject):
        return XrdLabels(project)
    if isinstance(project, Project):
        return ImageLabels(project)
    raise TypeError(f"no label import for {type(project).__name__}")


class ImageLabels:
    """An image project's labels: one class name per sample (key: the sample's database id)."""

    label_header = "label"
    extra_header: str | None = None

    def __init__(self, project: Project) -> None:
        self.project = project

    def labeled(self) -> list[LabeledItem]:
        """Every labeled sample, in import order, with the source of its current label."""
        items = []
        for sample_id, path, label in self.project.rows():
            if label is not None:
                history = self.project.label_history(sample_id)
                source = history[-1].source if history else "import"
                items.append(LabeledItem(sample_id, Path(path), label, source))
        return items

    def find(self, path: str) -> int | None:
        """The id of the sample stored under ``path``, or ``None``."""
        try:
            return self.project.sample_id(path)
        except UnusableInputError:
            return None

    def files(self) -> list[tuple[Any, Path]]:
        """Every sample's id and file."""
        return [(sample_id, Path(path)) for sample_id, path, _label in self.project.rows()]

    def unknown_names(self, label: str) -> list[str]:
        """``[label]`` when it is not one of the project's classes."""
        name = label.strip()
        return [name] if name and name not in self.project.classes else []

    def apply(self, key: Any, label: str, source: str, extra: str, allow_new: bool) -> bool:
        """Set the sample's label (empty: remove it); whether its label changed."""
        before = self.project.label_of(key)
        checked: LabelSource = source if source in ("human", "import", "model") else "import"  # type: ignore[assignment]
        self.project.set_label(key, label.strip() or None, checked, create_class=allow_new)
        return self.project.label_of(key) != before

    def apply_many(self, keys: Sequence[Any], label: str, allow_new: bool) -> int:
        """Give every sample the label (empty: remove it) as a person: one transaction, one undo step."""
        return len(self.project.set_labels(keys, label.strip() or None, "human", create_class=allow_new))


class XrdLabels:
    """An XRD project's labels: phases joined by ``;`` with optional fractions (key: ``labels.csv`` path)."""

    label_header = "phases"
    extra_header: str | None = "fractions"

    def __init__(self, project: XrdProject) -> None:
        self.project = project

    def _keys(self) -> dict[str, Path]:
        return {self.project.key(path): path for path in self.project.patterns()}

    def labeled(self) -> list[LabeledItem]:
        """Every labeled pattern, by name, with the source of its current label."""
        items = []
        for key, path in self._keys().items():
            label = self.project.labels(key)
            if label.is_labeled:
                history = self.project.label_history(key)
                source = history[-1].source if history else "import"
                fractions = "" if label.fractions is None else ";".join(f"{f:.6g}" for f in label.fractions)
                items.append(LabeledItem(key, path, ";".join(label.phases), source, fractions))
        return items

    def find(self, path: str) -> str | None:
        """The ``labels.csv`` key of the pattern at ``path``, or ``None``."""
        key = self.project.key(path)
        return key if key in self._keys() else None

    def files(self) -> list[tuple[Any, Path]]:
        """Every pattern's key and file."""
        return list(self._keys().items())

    def unknown_names(self, label: str) -> list[str]:
        """The phases of ``label`` that are neither a library phase's name nor its formula.

        A plain formula (``TiO2``) is a label where only the composition is known (core/xrd/xrd_project.py).
        """
        library = self.project.library()
        known = set(library.names) | {phase.formula for phase in library.phases}
        return [name for name in _phases(label) if name not in known]

    def apply(self, key: Any, label: str, source: str, extra: str, allow_new: bool) -> bool:
        """Set the pattern's phases (and fractions, when given); whether its label changed."""
        try:
            fractions = [float(value) for value in extra.split(";")] if extra.strip() else None
        except ValueError:
            raise UnusableInputError(f"fractions {extra!r} of {key} are not numbers") from None
        before = self.project.labels(key)
        after = self.project.set_label(key, _phases(label), fractions, source=source)
        return after != before

    def apply_many(self, keys: Sequence[Any], label: str, allow_new: bool) -> int:
        """Give every pattern the phases (empty: remove them) as a person: one write, one undo step."""
        return len(self.project.set_labels(keys, _phases(label), source="human"))


def _phases(label: str) -> list[str]:
    return [name.strip() for name in label.split(";") if name.strip()]
