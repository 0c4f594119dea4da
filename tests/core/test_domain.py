"""Both kinds of project offer the app the same interface (core/domain.py)."""

from __future__ import annotations

from pathlib import Path

from test_xrd_project import write_library  # tests/core is on sys.path (no __init__.py)

from labeltune.core.domain import DOMAINS, LabelProject
from labeltune.core.project import Project
from labeltune.core.xrd.xrd_project import XrdProject


def _static_check(image: Project, xrd: XrdProject) -> list[LabelProject]:
    return [image, xrd]  # mypy checks that both satisfy the Protocol


def test_image_project_is_a_label_project(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", "Corn", classes=["a", "b"])
    try:
        assert isinstance(project, LabelProject)
        assert project.domain in DOMAINS
        assert project.domain == "image"
        assert not project.can_undo()
        assert project.undo() is None
    finally:
        project.close()


def test_xrd_project_is_a_label_project(tmp_path: Path) -> None:
    xrd_project = XrdProject.create(tmp_path / "proj", "Oxides", write_library(tmp_path / "lib"))
    assert isinstance(xrd_project, LabelProject)
    assert xrd_project.domain == "xrd"
    assert xrd_project.runs_dir == xrd_project.folder / "runs"
    assert xrd_project.undo() is None
    xrd_project.close()  # nothing held: closing twice is harmless
    xrd_project.close()
