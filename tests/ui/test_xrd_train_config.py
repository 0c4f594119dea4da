"""The XRD Fine-tune panel hands its worker a typed XrdTrainConfig, built in the GUI thread."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from labeltune.core import demos
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.xrd_train import XrdTrainPanel
from labeltune.workers.tasks import Worker


def test_start_passes_a_typed_config_with_the_chosen_epochs(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = demos.write_demo("xrd", tmp_path / "demo")
    project = XrdProject.open(folder)
    project.set_model(None)
    panel = XrdTrainPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    started: list[Worker] = []
    monkeypatch.setattr(panel.controller, "start", started.append)  # no thread: only what it is given
    panel.config_overrides = {"patterns_per_epoch": 64, "batch_size": 32}
    panel.epochs_spin.setValue(3)
    panel.start()
    (worker,) = started
    config = worker.config  # type: ignore[attr-defined]
    assert isinstance(config, XrdTrainConfig)
    assert (config.epochs, config.patterns_per_epoch, config.batch_size) == (3, 64, 32)
    assert worker.data_dir == project.library_dir and worker.init_run is None  # type: ignore[attr-defined]
