"""The Train tab: a real (tiny) training from the Start button to the Results tab, Stop, failures, weights."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from labeltune.core.datasets import scan
from labeltune.core.progress import Progress
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.trainer import EpochRecord
from labeltune.ui.metrics_table import percent
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_panel import TrainPanel
from labeltune.ui.train_status import EtaClock, duration_text
from labeltune.ui.weights_dialog import IMAGENET, RANDOM, WeightsDialog

TIMEOUT = 120_000


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights stored by one test must not be seen by another."""
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.delenv("LABELTUNE_WEIGHTS_BASE_URL", raising=False)


def make_project(data: Path, folder: Path) -> Path:
    with Project.create(folder) as project:
        dataset = scan(data)
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
    return folder


@pytest.fixture
def make_session(qtbot, image_folder, tmp_path) -> Iterator[Callable[..., ProjectSession]]:
    sessions: list[ProjectSession] = []

    def make(classes: int = 3, **settings: object) -> ProjectSession:
        values: dict[str, object] = dict(backbone="resnet18", weights="none", epochs=3, batch_size=8)
        values.update(settings)
        session = ProjectSession(Settings(**values))  # type: ignore[arg-type]
        folder = make_project(image_folder(classes=classes), tmp_path / "project")
        with Project.open(
            folder
        ) as project:  # the project's own last choices (random weights are per project)
            project.save_settings(train={"choices": values})
        session.open(folder)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def make_panel(qtbot) -> Iterator[Callable[[ProjectSession], TrainPanel]]:
    panels: list[TrainPanel] = []

    def make(session: ProjectSession) -> TrainPanel:
        panel = TrainPanel(session)
        qtbot.addWidget(panel)
        panel.form.input_size_spin.setValue(32)
        panel.resize(1200, 800)
        panel.show()
        qtbot.waitExposed(panel)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.shutdown()


def error_boxes() -> list[QMessageBox]:
    return [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, QMessageBox) and w.objectName() == "errorBox" and w.isVisible()
    ]


def close_error_boxes() -> None:
    for box in error_boxes():
        box.done(0)


def test_training_from_start_button_to_results(qtbot, make_session, make_panel):
    session = make_session()
    panel = make_panel(session)
    results = ResultsPanel(session)
    qtbot.addWidget(results)
    progress: list[Progress] = []
    panel.controller.progressed.connect(progress.append)
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()

    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
        assert not panel.form.isEnabled()
    run_dir = blocker.args[0]

    assert isinstance(run_dir, Path) and (run_dir / "model.safetensors").is_file()
    assert run_dir.parent == session.require().runs_dir
    assert [r.epoch for r in panel.curves.records()] == [1, 2, 3]
    for curve in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        x, y = panel.curves.curve_points(curve)
        assert x == [1.0, 2.0, 3.0] and len(y) == 3
    assert any(p.stage == "train" and p.done == p.total > 0 for p in progress)
    assert panel.progress_bar.value() == panel.progress_bar.maximum() > 0
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled() and panel.form.isEnabled()
    assert "Epoch 3/3" in panel.epoch_label.text()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.6  # it really learned (3 separable classes)
    assert "Finished" in panel.summary_label.text()
    assert percent(metrics["accuracy"]) in panel.summary_label.text()
    runs = session.require().runs()
    assert [r["id"] for r in runs] == [run_dir.name]
    assert runs[0]["metrics"]["val_accuracy"] == pytest.approx(metrics["accuracy"])

    # The Results tab (listening to session.runs_changed) shows the new run.
    assert results.stack.currentWidget() is results.details_view
    assert results.details_view.figure_text("accuracy") == percent(metrics["accuracy"])
    matrix = results.details_view.confusion.matrix()
    assert sum(map(sum, matrix)) == metrics["summary"]["val_size"] > 0
    assert matrix == metrics["confusion_matrix"]

    # The choices are remembered: settings file and project (advanced options).
    saved = Settings.load()
    assert (saved.backbone, saved.weights, saved.epochs, saved.batch_size) == ("resnet18", "none", 3, 8)
    assert session.require().settings["train"]["input_size"] == 32


