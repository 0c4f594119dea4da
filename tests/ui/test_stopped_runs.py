"""A stopped run stays resumable after a restart (Train tab, runs list); Stop says what it waits for."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from labeltune.core.datasets import scan
from labeltune.core.progress import Progress
from labeltune.core.project import Project
from labeltune.core.run_state import stopped_run
from labeltune.core.settings import Settings
from labeltune.core.trainer import EpochRecord
from labeltune.core.training import TrainConfig, train
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_panel import TrainPanel

TIMEOUT = 120_000


@dataclass
class StoppedProject:
    folder: Path
    run_dir: Path


@pytest.fixture
def stopped_project(image_folder, tmp_path: Path) -> StoppedProject:
    """A project whose only run was stopped after epoch 1 of 4, as an earlier session of the app left it."""
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        dataset = scan(image_folder())
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
        stop = threading.Event()

        def press_stop_in_epoch_2(p: Progress) -> None:
            if p.stage == "train" and p.message.startswith("epoch 2/"):
                stop.set()

        config = TrainConfig(
            backbone="resnet18", strategy="full", weights="none", epochs=4, batch_size=8, input_size=32,
            patience=0, lr=3e-3,
        )  # fmt: skip
        run_dir = project.runs_dir / "run-stopped"
        result = train(scan(folder), config, run_dir, press_stop_in_epoch_2, stop)
        assert result.stopped and result.epochs_run == 1
        project.record_run(run_dir.name, run_dir, result.backbone, result.strategy, result.to_json())
    return StoppedProject(folder, run_dir)


@pytest.fixture
def session(stopped_project: StoppedProject) -> Iterator[ProjectSession]:
    """The app restarted: a fresh session opens the project; nothing of the earlier run is in memory."""
    opened = ProjectSession(Settings(backbone="resnet18", weights="none", epochs=30, batch_size=8))
    opened.open(stopped_project.folder)
    yield opened
    opened.close()


def make_panel(qtbot, session: ProjectSession) -> TrainPanel:
    panel = TrainPanel(session)
    qtbot.addWidget(panel)
    panel.form.input_size_spin.setValue(32)
    panel.resize(1200, 800)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def assert_finished(run_dir: Path, session: ProjectSession) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["summary"]["stopped"] is False and metrics["summary"]["epochs_run"] == 4
    assert metrics["calibration"]["temperature"] > 0  # the post-fit step ran: a finished run like any other
    assert (run_dir / "model.safetensors").is_file()
    with open(run_dir / "history.csv") as handle:
        assert len(handle.read().strip().splitlines()) == 1 + 4
    runs = session.require().runs()
    assert [r["id"] for r in runs] == [run_dir.name]  # the same run, updated
    assert runs[0]["metrics"]["stopped"] is False and runs[0]["metrics"]["epochs_run"] == 4
    assert stopped_run(run_dir) is None


def test_a_fresh_train_panel_offers_continue_and_finishes_the_run(qtbot, stopped_project, session):
    panel = make_panel(qtbot, session)
    try:
        assert panel.resume_button.isVisible() and panel.resume_button.isEnabled()
        assert "stopped at epoch 1 of 4" in panel.resume_button.toolTip()

        assert panel.form.epochs_spin.value() == 0 and panel.form.strategy() == "features"  # defaults
        with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as finished:
            qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
            # the form shows what the continued run trains with, not the remembered choices
            assert panel.form.epochs_spin.value() == 4 and panel.form.strategy() == "full"
        assert finished.args[0] == stopped_project.run_dir
        result = panel.last_result
        assert result is not None and not result.stopped and result.epochs_run == 4
        assert [r.epoch for r in panel.curves.records()] == [1, 2, 3, 4]  # the earlier epoch, then 3 more
        assert "Finished" in panel.summary_label.text()
        assert not panel.resume_button.isVisible()
        assert_finished(stopped_project.run_dir, session)
    finally:
        panel.shutdown()


def test_the_runs_list_says_where_it_stopped_and_continue_finishes_it(qtbot, stopped_project, session):
    from labeltune.ui.main_window import MainWindow

    window = MainWindow(Settings(backbone="resnet18", weights="none"))
    qtbot.addWidget(window)
    window.show()
    try:
        window.open_project(stopped_project.folder)
        runs_list = window.results_panel.runs_list
        item = runs_list.topLevelItem(0)
        assert item is not None and item.text(4) == "stopped at epoch 1 of 4"
        [run] = runs_list.runs()
        menu = runs_list.menu_for(run)
        [action] = [a for a in menu.actions() if a.objectName() == "continueRun"]
        assert action.isEnabled() and "epoch 1 of 4" in action.text()

        with qtbot.waitSignal(window.train_panel.run_finished, timeout=TIMEOUT) as finished:
            action.trigger()
            assert window.tabs.currentWidget() is window.train_panel and window.train_panel.is_running()
        assert finished.args[0] == stopped_project.run_dir
        assert_finished(stopped_project.run_dir, window.session)
        assert runs_list.topLevelItem(0).text(4) == "finished"  # type: ignore[union-attr]
        menu = runs_list.menu_for(runs_list.runs()[0])
        assert not [a for a in menu.actions() if a.objectName() == "continueRun"]
    finally:
        window.train_panel.shutdown()
        window.session.close()
        window.close()


def test_a_finished_run_offers_no_continue(qtbot, stopped_project, session):
    stopped_project.run_dir.joinpath("checkpoint.pt").unlink()  # what resume needs is gone
    panel = make_panel(qtbot, session)
    results = ResultsPanel(session)
    qtbot.addWidget(results)
    try:
        assert not panel.resume_button.isVisible() and panel.resumable is None
        assert results.runs_list.topLevelItem(0).text(4) == "stopped"  # type: ignore[union-attr]
        menu = results.runs_list.menu_for(results.runs_list.runs()[0])
        assert not [a for a in menu.actions() if a.objectName() == "continueRun"]
    finally:
        panel.shutdown()


def test_stopping_says_what_it_waits_for(qtbot, session):
    panel = make_panel(qtbot, session)
    panel.form.strategy_combo.setCurrentIndex(panel.form.strategy_combo.findData("full"))
    panel.form.epochs_spin.setValue(30)
    texts: list[str] = []
    pressed: list[str] = []

    def stop_after_first_epoch(event: object) -> None:
        if isinstance(event, EpochRecord) and event.epoch == 1 and not pressed:
            panel.stop()
            pressed.append(panel.stage_label.text())

    panel.controller.reported.connect(stop_after_first_epoch)

    def after_stop(_progress: Progress) -> None:  # runs after the panel's own slot
        if pressed:
            texts.append(panel.stage_label.text())

    panel.controller.progressed.connect(after_stop)
    try:
        with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT):
            panel.start()
        assert pressed == ["Stopping — finishing the current batch…"]
        assert "Stopping — saving the model…" in texts
        assert all(t.startswith("Stopping — ") for t in texts)
        assert panel.stage_label.text() == "Stopped."
        assert panel.last_result is not None and panel.last_result.stopped
        assert panel.resume_button.isVisible()
    finally:
        panel.shutdown()
