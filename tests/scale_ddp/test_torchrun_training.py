"""``torchrun --nproc-per-node 2 -m labeltune train`` on this CPU (gloo): it learns, writes one run, stops.

Each torchrun starts two Python processes that import torch: these tests cost ~20 s each on a loaded
2-core machine, so there are few of them; the sharding and the signal rules are checked in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import labeltune
from conftest import write_class_folder  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune import cli

SOURCE = Path(labeltune.__file__).resolve().parents[1]  # this checkout's desktop/, for the subprocesses
#: A run of a few seconds: ResNet-18 from random weights at 32 px, the whole network trained.
TINY = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--strategy", "full"]
TINY += ["--batch-size", "16", "--seed", "0"]


def write_data(folder: Path) -> Path:
    """Three classes of 16 small images each, separable by colour."""
    return write_class_folder(folder, classes=3, per_class=16, size=40)


def torchrun(args: list[str], cwd: Path, **popen: Any) -> subprocess.Popen[str]:
    """``torchrun --standalone --nproc-per-node 2 -m labeltune ARGS`` (a free port; this checkout's code)."""
    env = {**os.environ, "PYTHONPATH": str(SOURCE), "LABELTUNE_CHECKPOINT_SECONDS": "0"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    return subprocess.Popen(
        [*command, "-m", "labeltune", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def finish(process: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.mark.slow
def test_two_processes_learn_as_one_and_write_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_data(tmp_path / "data")
    code, out, err = finish(torchrun(["train", str(data), *TINY, "--epochs", "3", "--json"], tmp_path))
    assert code == 0, err
    assert "Traceback" not in err and "terminate called" not in err
    summary = json.loads(out)  # one JSON object: rank 0 alone prints
    runs = list((tmp_path / "runs").iterdir())
    assert runs == [Path(summary["run_dir"])]  # the ranks agreed on the folder's name: one run, once
    files = sorted(p.name for p in runs[0].iterdir())
    assert [f for f in files if f.startswith(".")] == []  # no temporary files or lock left
    assert {"config.json", "metrics.json", "history.csv", "model.safetensors", "checkpoint.pt"} <= set(files)
    assert summary["train_size"] + summary["val_size"] == 48  # every rank's share counted once
    history = (runs[0] / "history.csv").read_text().splitlines()
    assert len(history) == 4 and history[1].split(",")[-2] == "16"  # 3 epochs, the global batch
    assert summary["val_accuracy"] > 0.5  # 3 classes: chance is 1/3

    # One process, the same global batch and seed: about the same accuracy (one thread, as each rank).
    alone_args = [*TINY, "--epochs", "3", "--threads", "1", "--out", str(tmp_path / "one"), "--json"]
    assert cli.main(["train", str(data), *alone_args]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert abs(summary["val_accuracy"] - alone["val_accuracy"]) <= 0.25
    assert summary["val_size"] == alone["val_size"]


@pytest.mark.slow
def test_sigterm_stops_every_rank_with_the_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    run = tmp_path / "run"
    process = torchrun(["train", str(data), *TINY, "--epochs", "60", "--out", str(run), "--json"], tmp_path)
    history = run / "history.csv"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)  # what a scheduler, or the app's Stop, sends to torchrun
    code, out, err = finish(process)
    summary = json.loads(out)  # rank 0 finished the run as stopped and said so
    assert summary["stopped"] is True and 1 <= summary["epochs_run"] < 60
    assert json.loads((run / "metrics.json").read_text())["summary"]["stopped"] is True
    assert (run / "checkpoint.pt").is_file() and (run / "model.safetensors").is_file()
    assert "terminate called" not in err

    done = summary["epochs_run"] + 1
    resumed = ["train", "--resume", str(run), "--epochs", str(done), "--json"]
    code, out, err = finish(torchrun(resumed, tmp_path))
    assert code == 0, err
    again = json.loads(out)
    assert again["stopped"] is False and again["epochs_run"] == done
    rows = (run / "history.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, done + 1))
