"""The Train tab with several GPUs (faked): 'Use N GPUs' launches the CLI's training in a child process,
whose progress lines the monitor shows, and whose run is listed as an in-process one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import labeltune
from labeltune.core import device as device_module
from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.core.trainer import EpochRecord
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_panel import TrainPanel
from labeltune.workers import torchrun as torchrun_worker
from labeltune.workers.torchrun import TorchrunWorker
from labeltune.workers.training import TrainingStarted, TrainWorker

SOURCE = Path(labeltune.__file__).resolve().parents[1]
TWO_GPUS = {"cuda": "Fake GPU (8 GiB), Fake GPU (8 GiB)", "gpus": "2", "cpu": "CPU (2 threads)"}


@pytest.fixture
def panel(qtbot, image_folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(device_module, "available_devices", lambda: dict(TWO_GPUS))  # what torch would say
    values: dict[str, object] = dict(backbone="resnet18", weights="none", epochs=2, batch_size=8)
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        dataset = scan(image_folder(classes=3))
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
        project.save_settings(train={"choices": values})
    session = ProjectSession(Settings(**values))  # type: ignore[arg-type]
    session.open(folder)
    widget = TrainPanel(session)
    qtbot.addWidget(widget)
    widget.form.input_size_spin.setValue(32)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()
    session.close()


def test_one_gpu_or_a_cpu_offers_no_multi_gpu_run(qtbot, monkeypatch: pytest.MonkeyPatch, panel) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: panel.form.devices is not None, timeout=60_000)
    panel.form._on_device_controller_finished({"cuda": "Fake GPU", "gpus": "1", "cpu": "CPU"})
    assert panel.form.gpus_check.isHidden() and panel.form.gpus() == 1


def test_use_two_gpus_runs_the_cli_in_a_child_and_the_monitor_reads_it(
    qtbot, monkeypatch: pytest.MonkeyPatch, panel
) -> None:  # type: ignore[no-untyped-def]
    form = panel.form
    qtbot.waitUntil(lambda: not form.gpus_check.isHidden(), timeout=60_000)
    assert form.gpus_check.text() == "Use 2 GPUs" and form.gpus() == 1  # offered, not ticked
    form.gpus_check.setChecked(True)
    assert form.gpus() == 2
    form.device_combo.setCurrentIndex(form.device_combo.findData("cpu"))
    assert form.gpus() == 1  # the CPU chosen: one process
    form.device_combo.setCurrentIndex(form.device_combo.findData("auto"))

    commands: list[list[str]] = []
    real = torchrun_worker.torchrun_command

    def one_process(*args, **kwargs):  # type: ignore[no-untyped-def]
        """The real command without the launcher: no GPU here (torchrun itself: test_torchrun_training)."""
        command = real(*args, **kwargs)
        commands.append(command)
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        assert command[: len(launcher)] == launcher and command[len(launcher) : len(launcher) + 2] == [
            "-m",
            "labeltune",
        ]
        return [sys.executable, *command[len(launcher) :]]

    monkeypatch.setattr(torchrun_worker, "torchrun_command", one_process)
    monkeypatch.setenv("PYTHONPATH", str(SOURCE))
    events: list[object] = []
    panel.controller.reported.connect(events.append)
    with qtbot.waitSignal(panel.controller.finished, timeout=240_000) as finished:
        panel.start()
        assert isinstance(panel.controller._worker, TorchrunWorker) and not isinstance(
            panel.controller._worker, TrainWorker
        )
    result = finished.args[0]
    assert (
        len(commands) == 1
        and "--device" in commands[0]
        and commands[0][commands[0].index("--device") + 1] == "auto"
    )
    run_dir = Path(commands[0][commands[0].index("--out") + 1])
    assert result.run_dir == run_dir and (run_dir / "model.safetensors").is_file()
    assert [type(e) for e in events[:1]] == [TrainingStarted]
    epochs = [e for e in events if isinstance(e, EpochRecord)]
    assert [e.epoch for e in epochs] == [1, 2] and result.history == epochs  # the child's epochs, live
    assert panel.progress_bar.value() == panel.progress_bar.maximum()
    assert panel.last_result is result and result.epochs_run == 2 and result.val_size > 0
    with Project.open(panel.session.project.folder) as project:
        assert run_dir.name in {str(r["id"]) for r in project.runs()}  # listed like an in-process run
