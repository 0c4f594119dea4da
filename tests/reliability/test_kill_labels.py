"""kill -9 while labeling loses no acknowledged label and leaves a store that opens and passes its check.

Each test runs a driver of kill_drivers.py (the CLI's ``label``, the real app offscreen, XRD phase ticks,
an XRD identification) in a subprocess, kills it with SIGKILL at a seeded random moment, reopens the
project and checks every label the driver was told is saved.  A few rounds each, on the same project, so
later rounds start from the state an earlier kill left.  See docs/adr/0040.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from kill_helpers import Acknowledged, run_and_kill  # tests/reliability/kill_helpers.py
from PIL import Image

from labeltune.core.project import DB_FILE, Project

CLASSES = ["cat", "dog", "fox"]
SEED = 20261206


def _image_project(tmp_path: Path, count: int = 40) -> Path:
    """A project of ``count`` small unlabeled photos (files outside the project folder, as imported)."""
    data = tmp_path / "photos"
    data.mkdir(parents=True)
    rng = random.Random(SEED)
    samples = []
    from labeltune.core.sample import Sample

    for i in range(count):
        path = data / f"photo{i:03d}.png"
        Image.new("RGB", (24, 24), tuple(rng.randrange(256) for _ in range(3))).save(path)
        samples.append(Sample(path, None))
    folder = tmp_path / "project"
    with Project.create(folder, classes=CLASSES) as project:
        project.add_samples(samples)
    return folder


def _in_order(expected: Sequence[str], history: Sequence[str]) -> bool:
    """Whether ``expected`` (repeats of one label collapsed: a repeat records nothing) occurs in order."""
    collapsed = [label for i, label in enumerate(expected) if i == 0 or expected[i - 1] != label]
    remaining = iter(history)
    return all(any(label == seen for seen in remaining) for label in collapsed)


def _check_image_store(folder: Path, ack: Acknowledged, by_id: bool) -> int:
    """Every acknowledged label is the item's label (or the one in flight) and in its history, in order."""
    with sqlite3.connect(folder / DB_FILE) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with Project.open(folder) as project:  # runs the open-time check (and makes a backup)
        for key, labels in ack.done.items():
            ref: int | str = int(key) if by_id else key
            assert project.label_of(ref) in ack.allowed(key), (key, labels)
            history = [str(event.value) for event in project.label_history(ref)]
            assert _in_order(labels, history), (key, labels, history)
    return sum(len(labels) for labels in ack.done.values())


def test_kill_the_cli_label_command(tmp_path: Path) -> None:
    folder = _image_project(tmp_path)
    rng = random.Random(SEED)
    checked = 0
    for round_ in range(4):
        ack = run_and_kill(["cli", str(folder), str(SEED + round_)], rng, rng.randint(1, 6), 0.4)
        assert ack.count >= 1
        checked += _check_image_store(folder, ack, by_id=False)
    assert checked >= 4


def test_kill_the_app_while_keys_label(tmp_path: Path) -> None:
    folder = _image_project(tmp_path)
    rng = random.Random(SEED + 1)
    checked = 0
    for round_ in range(3):
        ack = run_and_kill(["app", str(folder), str(SEED + round_)], rng, rng.randint(3, 25), 0.3)
        checked += _check_image_store(folder, ack, by_id=True)
    assert checked >= 9


# ------------------------------------------------------------------------------------------------ XRD


@pytest.fixture
def xrd_folder(tmp_path: Path) -> Path:
    from labeltune.core.xrd.demo import write_xrd_demo

    return write_xrd_demo(tmp_path / "xrd")


def test_kill_xrd_phase_ticks(xrd_folder: Path) -> None:
    from labeltune.core.xrd.xrd_project import XrdProject

    rng = random.Random(SEED + 2)
    checked = 0
    for round_ in range(3):
        ack = run_and_kill(["xrd", str(xrd_folder), str(SEED + round_)], rng, rng.randint(1, 15), 0.2)
        project = XrdProject.open(xrd_folder)
        for line in project.history_file.read_text(encoding="utf-8").splitlines():
            json.loads(line)  # no torn or glued line
        for key, labels in ack.done.items():
            assert ";".join(project.labels(key).phases) in ack.allowed(key), (key, labels)
            history = [";".join(event.value.phases) for event in project.label_history(key)]
            assert _in_order(labels, history), (key, labels, history)
            checked += len(labels)
    assert checked >= 3


def test_kill_an_xrd_identification(xrd_folder: Path) -> None:
    from labeltune.core.xrd.xrd_project import PREDICTIONS_FILE, XrdProject

    if XrdProject.open(xrd_folder).model_dir is None:
        pytest.skip("no shipped XRD model in this checkout")
    rng = random.Random(SEED + 3)
    ack = run_and_kill(["identify", str(xrd_folder)], rng, 3, 1.0)
    project = XrdProject.open(xrd_folder)
    json.loads((xrd_folder / PREDICTIONS_FILE).read_text(encoding="utf-8"))  # whole, never half-written
    saved = project.load_predictions()
    for key, phases in ack.done.items():
        assert key in saved
        if not (ack.pending and ack.pending[0] == key):  # identified again when killed: either answer
            assert ";".join(call.name for call in saved[key].phases) == phases[-1]
