"""The app's multi-GPU run: the torchrun command (Python install and frozen app) and its progress lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from labeltune.cli import build_parser
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress
from labeltune.core.run_files import RunResult
from labeltune.core.torchrun_launch import ProgressLines, load_run_result, read_line, torchrun_command
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_step import EpochRecord

CONFIG = TrainConfig(
    backbone="densenet201", strategy="partial", weights="none", epochs=7, batch_size=24, lr=0.003,
    seed=5, device="cuda", input_size=96, augment=False, patience=2, val_fraction=0.25, group_by="folder",
)  # fmt: skip


def test_from_a_python_install_torchrun_runs_the_module(tmp_path: Path) -> None:
    command = torchrun_command(
        tmp_path / "project", tmp_path / "run", CONFIG, 4, frozen=False, executable="py"
    )
    launcher = [
        "py",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "4",
        "-m",
        "labeltune",
    ]
    assert command[: len(launcher)] == launcher
    args = build_parser().parse_args(command[len(launcher) :])  # the real CLI reads every option
    assert (args.data, args.out, args.json) == (str(tmp_path / "project"), str(tmp_path / "run"), True)
    assert (args.backbone, args.strategy, args.weights, args.epochs, args.batch_size) == (
        "densenet201", "partial", "none", 7, 24,
    )  # fmt: skip
    assert (args.lr, args.seed, args.device, args.input_size, args.no_augment, args.patience) == (
        0.003, 5, "cuda", 96, True, 2,
    )  # fmt: skip
    assert (args.val_fraction, args.group_by) == (0.25, "folder")


def test_the_installed_app_runs_its_own_executable_twice(tmp_path: Path) -> None:
    exe = str(tmp_path / "LabelTune" / "labeltune")
    command = torchrun_command(None, tmp_path / "run", None, 2, frozen=True, executable=exe)
    assert command == [
        exe, "torchrun", "--standalone", "--nproc-per-node", "2", "--no-python", exe,
        "train", "--resume", str(tmp_path / "run"), "--json",
    ]  # fmt: skip


def test_installer_entry_runs_torchrun_for_its_torchrun_argument() -> None:
    entry = (Path(__file__).resolve().parents[2] / "installer" / "entry.py").read_text()
    assert 'sys.argv[1:2] == ["torchrun"]' in entry and "torch.distributed.run" in entry
    spec = (Path(__file__).resolve().parents[2] / "installer" / "labeltune.spec").read_text()
    assert '"torch.distributed.run"' in spec


def test_a_setting_the_command_cannot_carry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnusableInputError, match="weight decay"):
        torchrun_command(tmp_path, tmp_path / "run", TrainConfig(weight_decay=0.5), 2)


def test_progress_lines_read_back_as_the_events_they_were() -> None:
    stream = io.StringIO()
    lines = ProgressLines(stream)
    record = EpochRecord(2, 0.5, 0.75, 0.6, 0.7, 0.65, 0.6, 0.001, 3.5, 32, 16)
    lines(Progress("train", 3, 10, "epoch 1/5 loss 0.500"))
    lines.on_epoch_end(None, record)  # type: ignore[arg-type]
    lines.on_batch_plan_change(None, None, "out of memory: 16 at a time")  # type: ignore[arg-type]
    events = [read_line(line) for line in stream.getvalue().splitlines()]
    assert events == [
        ("progress", Progress("train", 3, 10, "epoch 1/5 loss 0.500")),
        ("epoch", record),
        ("notice", "out of memory: 16 at a time"),
    ]
    assert read_line("W1206 torch/distributed/run.py:982] *****") is None
    assert read_line("@labeltune {broken") is None


def test_a_finished_run_folder_reads_back_as_its_result(tmp_path: Path) -> None:
    from labeltune.core.train_callbacks import write_history

    record = EpochRecord(1, 0.5, 0.75, 0.6, 0.7, 0.65, 0.6, 0.001, 3.5, 32, 32)
    result = RunResult(
        tmp_path, "resnet18", "full", ["a", "b"], 40, 10, {"accuracy": 0.9, "macro_f1": 0.8}, 1, 1, 12.5, 0.0,
        [], stopped=True, history=[record], epochs_planned=5,
    )  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps({**result.metrics, "summary": result.to_json()}))
    write_history(tmp_path, [record])
    loaded = load_run_result(tmp_path)
    assert (
        loaded.to_json() == result.to_json()
        and loaded.history == [record]
        and loaded.metrics == result.metrics
    )
