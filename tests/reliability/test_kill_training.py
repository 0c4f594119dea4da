"""kill -9 a training run (mid-epoch, and while it writes its checkpoint): nothing is lost.

The run is ``labeltune train PROJECT --json`` in a child process that stops at an exact moment
(``train_until_killed.py``) and is killed there with SIGKILL. Afterwards every file of the run folder is
whole, the project opens and lists the run as interrupted, and ``labeltune train --resume`` (and the app's
Continue) finish it with the history and quality of a run that was never killed.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from labeltune.core.datasets import scan
from labeltune.core.project import Project
from labeltune.core.run_state import record_interrupted_runs, stopped_run
from labeltune.core.trainer import EpochRecord
from labeltune.core.training import TrainConfig, train

HERE = Path(__file__).resolve().parent
DESKTOP = HERE.parents[1] / "desktop"
EPOCHS = 6
BATCHES = 5  # 39 training images in batches of 8 (the features strategy keeps the last, smaller one)
ARGS = ["--strategy", "features", "--backbone", "resnet18", "--weights", "none", "--input-size", "32"]
ARGS += ["--epochs", str(EPOCHS), "--batch-size", "8", "--lr", "0.003", "--threads", "1", "--json"]


@dataclass
class KilledRun:
    project: Path
    run_dir: Path
    mark: Path


def make_project(root: Path) -> Path:
    """A project of three colour classes (16 images each)."""
    from conftest import write_class_folder

    data = write_class_folder(root / "data", classes=3, per_class=16, size=40)
    folder = root / "project"
    with Project.create(folder) as project:
        found = scan(data)
        project.add_source(found.root)
        project.add_samples(found.samples)
    return folder


def kill_training_at(root: Path, moment: str, n: int, out: Path | None = None) -> KilledRun:
    """Train a new project's run in a child process and SIGKILL it at ``moment`` ``n``.

    ``out``: the run folder (``--out``); by default ``runs/killed`` in the project.
    """
    project = make_project(root)
    run_dir = out if out is not None else project / "runs" / "killed"
    mark = root / "at-the-moment"
    env = dict(os.environ)  # the test's isolated user folders (tests/conftest.py), shared with the child
    env["PYTHONPATH"] = os.pathsep.join([str(DESKTOP), str(HERE), env.get("PYTHONPATH", "")])
    env["LABELTUNE_CHECKPOINT_SECONDS"] = "0"  # a checkpoint after every epoch, as a long epoch has
    command = [sys.executable, str(HERE / "train_until_killed.py"), str(mark), moment, str(n), "--"]
    command += ["train", str(project), "--out", str(run_dir), *ARGS]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not mark.exists():
            if child.poll() is not None:
                _out, err = child.communicate()
                pytest.fail(f"training ended before the moment ({child.returncode}): {err.decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("training did not reach the moment in 5 minutes")
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(60)
        child.communicate()
    return KilledRun(project, run_dir, mark)


def history_rows(run_dir: Path) -> list[dict[str, str]]:
    """``history.csv``'s rows, each checked to be whole (every column, numbers)."""
    with open(run_dir / "history.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        assert list(row) == list(EpochRecord.__dataclass_fields__)
        assert all(value not in (None, "") for value in row.values()), row
        [float(value) for value in row.values()]
    return rows


def assert_whole(run_dir: Path) -> int:
    """Every file of the run folder parses; returns the checkpoint's epoch."""
    names = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    assert {"config.json", "manifest.csv", "history.csv", "checkpoint.pt"} <= names, names
    assert "metrics.json" not in names  # killed before the results: the run is interrupted
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert config["train"]["epochs"] == EPOCHS and config["model"]["classes"] == [
        "class0",
        "class1",
        "class2",
    ]
    with open(run_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 48
    checkpoint = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    epochs = [row["epoch"] for row in history_rows(run_dir)]
    assert epochs == [str(e) for e in range(1, len(epochs) + 1)]
    assert [r["epoch"] for r in checkpoint["history"]] == list(range(1, checkpoint["epoch"] + 1))
    if (run_dir / "model.safetensors").exists():
        assert load_file(run_dir / "model.safetensors")
    return int(checkpoint["epoch"])


def assert_listed_as_interrupted(killed: KilledRun, epochs_run: int) -> None:
    """The project opens; its store lists the run as stopped (interrupted) and resumable."""
    found = stopped_run(killed.run_dir)
    assert found is not None and found.interrupted
    assert found.describe() == f"interrupted after epoch {epochs_run} of {EPOCHS}"
    with Project.open(killed.project) as project:
        assert project.runs() == []  # a run is recorded when it ends: a killed one was not
        assert record_interrupted_runs(project) == [found]
        [run] = project.runs()
        assert run["id"] == "killed" and run["metrics"]["stopped"] is True
        assert run["metrics"]["epochs_run"] == epochs_run and run["metrics"]["epochs_planned"] == EPOCHS
        assert record_interrupted_runs(project) == []  # once


def assert_left_alone_while_another_process_trains_it(killed: KilledRun) -> None:
    """A run whose lock a live process holds is neither interrupted nor resumable (no two trainers)."""
    from labeltune.core.errors import UnusableInputError
    from labeltune.core.project_lock import LOCK_FILE
    from labeltune.core.training import resume

    path = killed.run_dir / LOCK_FILE
    stale = path.read_text(encoding="utf-8")  # left by the killed process
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path.write_text(json.dumps({**json.loads(stale), "pid": sleeper.pid}), encoding="utf-8")
        assert stopped_run(killed.run_dir) is None
        with pytest.raises(
            UnusableInputError, match=f"is being trained on this computer .*process {sleeper.pid}"
        ):
            resume(killed.run_dir)
    finally:
        sleeper.kill()
        sleeper.wait(60)
        path.write_text(stale, encoding="utf-8")
    assert stopped_run(killed.run_dir) is not None


def resume_with_the_cli(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    from labeltune import cli

    capsys.readouterr()
    code = cli.main(["train", "--resume", str(run_dir), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary: dict[str, object] = json.loads(captured.out)
    return summary


def assert_finished_like_an_uninterrupted_run(killed: KilledRun, summary: dict[str, object]) -> None:
    assert summary["stopped"] is False and summary["epochs_run"] == summary["epochs_planned"] == EPOCHS
    assert [row["epoch"] for row in history_rows(killed.run_dir)] == [str(e) for e in range(1, EPOCHS + 1)]
    assert not list(killed.run_dir.glob(".*.tmp"))  # the cut-short write is cleared away
    assert load_file(killed.run_dir / "model.safetensors")
    assert stopped_run(killed.run_dir) is None
    with Project.open(killed.project) as project:
        [run] = project.runs()
    assert run["metrics"]["stopped"] is False and run["metrics"]["epochs_run"] == EPOCHS

    config = TrainConfig(
        backbone="resnet18", strategy="features", weights="none", input_size=32, epochs=EPOCHS,
        batch_size=8, lr=0.003, threads=1,
    )  # fmt: skip
    reference = train(scan(killed.project), config, killed.project / "runs" / "never-killed")
    accuracy = summary["val_accuracy"]
    assert isinstance(accuracy, float) and accuracy >= 0.77  # it learned (chance: 1/3; 9 validation images)
    assert abs(accuracy - reference.metrics["accuracy"]) <= 1 / 9 + 1e-9  # at most one image apart
    resumed = [float(row["train_loss"]) for row in history_rows(killed.run_dir)]
    assert resumed == pytest.approx([r.train_loss for r in reference.history], rel=0.05)


def test_killed_mid_epoch_the_run_is_whole_listed_and_resumes_to_the_same_quality(tmp_path, capsys):
    killed = kill_training_at(tmp_path, "pass", 2 * BATCHES + 3)  # epoch 3, its third batch

    assert assert_whole(killed.run_dir) == 2  # the checkpoint of epoch 2; epoch 3 was cut short
    assert len(history_rows(killed.run_dir)) == 2
    assert not list(killed.run_dir.glob(".*.tmp"))
    assert_listed_as_interrupted(killed, 2)

    summary = resume_with_the_cli(killed.run_dir, capsys)
    assert_finished_like_an_uninterrupted_run(killed, summary)


def test_a_run_killed_outside_the_project_is_listed_too(tmp_path):
    """``--out`` outside the project's ``runs``: the app finds killed runs by looking there, so the
    run is recorded as it starts (found in a trial: it was neither listed nor offered to continue)."""
    from labeltune.ui.run_details import status_text
    from labeltune.ui.runs_list import load_run_details, run_status

    killed = kill_training_at(tmp_path, "pass", BATCHES + 2, out=tmp_path / "elsewhere" / "run")
    found = stopped_run(killed.run_dir)
    assert found is not None and found.describe() == f"interrupted after epoch 1 of {EPOCHS}"
    with Project.open(killed.project) as project:
        assert record_interrupted_runs(project) == []  # not in its runs folder: listed already
        [run] = project.runs()
    assert Path(run["path"]) == killed.run_dir.resolve() and run["metrics"]["interrupted"] is True
    details = load_run_details(run)
    assert status_text(details) == f"Interrupted after epoch 1 of {EPOCHS}: no results yet."
    assert "Continue stopped run" in details.problem and "Continue training" in details.problem
    assert run_status(run) == "no metrics"  # the list shows "interrupted after ..." (stopped_run)

    from labeltune.core.project_lock import LOCK_FILE

    lock = killed.run_dir / LOCK_FILE
    stale = lock.read_text(encoding="utf-8")  # left by the killed process
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # as while the CLI trains it: the app, opened meanwhile, says so
        lock.write_text(json.dumps({**json.loads(stale), "pid": sleeper.pid}), encoding="utf-8")
        assert run_status(run) == "training now"
        details = load_run_details(run)
        assert status_text(details) == f"Training now: epoch 1 of {EPOCHS} done so far."
        assert details.problem.startswith("This run is training now (on this computer")
    finally:
        sleeper.kill()
        sleeper.wait(60)


def test_a_run_outside_the_project_that_fails_at_once_is_not_left_listed(tmp_path, capsys):
    from labeltune import cli

    project = make_project(tmp_path)
    with Project.open(project) as opened:
        opened.set_labels([s.path for s in opened.samples() if s.label != "class0"], None)
    out = tmp_path / "elsewhere" / "run"
    assert cli.main(["train", str(project), "--out", str(out), *ARGS]) == 2
    assert "at least 2 classes" in capsys.readouterr().err
    with Project.open(project) as opened:
        assert opened.runs() == []


def test_killed_while_writing_its_checkpoint_the_previous_one_is_kept(tmp_path, capsys):
    killed = kill_training_at(tmp_path, "checkpoint", 3)  # half of epoch 3's checkpoint is on disk

    [partial] = killed.run_dir.glob(".checkpoint.pt.*.tmp")
    assert partial.stat().st_size > 0
    with pytest.raises(Exception):  # noqa: B017 - what is cut short does not load: it must not be used
        torch.load(partial, map_location="cpu", weights_only=True)
    assert assert_whole(killed.run_dir) == 2  # checkpoint.pt is epoch 2's, whole
    assert len(history_rows(killed.run_dir)) == 3  # history.csv was written before the checkpoint
    assert_listed_as_interrupted(killed, 3)
    assert_left_alone_while_another_process_trains_it(killed)

    summary = resume_with_the_cli(killed.run_dir, capsys)  # epochs 3-6 again from epoch 2's checkpoint
    assert_finished_like_an_uninterrupted_run(killed, summary)


def test_the_app_lists_a_killed_run_and_continue_finishes_it(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from labeltune.core.settings import Settings
    from labeltune.ui.main_window import MainWindow

    killed = kill_training_at(tmp_path, "pass", BATCHES + 2)  # epoch 2
    window = MainWindow(Settings(backbone="resnet18", weights="none"))
    qtbot.addWidget(window)
    window.show()
    try:
        window.open_project(killed.project)  # the app restarted after the crash
        runs_list = window.results_panel.runs_list
        item = runs_list.topLevelItem(0)
        assert item is not None and item.text(4) == f"interrupted after epoch 1 of {EPOCHS}"
        panel = window.train_panel
        assert panel.resumable is not None and panel.resumable.run_dir == killed.run_dir
        assert panel.resume_button.isEnabled()
        assert f"interrupted after epoch 1 of {EPOCHS}" in panel.resume_button.toolTip()

        window.tabs.setCurrentWidget(panel)
        with qtbot.waitSignal(panel.run_finished, timeout=180_000) as finished:
            qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
        assert finished.args[0] == killed.run_dir
        result = panel.last_result
        assert result is not None and not result.stopped and result.epochs_run == EPOCHS
        assert [r.epoch for r in panel.curves.records()] == list(range(1, EPOCHS + 1))
        assert runs_list.topLevelItem(0).text(4) == "finished"  # type: ignore[union-attr]
        assert [row["epoch"] for row in history_rows(killed.run_dir)] == [
            str(e) for e in range(1, EPOCHS + 1)
        ]
    finally:
        window.train_panel.shutdown()
        window.session.close()
        window.close()
