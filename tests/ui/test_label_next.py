"""Issue 12, Label next and Retrain on the Label tab: the queue's order, labeling through it, retraining."""

from __future__ import annotations

import gc
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

import labeltune.core.label_next as label_next_core
from conftest import write_class_folder  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.suggest_items import suggest
from labeltune.core.training import TrainConfig, train
from labeltune.ui.gallery_bar import QUEUE_FILTER, QUEUE_TEXT
from labeltune.ui.image_page import ImagePage
from labeltune.ui.session import ProjectSession


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three colour classes, every third image unlabeled, one short *partial* run on the rest."""
    root = tmp_path_factory.mktemp("label_next")
    data = write_class_folder(root / "data", classes=3, per_class=12, size=40)
    folder = root / "project"
    config = TrainConfig(
        backbone="resnet18", strategy="partial", weights="none", input_size=32, epochs=2, batch_size=8
    )
    run_dir = folder / "runs" / "run-1"
    with Project.create(folder) as project:
        found = scan(data)
        project.add_source(found.root)
        project.add_samples(found.samples)
        for k in range(3):
            for i in range(0, 12, 3):
                project.set_label(data / f"class{k}" / f"img{i:03d}.png", None)
        done = train(scan(folder), config, run_dir, cache_root=root / "cache")
        project.record_run(run_dir.name, run_dir, done.backbone, done.strategy, done.to_json())
    return {"folder": folder, "run_dir": run_dir}


@pytest.fixture
def page(qtbot, trained, tmp_path: Path) -> Iterator[ImagePage]:
    # Earlier tests' widgets are collected here, in the GUI thread: a collection that a worker thread's
    # allocation set off would delete them there (a segfault in the ranking's thread, once in five runs).
    gc.collect()
    copy = shutil.copytree(trained["folder"], tmp_path / "project")  # each test changes labels
    session = ProjectSession(Settings())
    session.open(copy)
    widget = ImagePage(session)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()
    session.close()


def _show_queue(page: ImagePage, qtbot) -> list[str]:
    label_next = page.label_page.label_next
    with qtbot.waitSignal(label_next.queue_shown, timeout=60_000):
        label_next.next_button.click()
    model = page.label_page.model
    return [os.path.normpath(model.path(row)) for row in range(model.rowCount())]


def test_label_next_shows_the_core_ranking_computed_off_the_gui_thread(page, qtbot, monkeypatch) -> None:
    threads: list[threading.Thread] = []
    original = label_next_core.label_queue

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(label_next_core, "label_queue", spy)
    labels = page.label_page
    shown = _show_queue(page, qtbot)
    assert threads and threads[0] is not threading.main_thread()
    project = labels.session.require()
    run_dir = Path(project.runs()[-1]["path"])
    expected, _ = suggest(run_dir, project.folder, n=1000)
    assert len(expected) == 12  # every unlabeled image, in the order `labeltune suggest` gives
    assert shown == [os.path.normpath(str(s.path)) for s in expected]
    assert labels.model.filter == QUEUE_FILTER and labels.filter_combo.currentText() == QUEUE_TEXT
    labels.model.set_order("name")  # the queue keeps its own order whatever the sort
    assert [os.path.normpath(labels.model.path(r)) for r in range(labels.model.rowCount())] == shown
    first = expected[0]
    assert labels.model.path(labels.model.row_of(labels.session.current_id)) == str(first.path)
    item = labels.label_next.queue[os.path.normpath(str(first.path))]
    assert item.predicted == first.predicted and item.runner_up not in (None, first.predicted)
    status = labels.status_label.text()
    assert status.startswith("Label next: 12 queued")
    assert f"this one: {first.predicted} {100 * first.confidence:.0f} % vs {item.runner_up}" in status


def test_a_class_key_labels_and_advances_through_the_queue(page, qtbot) -> None:
    labels = page.label_page
    labels.settings.auto_advance = True
    shown = _show_queue(page, qtbot)
    project = labels.session.require()
    for step in range(3):
        qtbot.keyClick(labels.gallery, Qt.Key.Key_2)
        assert project.label_of(Path(shown[step])) == project.classes[1]
        current = labels.model.path(labels.model.row_of(labels.session.current_id))
        assert os.path.normpath(current) == shown[step + 1]  # the next in the queue, not by name
        nxt = labels.label_next.queue[shown[step + 1]]
        assert f"Label next: {12 - step - 1} queued" in labels.status_label.text()
        assert f"this one: {nxt.reason()}" in labels.status_label.text()
    assert [os.path.normpath(labels.model.path(r)) for r in range(labels.model.rowCount())] == shown


def test_retrain_trains_features_on_the_same_backbone_and_reports_the_change(page, trained, qtbot) -> None:
    labels = page.label_page
    label_next = labels.label_next
    assert not label_next.retrain_button.isEnabled()  # no new label yet
    shown = _show_queue(page, qtbot)
    for _ in range(2):
        qtbot.keyClick(labels.gallery, Qt.Key.Key_1)
    assert label_next.retrain_button.isEnabled()
    base = Path(labels.session.require().runs()[-1]["path"])
    with qtbot.waitSignal(page.train_panel.run_finished, timeout=120_000) as finished:
        label_next.retrain_button.click()
        assert "fine-tuned its backbone (partial)" in labels.status_label.text()  # why a features head
    new_run = Path(finished.args[0])
    assert new_run != base
    stored, old = (json.loads((run / "config.json").read_text())["train"] for run in (new_run, base))
    assert stored["strategy"] == "features" and old["strategy"] == "partial"
    assert (stored["backbone"], stored["input_size"], stored["seed"]) == (
        old["backbone"],
        old["input_size"],
        old["seed"],
    )
    before, after = (json.loads((run / "metrics.json").read_text())["accuracy"] for run in (base, new_run))
    change = f"Validation accuracy {before:.2f} → {after:.2f} (+2 labels)"
    assert label_next.change_label.text() == change
    assert label_next.run_in_use() == new_run and label_next.task.is_running()  # the queue, ranked again
    with qtbot.waitSignal(label_next.queue_shown, timeout=60_000):
        pass
    expected, _ = suggest(new_run, labels.session.require().folder, n=1000)
    assert [os.path.normpath(labels.model.path(r)) for r in range(labels.model.rowCount())] == [
        os.path.normpath(str(s.path)) for s in expected
    ]
    assert len(expected) == len(shown) - 2
