"""Training through the worker: epochs arrive as events, Stop keeps a usable model."""

from __future__ import annotations

import pytest

from labeltune.core.trainer import EpochRecord
from labeltune.core.training import TrainConfig
from labeltune.workers.tasks import TaskController
from labeltune.workers.training import TrainingStarted, TrainWorker


def tiny_config(**kwargs: object) -> TrainConfig:
    values: dict[str, object] = dict(
        backbone="resnet18", weights="none", input_size=32, epochs=4, batch_size=8, patience=0, lr=3e-3
    )
    values.update(kwargs)
    return TrainConfig(**values)  # type: ignore[arg-type]


def test_training_worker_reports_epochs_and_result(qtbot, image_folder, tmp_path):
    data = image_folder()
    controller = TaskController()
    events: list[object] = []
    controller.reported.connect(events.append)
    with qtbot.waitSignal(controller.finished, timeout=120000) as blocker:
        controller.start(TrainWorker(data, tiny_config(), tmp_path / "run"))
    result = blocker.args[0]
    assert isinstance(events[0], TrainingStarted) and events[0].epochs == 4
    records = [e for e in events if isinstance(e, EpochRecord)]
    assert [r.epoch for r in records] == [1, 2, 3, 4]
    assert result.metrics["accuracy"] > 0.6
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_stop_mid_run_keeps_a_usable_model(qtbot, image_folder, tmp_path):
    data = image_folder()
    controller = TaskController()

    def stop_after_first_epoch(event: object) -> None:
        if isinstance(event, EpochRecord) and event.epoch == 1:
            controller.stop()

    controller.reported.connect(stop_after_first_epoch)
    with qtbot.waitSignal(controller.finished, timeout=120000) as blocker:
        controller.start(TrainWorker(data, tiny_config(strategy="full", epochs=30), tmp_path / "run"))
    result = blocker.args[0]
    assert result.stopped
    assert 1 <= result.epochs_run < 30
    from labeltune.core.inference import predict_files

    predictions, skipped = predict_files(tmp_path / "run", [next(data.rglob("*.png"))], device="cpu")
    assert len(predictions) == 1 and not skipped


def test_failing_training_reaches_the_controller(qtbot, image_folder, tmp_path):
    data = image_folder(classes=1)
    controller = TaskController()
    with qtbot.waitSignal(controller.failed, timeout=60000) as blocker:
        controller.start(TrainWorker(data, tiny_config(), tmp_path / "run"))
    assert "at least 2 classes" in blocker.args[0]
    assert not controller.is_running()


@pytest.mark.parametrize("epochs", [2])
def test_resume_through_the_worker(qtbot, image_folder, tmp_path, epochs):
    data = image_folder()
    controller = TaskController()
    with qtbot.waitSignal(controller.finished, timeout=120000):
        controller.start(TrainWorker(data, tiny_config(epochs=epochs), tmp_path / "run"))
    events: list[object] = []
    controller.reported.connect(events.append)
    with qtbot.waitSignal(controller.finished, timeout=120000) as blocker:
        controller.start(TrainWorker(data, None, tmp_path / "run", resume=True))
    assert blocker.args[0].epochs_run == epochs
    assert [e.epoch for e in events if isinstance(e, EpochRecord)] == [1, 2]  # history replayed
