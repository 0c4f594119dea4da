"""XRD through the shared trainer: its best-epoch rule, Ctrl+C, and Stop in the held-out check."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from labeltune.core import demos  # noqa: E402
from labeltune.core.progress import StoppedError  # noqa: E402
from labeltune.core.train_step import EpochRecord  # noqa: E402
from labeltune.core.xrd.train_config import XrdTrainConfig  # noqa: E402
from labeltune.core.xrd.train_task import XrdTask  # noqa: E402
from labeltune.core.xrd.training import train_xrd  # noqa: E402

TINY = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}


def record(epoch: int, val_loss: float) -> EpochRecord:
    return EpochRecord(epoch, 1.0, 0.5, val_loss, 0.5, 0.5, 0.5, 1e-3, 1.0)


def test_the_xrd_rule_keeps_the_lowest_validation_loss_or_the_latest_epoch_when_fine_tuning() -> None:
    config = XrdTrainConfig()
    pretrain, fine_tune = XrdTask(config, None), XrdTask(config, None, keep_last=True)
    assert pretrain.score(record(1, 0.3)) > pretrain.score(record(2, 0.4))  # lower loss wins
    assert fine_tune.score(record(2, 0.4)) > fine_tune.score(record(1, 0.3))  # the latest wins


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demos.write_demo("xrd", tmp_path_factory.mktemp("xrd") / "demo") / "library"


def test_ctrl_c_keeps_the_finished_epochs_and_writes_the_metrics(library: Path, tmp_path: Path) -> None:
    def interrupt(r: EpochRecord) -> None:
        if r.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_xrd(library, XrdTrainConfig(epochs=4, **TINY), tmp_path / "run", on_epoch=interrupt)  # type: ignore[arg-type]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["stopped"] is True and metrics["epochs"] == 2
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 1 + 2


def test_the_held_out_check_stops_with_stopped_error(library: Path) -> None:
    from labeltune.core.xrd.library import load_library
    from labeltune.core.xrd.measured import Measured
    from labeltune.core.xrd.model import XrdNet, XrdNetConfig
    from labeltune.core.xrd.simulate import SimulationConfig
    from labeltune.core.xrd.train_task import fine_tune_net

    lib = load_library(library)
    sim = SimulationConfig(points=256, two_theta_min=10.0, two_theta_max=80.0)
    measured = Measured(torch.zeros((2, 256)).numpy(), [[[0]], [[1]]], [None, None], ["a", "b"])
    stop = threading.Event()
    stop.set()
    net = XrdNet(XrdNetConfig(n_phases=len(lib.phases), points=256))
    with pytest.raises(StoppedError):
        fine_tune_net(
            net, XrdTrainConfig(epochs=1, **TINY), lib, sim, measured, 0, lambda p: None, stop, "fold"
        )  # type: ignore[arg-type]
