"""Both kinds of project offer the app the same interface (core/domain.py)."""

from __future__ import annotations

from pathlib import Path

from test_xrd_project import write_library  # tests/core is on sys.path (no __init__.py)

from labeltune.core.domain import DOMAINS, LabelChange, LabelProject
from labeltune.core.project import Project
from labeltune.core.sample import Sample
from labeltune.core.xrd.xrd_project import XrdLabel, XrdProject


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


def test_both_kinds_undo_through_one_change_type_and_keep_a_history(tmp_path: Path) -> None:
    image = Project.create(tmp_path / "p", "Corn", classes=["a", "b"])
    xrd = XrdProject.create(tmp_path / "proj", "Oxides", write_library(tmp_path / "lib"))
    try:
        (tmp_path / "p" / "leaf.png").write_bytes(b"")
        image.add_samples([Sample(tmp_path / "p" / "leaf.png", None)])
        (xrd.patterns_dir / "x.xy").write_text("10 1\n20 2\n", encoding="utf-8")
        image.set_label("leaf.png", "a")
        xrd.set_label("patterns/x.xy", ["A_1"])
        projects: list[LabelProject] = [image, xrd]
        changes = [project.undo() for project in projects]
        assert changes == [
            LabelChange(image.sample_id("leaf.png"), tmp_path / "p" / "leaf.png", "a", None),
            LabelChange("patterns/x.xy", xrd.patterns_dir / "x.xy", XrdLabel(("A_1",)), XrdLabel()),
        ]
        assert [type(change) for change in changes] == [LabelChange, LabelChange]
        histories = [
            project.label_history(change.path) for project, change in zip(projects, changes, strict=True)
        ]
        assert [[(e.source, e.note) for e in history] for history in histories] == [
            [("human", None), ("human", "undo")],
            [("human", None), ("human", "undo")],
        ]
    finally:
        image.close()


def test_the_domain_names_are_listed_once() -> None:
    from labeltune.core import project as project_module

    assert project_module.DOMAINS is DOMAINS  # the image store checks a project's domain against this list
