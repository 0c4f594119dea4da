"""Issue 12: Results ▸ Find likely label errors…, then the Label tab's filters of the stored audit."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from conftest import open_image_page, train_small_project, write_class_folder  # tests/conftest.py
from labeltune.core import audit_store
from labeltune.core.errors import UnusableInputError
from labeltune.ui import image_check
from labeltune.ui.gallery_model import GalleryFilter
from labeltune.ui.image_page import ImagePage

PLANTED = [f"img{i:03d}.png" for i in range(4)]  # red class0 images labeled class2 (blue)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three colour classes, four class0 images labeled class2, a near-copy in class2; one short run."""
    root = tmp_path_factory.mktemp("audit")
    data = write_class_folder(root / "data", classes=3, per_class=16, size=40)
    rng = np.random.default_rng(1)
    pixels = np.asarray(Image.open(data / "class2" / "img005.png"), np.int16) + rng.integers(
        -2, 3, (40, 40, 3)
    )
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(data / "class2" / "twin.png")
    folder, run_dir = train_small_project(root, {f"class0/{name}": "class2" for name in PLANTED}, data)
    return {"folder": folder, "run_dir": run_dir, "data": data}


@pytest.fixture
def copy(trained, tmp_path: Path) -> Path:
    """A copy of the trained project (each test changes it)."""
    target = tmp_path / "project"
    shutil.copytree(trained["folder"], target)
    return target


@pytest.fixture
def page(qtbot, copy: Path) -> Iterator[ImagePage]:
    widget: ImagePage = open_image_page(qtbot, copy)  # type: ignore[assignment]
    yield widget
    widget.shutdown()
    widget.label_page.session.close()


def _run_audit(page: ImagePage, qtbot) -> dict[str, Any]:
    audit = page.results_panel.label_audit
    with qtbot.waitSignal(audit.controller.finished, timeout=120_000) as blocker:
        page.results_panel.details_view.audit_button.click()
    return blocker.args[0]


def test_the_audit_runs_off_the_gui_thread_and_lists_the_planted_errors_first(
    page, qtbot, monkeypatch
) -> None:
    threads: list[threading.Thread] = []
    real = audit_store.audit_project

    def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(audit_store, "audit_project", recording)
    run_dir = Path(str(page.results_panel.details_view.details.run["path"]))
    result = _run_audit(page, qtbot)
    assert threads and threads[0] is not threading.main_thread()
    stored = json.loads((run_dir / audit_store.AUDIT_FILE).read_text())
    assert stored["label_issues"] == result["label_issues"]
    assert "likely label errors" in page.results_panel.details_view.audit_label.text()

    labels = page.label_page
    texts = [labels.filter_combo.itemText(i) for i in range(labels.filter_combo.count())]
    assert f"Likely label errors ({len(result['label_issues'])})" in texts
    labels.set_filter(GalleryFilter("label_errors"))
    model = labels.model
    shown = [Path(model.path(r)).name for r in range(model.rowCount())]
    assert len(shown) == len(result["label_issues"])
    assert [Path(i["path"]).name for i in result["label_issues"]] == shown  # most likely first
    assert shown[0] in PLANTED and len(set(shown[:4]) & set(PLANTED)) >= 3  # the planted mistakes lead
    assert labels.status_label.text().startswith("Likely label errors · Space takes the suggested class")

    labels.labeling.go_to_row(0)
    first, first_path = model.sample_id(0), model.path(0)
    suggested = result["label_issues"][0]["suggested"]
    assert labels.image_view.info_label.text().startswith(
        f"<span style='color:#b00020'>⚠ <b>looks like {suggested}"
    )
    assert not labels.order_combo.isEnabled()  # the audit's order, whatever the Sort combo says
    project = labels.session.require()
    qtbot.keyClick(labels.gallery, Qt.Key.Key_Space)  # Space: take the suggested class
    assert suggested == "class0" and project.label_of(first) == suggested
    assert project.label_history(first)[-1].source == "accepted"
    assert model.row_of(first) < 0 and model.rowCount() == len(shown) - 1  # fixed: it leaves the list
    assert "Took the suggested class" in labels.status_label.text()
    second = model.sample_id(0)
    labels.labeling.go_to_row(0)
    qtbot.keyClick(labels.gallery, Qt.Key.Key_1)  # a digit relabels too, and the item leaves the list
    assert project.label_of(second) == "class0" and model.row_of(second) < 0
    qtbot.keyClick(labels.gallery, Qt.Key.Key_Backspace)  # undo brings it back, in its place
    assert model.row_of(second) == 0
    assert first_path not in {model.path(r) for r in range(model.rowCount())}


def test_near_duplicates_are_grouped_and_said_in_words(page, qtbot) -> None:
    result = _run_audit(page, qtbot)
    twin = next(g for g in result["duplicates"] if any(p.endswith("twin.png") for p in g["paths"]))
    labels = page.label_page
    labels.set_filter(GalleryFilter("duplicates"))
    model = labels.model
    shown = [model.path(r) for r in range(model.rowCount())]
    assert shown == [p for g in result["duplicates"] for p in g["paths"]]  # members side by side
    row = shown.index(twin["paths"][0])
    labels.labeling.go_to_row(row)
    words = {"cross_class": "labeled differently", "train_val": "leakage", "same_class": "near-copies"}
    group = f"near-duplicate group {result['duplicates'].index(twin) + 1}: {words[twin['kind']]}"
    assert group in labels.image_view.info_label.text()
    qtbot.keyClick(labels.gallery, Qt.Key.Key_X)  # X excludes a duplicate from training
    assert model.is_excluded(model.sample_id(row))


def test_the_audit_survives_reopening_the_project(page, qtbot, copy: Path) -> None:
    result = _run_audit(page, qtbot)
    labels = page.label_page
    labels.set_filter(GalleryFilter("duplicates"))
    labels.session.close()
    assert labels.model.findings is None and labels.model.rowCount() == 0
    assert labels.order_combo.isEnabled()  # the chosen order is back with the project's other filters
    labels.session.open(copy)
    labels.set_filter(GalleryFilter("label_errors"))
    shown = [labels.model.path(r) for r in range(labels.model.rowCount())]
    assert shown == [i["path"] for i in result["label_issues"]] and shown


def test_stop_stores_nothing(page, qtbot) -> None:
    run_dir = Path(str(page.results_panel.details_view.details.run["path"]))
    audit = page.results_panel.label_audit
    button = page.results_panel.details_view.audit_button
    with qtbot.waitSignal(audit.controller.stopped, timeout=120_000):
        button.click()
        assert button.text() == "Stop the audit"
        button.click()
    assert not (run_dir / audit_store.AUDIT_FILE).exists()
    assert page.results_panel.details_view.audit_label.text() == "Stopped; nothing was stored."
    assert button.text() == "Find li&kely label errors…"


def test_an_error_reaches_show_error(page, qtbot, monkeypatch) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        image_check, "show_error", lambda _w, title, message, *_: shown.append((title, message))
    )

    def failing(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise UnusableInputError("no labeled image could be read")

    monkeypatch.setattr(audit_store, "audit_project", failing)
    with qtbot.waitSignal(page.results_panel.label_audit.controller.failed, timeout=30_000):
        page.results_panel.details_view.audit_button.click()
    assert shown == [("Cannot look for label errors", "no labeled image could be read")]
    assert page.results_panel.details_view.audit_label.text() == "The audit failed."
