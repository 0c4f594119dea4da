"""One training monitor for both panels: TrainingStarted, EpochRecord and Progress handled once (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from labeltune.core.datasets import scan
from labeltune.core.progress import Progress, StoppedError
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.trainer import EpochRecord
from labeltune.core.xrd.demo import write_xrd_demo
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_monitor import TrainMonitor
from labeltune.ui.train_panel import TrainPanel
from labeltune.ui.xrd_train import XRD_WORDS, XrdTrainPanel
from labeltune.workers.training import TrainingStarted, TrainWorker
from labeltune.workers.xrd import XrdTrainWorker

TIMEOUT = 60_000


def record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch, 1.0 / epoch, 0.5, 1.2 / epoch, 0.4, 0.4, 0.3, 1e-3, 1.0)


@pytest.fixture
def monitor(qtbot) -> TrainMonitor:
    widget = TrainMonitor()
    qtbot.addWidget(widget)
    widget.stop_button.setEnabled(True)  # the owning panel enables Stop while its training runs
    return widget


def test_a_run_in_image_words_from_start_to_stop(monitor: TrainMonitor) -> None:
    monitor.begin(3, "Starting…")
    assert monitor.stage_label.text() == "Starting…" and monitor.progress_bar.maximum() == 0  # busy
    monitor.show_progress(Progress("features", 4, 10))
    assert monitor.progress_bar.maximum() == 10 and monitor.progress_bar.value() == 4
    assert monitor.stage_label.text().startswith("Running the network over the images")
    monitor.report(TrainingStarted(3, 5))
    assert monitor.stage_label.text() == "Training" and monitor.eta_label.text() == ""
    monitor.report(record(1))
    # the bar and the stage follow the finished epoch, whatever the throttled progress said last
    assert (monitor.progress_bar.maximum(), monitor.progress_bar.value()) == (3, 1)
    assert monitor.stage_label.text() == "Training — epoch 1/3 done"
    assert monitor.epoch_label.text().startswith("Epoch 1/3: training loss 1.000")
    assert [r.epoch for r in monitor.curves.records()] == [1]
    monitor.show_progress(Progress("train", 2, 5, "batch 2/5"))
    assert monitor.stage_label.text() == "Training — batch 2/5"

    monitor.show_stopping()
    assert not monitor.stop_button.isEnabled() and monitor.is_stopping()
    assert monitor.stage_label.text() == "Stopping — finishing the current batch…"
    monitor.show_progress(Progress("save", 0, 1))
    assert monitor.stage_label.text() == "Stopping — saving the model…"
    monitor.report(record(2))  # a stopping run's epoch is drawn, but the stage keeps saying why it waits
    assert monitor.stage_label.text() == "Stopping — saving the model…"
    assert [r.epoch for r in monitor.curves.records()] == [1, 2]
    monitor.end("Stopped.", bar=None)
    assert monitor.stage_label.text() == "Stopped." and monitor.progress_bar.maximum() == 1  # left as it was


def test_xrd_words_keep_the_bar_on_the_batches(qtbot) -> None:
    monitor = TrainMonitor(XRD_WORDS, beside=True)
    qtbot.addWidget(monitor)
    monitor.stop_button.setEnabled(True)
    monitor.begin(2, "Starting…")
    monitor.show_progress(Progress("Training", 3, 8, "loss 0.41"))
    assert monitor.stage_label.text() == "Training — loss 0.41"
    monitor.report(TrainingStarted(2, 8))
    monitor.report(record(1))
    assert (monitor.progress_bar.maximum(), monitor.progress_bar.value()) == (8, 3)
    assert monitor.stage_label.text() == "Training — loss 0.41"
    assert "all phases right in" in monitor.epoch_label.text() and "Epoch 1/2" in monitor.epoch_label.text()
    monitor.show_stopping()
    monitor.show_progress(Progress("Checking", 1, 2))
    assert monitor.stage_label.text() == "Stopping after the current step; the best model so far is kept…"


def test_epochs_of_a_run_not_shown_are_kept_and_replayed(monitor: TrainMonitor) -> None:
    monitor.begin(4, "Starting…")
    monitor.report(TrainingStarted(2, 5), shown=False)
    monitor.report(record(1), shown=False)
    monitor.report(record(2), shown=False)
    assert monitor.curves.records() == [] and monitor.epoch_label.text() == " "
    assert monitor.epochs == 2 and [r.epoch for r in monitor.records] == [1, 2]
    monitor.replay()
    assert [r.epoch for r in monitor.curves.records()] == [1, 2]
    assert monitor.epoch_label.text().startswith("Epoch 2/2:")

    monitor.show_blank(7)
    assert monitor.curves.records() == [] and monitor.stage_label.text() == "Ready."
    assert monitor.progress_bar.value() == 0 and monitor.summary_label.text() == ""
    monitor.show_planned(5)  # empty plots follow the form
    monitor.show_failure("out of memory")
    assert monitor.stage_label.text() == "Training failed."
    assert monitor.summary_label.text() == "<b>Training failed</b>: out of memory"


def test_both_training_panels_show_their_run_in_one_monitor(qtbot) -> None:
    session = ProjectSession(Settings())
    images = TrainPanel(session)
    xrd = XrdTrainPanel()
    for panel in (images, xrd):
        qtbot.addWidget(panel)
        monitor = panel.monitor
        assert isinstance(monitor, TrainMonitor)
        names = ("stop_button", "progress_bar", "stage_label", "eta_label", "epoch_label", "curves")
        assert all(getattr(panel, name) is getattr(monitor, name) for name in names)
        assert panel.summary_label is monitor.summary_label
    assert images.summary_label.objectName() == "trainSummary"
    assert xrd.summary_label.objectName() == "xrdTrainSummary"
    assert xrd.monitor.words is XRD_WORDS and images.monitor.words.follows_epochs


def _image_panel(tmp_path: Path, image_folder) -> tuple[TrainPanel, ProjectSession]:
    choices = {"backbone": "resnet18", "weights": "none", "epochs": 3, "batch_size": 8}
    with Project.create(tmp_path / "project") as project:
        dataset = scan(image_folder(classes=2))
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
        project.save_settings(train={"choices": choices})  # random weights are chosen per project
        folder = project.folder
    session = ProjectSession(Settings(**choices))  # type: ignore[arg-type]
    session.open(folder)
    return TrainPanel(session), session


@pytest.mark.parametrize("kind", ["images", "xrd"])
def test_a_training_stopped_before_its_first_epoch_keeps_nothing(
    qtbot, tmp_path: Path, image_folder, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    def stopped_at_once(self: object) -> None:
        raise StoppedError("stopped while reading the data")

    panel: TrainPanel | XrdTrainPanel
    session = None
    if kind == "images":
        monkeypatch.setattr(TrainWorker, "work", stopped_at_once)
        panel, session = _image_panel(tmp_path, image_folder)
        expected = "Stopped before training began; nothing was saved."
    else:
        monkeypatch.setattr(XrdTrainWorker, "work", stopped_at_once)
        panel = XrdTrainPanel()
        panel.set_project(XrdProject.open(write_xrd_demo(tmp_path / "demo")))
        expected = "Stopped before the first epoch ended; the project keeps its model."
    qtbot.addWidget(panel)
    finished: list[object] = []
    panel.run_finished.connect(finished.append)
    with qtbot.waitSignal(panel.controller.stopped, timeout=TIMEOUT):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.stage_label.text() == expected
    assert panel.progress_bar.maximum() == 100 and panel.progress_bar.value() == 0
    assert finished == [] and panel.last_result is None
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    if session is not None:
        assert session.require().runs() == []
        panel.shutdown()
        session.close()