def test_stop_keeps_a_usable_model_and_returns_to_idle(qtbot, make_session, make_panel, image_folder):
    from labeltune.core.model import load_model

    session = make_session(strategy="full", epochs=30)
    panel = make_panel(session)

    def stop_on_first_epoch(event: object) -> None:
        if isinstance(event, EpochRecord) and event.epoch == 1:
            qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)

    panel.controller.reported.connect(stop_on_first_epoch)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    panel.controller.reported.disconnect(stop_on_first_epoch)
    run_dir = blocker.args[0]

    result = panel.last_result
    assert result is not None and result.stopped and 1 <= result.epochs_run < 30
    model, config = load_model(run_dir)
    assert config.classes == ["class0", "class1", "class2"]
    import torch

    with torch.inference_mode():
        logits = model(torch.rand(2, 3, config.input_size, config.input_size))
    assert tuple(logits.shape) == (2, 3)
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.resume_button.isVisible() and panel.resume_button.isEnabled()
    assert "Stopped" in panel.summary_label.text()
    assert session.require().runs()[0]["metrics"]["stopped"] is True


def test_resume_continues_the_stopped_run(qtbot, make_session, make_panel):
    session = make_session(strategy="full", epochs=4)
    panel = make_panel(session)
    panel.form.patience_spin.setValue(0)

    def stop_on_first_epoch(event: object) -> None:
        if isinstance(event, EpochRecord) and event.epoch == 1:
            panel.stop()

    panel.controller.reported.connect(stop_on_first_epoch)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as first:
        panel.start()
    panel.controller.reported.disconnect(stop_on_first_epoch)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as second:
        qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    assert second.args[0] == first.args[0]
    assert panel.last_result is not None and not panel.last_result.stopped
    assert panel.last_result.epochs_run == 4
    assert [r.epoch for r in panel.curves.records()] == [1, 2, 3, 4]
    assert len(session.require().runs()) == 1  # the same run, updated
    assert not panel.resume_button.isVisible()


