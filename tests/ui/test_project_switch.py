"""Each page shows only its own project's state: nothing of the project opened before (issue 9.6)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from conftest import write_class_folder  # tests/conftest.py
from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.trainer import EpochRecord
from labeltune.core.xrd.demo import write_xrd_demo
from labeltune.ui.main_window import MainWindow
from labeltune.ui.xrd_train import XrdTrainPanel

TIMEOUT = 120_000


def _project(tmp_path: Path, name: str, seed: int) -> Path:
    data = write_class_folder(tmp_path / f"{name}-images", classes=3, per_class=10, size=36, seed=seed)
    folder = tmp_path / name
    with Project.create(folder, name=name) as project:
        dataset = scan(data)
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
    return folder


def test_opening_another_project_shows_none_of_the_first_ones_training(qtbot, tmp_path: Path) -> None:
    first, second = _project(tmp_path, "first", 0), _project(tmp_path, "second", 1)
    window = MainWindow(Settings(backbone="resnet18", weights="none", epochs=2, batch_size=8))
    qtbot.addWidget(window)
    window.open_project(first)
    panel = window.train_panel
    panel.form.input_size_spin.setValue(32)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert "Finished" in panel.summary_label.text() and panel.curves.records()
    assert window.results_panel.runs_list.runs()

    window.open_project(second)
    assert window.session.require().name == "second"
    assert panel.summary_label.text() == "" and panel.curves.records() == []
    assert panel.stage_label.text() == "Ready." and panel.epoch_label.text().strip() == ""
    assert panel.progress_bar.value() == 0 and not panel.resume_button.isVisible()
    assert window.results_panel.runs_list.runs() == []
    assert window.results_panel.details_view.check_label.text() == ""

    window.open_project(first)  # its run is still listed where it belongs
    assert [run["id"] for run in window.results_panel.runs_list.runs()] == [
        run["id"] for run in window.session.require().runs()
    ]
    window.session.close()
    window.close()


def test_xrd_training_view_belongs_to_its_project(qtbot, tmp_path: Path) -> None:
    from labeltune.core.xrd.xrd_project import XrdProject

    one = XrdProject.open(write_xrd_demo(tmp_path / "one"))
    two = XrdProject.open(write_xrd_demo(tmp_path / "two"))
    panel = XrdTrainPanel()
    qtbot.addWidget(panel)
    panel.set_project(one)
    records = [EpochRecord(e, 1.0 / e, 0.5, 1.2 / e, 0.4, 0.4, 0.3, 1e-3, 1.0) for e in (1, 2)]
    # what a finished run of project one leaves on the panel
    panel._project_folder, panel._epochs, panel._run_records = one.folder, 2, list(records)
    for record in records:
        panel.curves.add_record(record)
    panel.summary_label.setText("Fine-tuned: 72.6 % of the simulated patterns")

    panel.set_project(two)
    assert panel.summary_label.text() == "" and panel.curves.records() == []
    assert panel.stage_label.text() == "Ready."

    panel.set_project(one)  # back to the project that trained: its curves come back
    assert [r.epoch for r in panel.curves.records()] == [1, 2]


def test_training_choices_belong_to_their_project(qtbot, tmp_path: Path) -> None:
    first, second = _project(tmp_path, "first", 0), _project(tmp_path, "second", 1)
    window = MainWindow(Settings(backbone="resnet18", weights="imagenet", epochs=10))
    qtbot.addWidget(window)
    form = window.train_panel.form
    window.open_project(first)
    form.set_weights("none")  # random weights, chosen for this project
    form.epochs_spin.setValue(3)
    form._select(form.strategy_combo, "partial")  # no training started: kept when the project closes

    window.open_project(second)  # never trained: the machine's choices, defaults for the data's ones
    assert form.weights() == "imagenet"
    assert form.epochs_spin.value() == 0 and form.strategy() == "partial"  # 0: the strategy's default
    form.epochs_spin.setValue(7)

    window.open_project(first)  # its own choices come back
    assert form.weights() == "none" and form.epochs_spin.value() == 3
    window.open_project(second)
    assert form.weights() == "imagenet" and form.epochs_spin.value() == 7
    window.session.close()
    window.close()


def test_random_weights_are_warned_about_before_training(qtbot, tmp_path: Path) -> None:
    window = MainWindow(Settings(backbone="resnet18", weights="imagenet"))
    qtbot.addWidget(window)
    window.open_project(_project(tmp_path, "first", 0))
    form = window.train_panel.form
    assert "random weights" not in form.strategy_label.text()
    form.set_weights("none")
    assert "With random weights the network has learned nothing yet" in form.strategy_label.text()
    window.label_page._say("Undid the label of img001.png")
    window.open_project(_project(tmp_path, "second", 1))
    assert "Undid" not in window.label_page.status_label.text()  # nothing of the project before
    window.session.close()
    window.close()
