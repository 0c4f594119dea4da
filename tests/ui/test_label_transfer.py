"""File ▸ Export labels… and Import labels… for the open project, images and XRD (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QFileDialog

from conftest import write_class_folder, write_library, write_xy  # tests/conftest.py
from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.xrd.xrd_project import XrdLabel, XrdProject
from labeltune.ui.main_window import MainWindow

TIMEOUT = 30_000


def _window(qtbot) -> MainWindow:
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    return window


def _choose(monkeypatch: pytest.MonkeyPatch, name: str, file: Path) -> list[str]:
    """Answer the file dialog ``name`` with ``file``; the list records the dialog's title."""
    asked: list[str] = []

    def answer(_parent: object, title: str, *_args: object) -> tuple[str, str]:
        asked.append(title)
        return str(file), "Label files (*.csv)"

    monkeypatch.setattr(QFileDialog, name, answer)
    return asked


def test_image_labels_exported_then_imported_from_the_file_menu(qtbot, tmp_path: Path, monkeypatch) -> None:
    data = write_class_folder(tmp_path / "images", classes=2, per_class=3, size=16)
    with Project.create(tmp_path / "proj", name="proj") as project:
        project.add_samples(scan(data).samples)
    window = _window(qtbot)
    assert not window.export_labels_action.isEnabled()
    window.open_project(tmp_path / "proj")
    assert window.export_labels_action.isEnabled() and window.import_labels_action.isEnabled()

    out = tmp_path / "out" / "labels.csv"
    asked = _choose(monkeypatch, "getSaveFileName", out)
    with qtbot.waitSignal(window.label_transfer.done, timeout=TIMEOUT) as blocker:
        window.export_labels_action.trigger()
    assert asked == ["Export labels"] and "6 label(s)" in blocker.args[0]
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "path,label,source" and len(lines) == 7
    assert lines[1].endswith("class0/img000.png,class0,import")

    edited = tmp_path / "edited.csv"  # one label changed, one unknown class, one stray row
    edited.write_text(
        f"path,label\n{data / 'class0' / 'img000.png'},class1\n"
        f"{data / 'class0' / 'img001.png'},heron\n{tmp_path / 'gone.png'},class0\n",
        encoding="utf-8",
    )
    changed: list[list[int]] = []
    window.session.labels_changed.connect(changed.append)
    _choose(monkeypatch, "getOpenFileName", edited)
    with qtbot.waitSignal(window.label_transfer.done, timeout=TIMEOUT) as blocker:
        window.import_labels_action.trigger()
    summary = blocker.args[0]
    assert "1 label(s) changed" in summary and "heron (1)" in summary and "gone.png" in summary
    assert window.label_transfer.message is not None and window.label_transfer.message.text() == summary
    project = window.session.require()
    assert project.label_of(data / "class0" / "img000.png") == "class1"
    assert project.label_of(data / "class0" / "img001.png") == "class0"
    assert project.label_history(data / "class0" / "img000.png")[-1].source == "import"
    assert changed == [[]]  # the panels were told
    window.session.close()
    window.close()


def test_xrd_labels_imported_from_the_file_menu_show_in_the_list(qtbot, tmp_path: Path, monkeypatch) -> None:
    xrd = XrdProject.create(tmp_path / "xrd", "XRD", write_library(tmp_path / "lib"))
    xrd.import_patterns([write_xy(tmp_path / "in" / f"p{i}.xy", 20 + 5 * i) for i in range(2)])
    labels = tmp_path / "labels.csv"
    labels.write_text("\ufeffpath,phases,fractions\npatterns/p1.xy,A_1;B_2,0.4;0.6\n", encoding="utf-8")
    window = _window(qtbot)
    window.open_project(xrd.folder)
    page = window.xrd_page
    assert "not labeled" in page._describe(page.project.patterns()[1])[0]  # type: ignore[union-attr]

    _choose(monkeypatch, "getOpenFileName", labels)
    with qtbot.waitSignal(window.label_transfer.done, timeout=TIMEOUT):
        window.import_labels_action.trigger()
    assert XrdProject.open(xrd.folder).labels("patterns/p1.xy") == XrdLabel(("A_1", "B_2"), (0.4, 0.6))
    assert "A_1 40 % + B_2 60 %" in page.patterns_panel.list.item(1).text()

    out = tmp_path / "export.csv"
    _choose(monkeypatch, "getSaveFileName", out)
    with qtbot.waitSignal(window.label_transfer.done, timeout=TIMEOUT):
        window.export_labels_action.trigger()
    assert out.read_text(encoding="utf-8").splitlines() == [
        "path,phases,fractions,source",
        "xrd/patterns/p1.xy,A_1;B_2,0.4;0.6,import",
    ]
    window.session.close()
    window.close()