@pytest.mark.parametrize("problem", ["single class", "missing weights file"])
def test_failing_training_shows_an_error_and_the_panel_stays_usable(
    qtbot, make_session, make_panel, tmp_path, problem
):
    session = make_session(classes=1) if problem == "single class" else make_session()
    panel = make_panel(session)
    if problem == "missing weights file":
        panel.form.set_weights(str(tmp_path / "nowhere.pth"))
    with qtbot.waitSignal(panel.controller.failed, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    expected = "at least 2 classes" if problem == "single class" else "nowhere.pth"
    assert expected in blocker.args[0]
    qtbot.waitUntil(lambda: bool(error_boxes()))
    box = error_boxes()[0]
    assert expected in box.text() and box.detailedText()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled() and panel.form.isEnabled()
    assert "failed" in panel.summary_label.text()
    assert session.require().runs() == []
    assert not session.require().runs_dir.exists() or not any(session.require().runs_dir.iterdir())
    close_error_boxes()


def test_invalid_settings_are_reported_before_starting(qtbot, make_session, make_panel):
    panel = make_panel(make_session())
    box = panel.form.group_box
    box.kind_combo.setCurrentIndex(box.kind_combo.findData("pattern"))
    box.preset_combo.setCurrentIndex(box.preset_combo.findData("custom"))
    box.pattern_edit.setText("(unclosed")
    panel.start()
    qtbot.waitUntil(lambda: bool(error_boxes()))
    assert "invalid group regex '(unclosed'" in error_boxes()[0].text()
    assert not panel.is_running() and panel.start_button.isEnabled()
    close_error_boxes()


def test_device_detection_runs_in_the_background(qtbot, make_session, make_panel):
    panel = make_panel(make_session())
    qtbot.waitUntil(lambda: panel.form.devices is not None, timeout=60_000)
    assert panel.form.devices is not None and "cpu" in panel.form.devices
    text = panel.form.device_label.text()
    assert (
        ("GPU:" in text)
        if ("cuda" in panel.form.devices or "mps" in panel.form.devices)
        else ("No GPU found" in text)
    )


def test_eta_from_the_rate_so_far():
    clock = EtaClock()
    assert clock.update(Progress("train", 1, 101), now=0.0) is None  # first report starts the clock
    assert clock.update(Progress("train", 11, 101), now=0.5) is None  # too early to tell
    assert clock.update(Progress("train", 21, 101), now=2.0) == pytest.approx(8.0)
    assert clock.update(Progress("features", 5, 10), now=3.0) is None  # a new stage restarts it
    assert duration_text(8.2) == "about 8 s" and duration_text(200) == "about 3 min 20 s"
    assert duration_text(3900) == "about 1 h 05 min"


# -- weights -----------------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_weights_offline_explains_and_offers_random_weights(
    qtbot, make_session, make_panel, monkeypatch
):
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    session = make_session(weights="imagenet")
    panel = make_panel(session)
    picker = panel.form.backbone_picker
    # ResNet-18 was remembered, but its weights are not here: the network that works offline is chosen
    assert picker.backbone() == "efficientnet_lite0"
    assert "EfficientNet-Lite0" in picker.offline_label.text() and "ResNet" not in picker.offline_label.text()
    assert not picker.get_weights_button.isVisible()
    picker.set_backbone("resnet18")  # the user insists
    assert picker.get_weights_button.isVisible() and picker.use_offline_button.isVisible()
    assert "not on this computer" in picker.info.text()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    dialog = panel.weights_dialog
    assert dialog is not None and dialog.isVisible() and not panel.is_running()
    assert "Import file" in dialog.manual_label.text()  # GUI wording, no command line (issue 9.10)
    assert "labeltune weights import" not in dialog.manual_label.text()
    assert dialog.bundled_button.isVisible()

    with qtbot.waitSignal(dialog.controller.failed, timeout=30_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert (
        "Import file" in dialog.status_label.text() and "labeltune weights" not in dialog.status_label.text()
    )
    qtbot.waitUntil(lambda: bool(error_boxes()))
    assert "Import file" in error_boxes()[0].text() and "labeltune weights" not in error_boxes()[0].text()
    close_error_boxes()
    assert dialog.download_button.isEnabled()

    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.random_button, Qt.MouseButton.LeftButton)
    config = json.loads((blocker.args[0] / "config.json").read_text())
    assert config["train"]["weights"] == "none"
    assert panel.form.weights() == "none" and Settings.load().weights == "none"


def test_missing_weights_dialog_offers_the_bundled_network(qtbot, make_session, make_panel, monkeypatch):
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    session = make_session(weights="imagenet")
    panel = make_panel(session)
    panel.form.backbone_picker.set_backbone("densenet201")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    dialog = panel.weights_dialog
    assert dialog is not None and dialog.bundled_button.isVisible()
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.bundled_button, Qt.MouseButton.LeftButton)
    config = json.loads((blocker.args[0] / "config.json").read_text())
    assert config["train"]["backbone"] == "efficientnet_lite0" and config["train"]["weights"] == "imagenet"
    assert config["weights_id"] == "imagenet-57934424"
    assert panel.form.backbone_picker.backbone() == "efficientnet_lite0"
    assert Settings.load().backbone == "efficientnet_lite0"


