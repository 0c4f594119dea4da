"""XRD workers: identification returns predictions and skipped files; training reports start and epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from labeltune.core import demos
from labeltune.core.trainer import EpochRecord
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.workers.tasks import TaskController
from labeltune.workers.training import TrainingStarted
from labeltune.workers.xrd import XrdPredictOutcome, XrdPredictWorker, XrdTrainWorker

TIMEOUT = 180_000
TINY = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> XrdProject:
    return XrdProject.open(demos.write_demo("xrd", tmp_path_factory.mktemp("xrd") / "demo"))


@pytest.fixture(scope="module")
def tiny_run(demo: XrdProject, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A barely trained model on the demo library (enough to run, not to be right)."""
    from labeltune.core.xrd.training import train_xrd

    run = tmp_path_factory.mktemp("runs") / "tiny"
    train_xrd(demo.library_dir, XrdTrainConfig(epochs=1, **TINY), run)  # type: ignore[arg-type]
    return run


def test_predict_worker_returns_predictions_and_skipped_files(qtbot, demo, tiny_run, tmp_path) -> None:
    bad = tmp_path / "broken.xy"
    bad.write_text("this is not a pattern\n")
    paths = [*demo.patterns()[:2], bad]
    controller = TaskController()
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(XrdPredictWorker(tiny_run, paths, demo.wavelength, fit=False, activation=True))
    outcome = blocker.args[0]
    assert isinstance(outcome, XrdPredictOutcome) and outcome.run_dir == tiny_run
    assert [Path(p.path) for p in outcome.predictions] == paths[:2]
    assert all(isinstance(p, XrdPrediction) for p in outcome.predictions)
    first = outcome.predictions[0]
    assert first.two_theta is not None and first.phases
    assert set(first.activation) >= {c.name for c in first.phases}
    assert [Path(p).name for p, _reason in outcome.skipped] == ["broken.xy"]
    assert not controller.is_running()


def test_predict_worker_failure_reaches_the_controller(qtbot, demo, tmp_path) -> None:
    controller = TaskController()
    with qtbot.waitSignal(controller.failed, timeout=TIMEOUT) as blocker:
        controller.start(XrdPredictWorker(tmp_path / "no-run", demo.patterns()[:1], demo.wavelength))
    assert "no-run" in blocker.args[0] and blocker.args[1]  # a message and the details
    assert not controller.is_running()


def test_train_worker_reports_start_and_epochs_then_fine_tunes(qtbot, demo, tmp_path) -> None:
    controller = TaskController()
    events: list[object] = []
    controller.reported.connect(events.append)
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(
            XrdTrainWorker(demo.library_dir, None, tmp_path / "pre", XrdTrainConfig(epochs=2, **TINY))
        )
    result = blocker.args[0]
    assert events[0] == TrainingStarted(2, 2)  # 64 patterns per epoch in batches of 32
    assert [e.epoch for e in events if isinstance(e, EpochRecord)] == [1, 2]
    assert result.run_dir == tmp_path / "pre" and (tmp_path / "pre" / "model.safetensors").is_file()

    events.clear()
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(
            XrdTrainWorker(
                demo.folder, tmp_path / "pre", tmp_path / "tuned", XrdTrainConfig(epochs=1, **TINY)
            )
        )
    tuned = blocker.args[0]
    assert [e.epoch for e in events if isinstance(e, EpochRecord)] == [1]
    assert tuned.metrics["measured_training_set"]["patterns"] == 8  # the project's labeled patterns
    assert (tmp_path / "tuned" / "model.safetensors").is_file()


def test_train_worker_stop_and_failure(qtbot, demo, tmp_path) -> None:
    controller = TaskController()

    def stop_after_first_epoch(event: object) -> None:
        if isinstance(event, EpochRecord):
            controller.stop()

    controller.reported.connect(stop_after_first_epoch)
    with qtbot.waitSignal(controller.finished, timeout=TIMEOUT) as blocker:
        controller.start(
            XrdTrainWorker(demo.library_dir, None, tmp_path / "run", XrdTrainConfig(epochs=20, **TINY))
        )
    result = blocker.args[0]
    assert result.stopped and 1 <= len(result.history) < 20
    with qtbot.waitSignal(controller.failed, timeout=TIMEOUT) as failed:  # measurements need --init
        controller.start(
            XrdTrainWorker(demo.folder, None, tmp_path / "scratch", XrdTrainConfig(epochs=1, **TINY))
        )
    assert "pretrained XRD model" in failed.args[0] and "--" not in failed.args[0]  # worded for the app
