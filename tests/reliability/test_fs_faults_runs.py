"""Saving a run while the disk fails: the run stops with one clear line, the previous run files stay whole.

A run trained for two epochs is resumed to four with a fault injected into its folder (fs_faults.inject)
from the start of the fit (history.csv and the checkpoint of the first new epoch fail) or from the start
(config.json fails); every file of the run must be byte-identical afterwards and no temporary file left
(docs/adr/0042).
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
from fs_faults import FAULTS, REASONS, inject, snapshot, temp_files

from conftest import write_class_folder
from labeltune import cli
from labeltune.core.datasets import scan
from labeltune.core.errors import StorageError
from labeltune.core.model import load_model
from labeltune.core.trainer import Callback, Trainer
from labeltune.core.training import TrainConfig, resume, train

CODES = list(FAULTS.values())
IDS = list(FAULTS)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-epoch run (resnet18, random weights, 32 px) with its checkpoint, trained once per module."""
    root = tmp_path_factory.mktemp("faults-run")
    data = write_class_folder(root / "data", classes=2, per_class=8, size=32)
    config = TrainConfig(
        backbone="resnet18", weights="none", input_size=32, epochs=2, batch_size=8, patience=0, threads=1
    )
    run = root / "run"
    train(scan(data), config, run, cache_root=root / "cache")
    assert (run / "checkpoint.pt").is_file() and (run / "model.safetensors").is_file()
    return run


class FaultFromFitStart(Callback):
    """Starts the fault when the fit starts (the run's config.json is already written)."""

    def __init__(self, code: int, folder: Path, stack: ExitStack) -> None:
        self.code, self.folder, self.stack = code, folder, stack
        self.hits: list[str] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        self.hits = self.stack.enter_context(inject(self.code, self.folder))


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_resumed_run_fails_clearly_and_keeps_the_last_checkpoint(
    trained_run: Path, tmp_path: Path, code: int
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    with ExitStack() as stack, pytest.raises(StorageError) as caught:
        fault = FaultFromFitStart(code, run, stack)
        resume(run, epochs=4, callbacks=[fault])
    assert fault.hits, "the fault was never met"
    message = str(caught.value)
    assert str(run) in message and REASONS[code] in message
    assert "\n" not in message
    after = snapshot(run)
    assert after.keys() == before.keys()
    changed = [name for name in before if after[name] != before[name] and name != "config.json"]
    assert changed == []  # checkpoint, model, history, manifest: byte-identical
    assert temp_files(run) == []
    model, _ = load_model(run)  # the previous model still loads
    assert sum(p.numel() for p in model.parameters()) > 0
    resumed = resume(run, epochs=3)  # and the run can go on once the disk is back
    assert resumed.epochs_run == 3


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_cli_resume_exits_2_with_one_line(
    trained_run: Path, tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    with inject(code, run) as hits:
        status = cli.main(["train", "--resume", str(run), "--epochs", "3"])
    err = capsys.readouterr().err
    assert hits and status == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(run) in err and REASONS[code] in err
    assert snapshot(run) == before
    assert temp_files(run) == []


def test_a_new_run_on_a_full_disk_leaves_no_half_folder(trained_run: Path, tmp_path: Path) -> None:
    """The run folder is made, then the first file fails: the half-made folder goes (nothing to list)."""
    data = write_class_folder(tmp_path / "data", classes=2, per_class=4, size=32)
    runs = tmp_path / "runs"
    runs.mkdir()
    config = TrainConfig(backbone="resnet18", weights="none", input_size=32, epochs=1, batch_size=8)
    with inject(FAULTS["disk full"], runs) as hits, pytest.raises(StorageError) as caught:
        train(scan(data), config, runs / "run-1", cache_root=tmp_path / "cache")
    assert hits and REASONS[28] in str(caught.value)
    assert list(runs.iterdir()) == []


# ------------------------------------------------------------- (d) using the run: export, predict, sort
@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_export_over_a_previous_export_keeps_it_when_the_disk_fails(
    trained_run: Path, tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    out.mkdir()
    model = out / "model.pt"
    assert cli.main(["export", str(trained_run), "--format", "torchscript", "--out", str(model)]) == 0
    before = snapshot(out)
    assert "model.pt" in before and "model.pt.card.json" in before
    capsys.readouterr()
    with inject(code, out) as hits:
        status = cli.main(["export", str(trained_run), "--format", "torchscript", "--out", str(model)])
    err = capsys.readouterr().err
    assert hits and status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(out) in err and REASONS[code] in err
    assert snapshot(out) == before
    assert temp_files(out) == []


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_predictions_csv_and_sorting_fail_clearly_and_leave_no_half_file(
    trained_run: Path, tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from labeltune.core.use_model import predict_folder

    images = write_class_folder(tmp_path / "new", classes=2, per_class=2, size=32)
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("path,label\nold.png,class0\n")
    before = snapshot(out)
    with inject(code, out) as hits, pytest.raises(StorageError) as caught:
        predict_folder(trained_run, [images], csv_path=out / "predictions.csv", device="cpu")
    assert hits and str(out / "predictions.csv") in str(caught.value) and REASONS[code] in str(caught.value)
    assert snapshot(out) == before and temp_files(out) == []
    with inject(code, out) as hits:
        status = cli.main(["predict", str(trained_run), str(images), "--sort-into", str(out / "sorted")])
    err = capsys.readouterr().err
    assert hits and status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(out / "sorted") in err and REASONS[code] in err
    assert snapshot(out) == before and temp_files(out) == []


def test_sorting_on_a_disk_that_fills_up_keeps_whole_copies_only(trained_run: Path, tmp_path: Path) -> None:
    """The class folders exist, the disk fills while copying: no truncated image is left looking sorted."""
    from labeltune.core.use_model import predict_folder

    images = write_class_folder(tmp_path / "new", classes=2, per_class=2, size=32)
    sorted_dir = tmp_path / "sorted"
    done = predict_folder(trained_run, [images], sort_dir=sorted_dir, device="cpu")
    assert done.copied == 4
    before = snapshot(sorted_dir)
    with inject(FAULTS["disk full"], sorted_dir) as hits, pytest.raises(StorageError) as caught:
        predict_folder(trained_run, [images], sort_dir=sorted_dir, device="cpu")
    assert hits and REASONS[28] in str(caught.value)
    assert snapshot(sorted_dir) == before  # the failed copy (img000_1.png) is gone, not half there
    assert temp_files(sorted_dir) == []


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_an_xrd_run_saved_on_a_failing_disk_keeps_its_previous_model_and_metrics(
    tmp_path: Path, code: int
) -> None:
    from labeltune.core.xrd.model import XrdNet, XrdNetConfig
    from labeltune.core.xrd.run_files import save_xrd_model, write_metrics

    run = tmp_path / "run"
    run.mkdir()
    net = XrdNet(
        XrdNetConfig(n_phases=2, points=256, channels=(4, 4), kernels=(3, 3), pools=(2, 2), hidden=8)
    )
    save_xrd_model(run, net)
    write_metrics(run, {"f1": 0.5})
    before = snapshot(run)
    for parameter in net.parameters():
        parameter.data.add_(1.0)
    with inject(code, run) as hits:
        with pytest.raises(StorageError) as model_error:
            save_xrd_model(run, net)
        with pytest.raises(StorageError) as metrics_error:
            write_metrics(run, {"f1": 0.9})
    assert hits
    assert str(run / "model.safetensors") in str(model_error.value) and REASONS[code] in str(
        model_error.value
    )
    assert str(run / "metrics.json") in str(metrics_error.value)
    assert snapshot(run) == before and temp_files(run) == []