def test_picker_switches_to_the_offline_network_and_asks_for_weights(qtbot, make_session, make_panel):
    panel = make_panel(make_session(backbone="", weights="imagenet"))
    picker = panel.form.backbone_picker
    assert picker.backbone() == "efficientnet_lite0"
    assert "ready offline" in picker.combo.currentText()
    assert "come with LabelTune" in picker.info.text()
    picker.set_backbone("inception_v3")
    assert "MB download" in picker.combo.currentText()
    with qtbot.waitSignal(picker.weights_requested) as blocker:
        qtbot.mouseClick(picker.get_weights_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["inception_v3"]
    dialog = panel.form.weights_dialog
    assert dialog is not None and dialog.isVisible()
    with qtbot.waitSignal(dialog.finished):
        qtbot.mouseClick(dialog.bundled_button, Qt.MouseButton.LeftButton)
    assert picker.backbone() == "efficientnet_lite0" and not picker.get_weights_button.isVisible()


def test_epochs_default_follows_the_strategy(make_session, make_panel):
    panel = make_panel(make_session(epochs=0))
    form = panel.form
    assert form.epochs_spin.value() == 0 and form.epochs_spin.text() == "default (30)"
    assert form.config().epochs == 30
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("full"))
    assert form.epochs_spin.text() == "default (10)" and form.config().epochs == 10


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision-format MobileNetV3 weights file (random values), as downloaded from PyTorch."""
    import torch

    from labeltune.core.backbones import build_architecture, get_spec

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / get_spec("mobilenet_v3_large").weights_filename
    torch.save(build_architecture("mobilenet_v3_large").state_dict(), path)
    return path


def test_import_a_weights_file(qtbot, mobilenet_file, tmp_path):
    from labeltune.core.weights import weights_present

    dialog = WeightsDialog("mobilenet_v3_large")
    qtbot.addWidget(dialog)
    dialog.open()
    bad = tmp_path / "bad.pth"
    import torch

    torch.save(torch.zeros(3), bad)
    with qtbot.waitSignal(dialog.controller.failed, timeout=30_000):
        dialog.import_file(bad)
    qtbot.waitUntil(lambda: bool(error_boxes()))
    close_error_boxes()
    assert not weights_present("mobilenet_v3_large") and dialog.isVisible()

    with qtbot.waitSignal(dialog.finished, timeout=60_000):
        dialog.import_file(mobilenet_file)
    assert dialog.outcome == IMAGENET and dialog.result() == dialog.DialogCode.Accepted
    assert weights_present("mobilenet_v3_large")


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file, slowly when the server says so (so a download can be stopped half-way)."""

    def do_GET(self) -> None:
        body: bytes = self.server.body  # type: ignore[attr-defined]
        delay: float = self.server.delay  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for start in range(0, len(body), 256 * 1024):
                self.wfile.write(body[start : start + 256 * 1024])
                self.wfile.flush()
                time.sleep(delay)
        except OSError:  # the client stopped the download
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def weights_server(mobilenet_file, monkeypatch) -> Iterator[http.server.ThreadingHTTPServer]:
    import hashlib

    from labeltune.core.weights import download as weights_download

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    server.body = mobilenet_file.read_bytes()  # type: ignore[attr-defined]
    server.delay = 0.0  # type: ignore[attr-defined]
    digest = hashlib.sha256(server.body).hexdigest()  # type: ignore[attr-defined]
    monkeypatch.setattr(weights_download, "_expected_hash", lambda name: digest)
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_download_with_progress_and_stop(qtbot, weights_server):
    from labeltune.core.weights import weights_dir, weights_present

    dialog = WeightsDialog("mobilenet_v3_large")
    qtbot.addWidget(dialog)
    dialog.open()

    weights_server.delay = 0.2  # type: ignore[attr-defined]
    with qtbot.waitSignal(dialog.controller.stopped, timeout=30_000):  # (was finished(None), issue 11)
        with qtbot.waitSignal(dialog.controller.progressed, timeout=30_000):
            qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
        assert dialog.cancel_button.text() == "Stop" and not dialog.download_button.isEnabled()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert "stopped" in dialog.status_label.text()
    assert not weights_present("mobilenet_v3_large")
    assert not list(weights_dir().glob("*.part"))

    weights_server.delay = 0.0  # type: ignore[attr-defined]
    with qtbot.waitSignal(dialog.finished, timeout=60_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert dialog.outcome == IMAGENET and weights_present("mobilenet_v3_large")
    assert dialog.progress_bar.maximum() == 1000


def test_dialog_random_choice(qtbot):
    dialog = WeightsDialog("resnet18")
    qtbot.addWidget(dialog)
    dialog.open()
    with qtbot.waitSignal(dialog.accepted):
        qtbot.mouseClick(dialog.random_button, Qt.MouseButton.LeftButton)
    assert dialog.outcome == RANDOM


def test_the_panels_do_not_import_torch():
    code = (
        "import sys, labeltune.ui.train_panel, labeltune.ui.results_panel, labeltune.ui.weights_dialog; "
        "sys.exit('torch' in sys.modules)"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0
