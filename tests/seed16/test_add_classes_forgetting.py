"""Adding classes keeps the old ones (issue 16, ADR 0061): RUN's outputs distilled, new logits shifted.

The constructed case: a new class drawn from the same distribution as an old one (a "twin" the features
cannot tell apart). Training the head on all items with a class-balanced loss alone (ADR 0053) hands part
of the old class to the twin; with the new classes' logits shifted by what held-out training items tell,
the old classes keep their accuracy, and a distinct new class is still learned.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import write_class_folder  # tests/conftest.py
from labeltune.cli import main
from labeltune.core import features

TINY = ["--weights", "none", "--batch-size", "16", "--patience", "0", "--threads", "1", "--seed", "0"]
BASE = ["--backbone", "resnet18", "--strategy", "features", "--input-size", "32", *TINY]


@pytest.fixture
def with_twin(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """Old data (3 classes), and all data: the old + a distinct class3 + ``twin`` (class0's colour)."""
    full = write_class_folder(tmp_path / "all", classes=4, per_class=30, size=32)
    twin_source = write_class_folder(tmp_path / "twin-src", classes=1, per_class=30, size=32, seed=5)
    shutil.move(twin_source / "class0", full / "twin")
    old = tmp_path / "old"
    for k in range(3):
        shutil.copytree(full / f"class{k}", old / f"class{k}")
    new_files = sorted([*(full / "class3").iterdir(), *(full / "twin").iterdir()])
    return old, full, new_files


def train_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(["train", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_new_twin_class_does_not_take_the_old_classes_items(tmp_path, capsys, monkeypatch, with_twin):
    monkeypatch.setenv("LABELTUNE_CACHE_DIR", str(tmp_path / "cache"))
    old_data, full_data, new_files = with_twin
    first = train_json(
        capsys, [str(old_data), *BASE, "--epochs", "15", "--lr", "3e-3", "--out", str(tmp_path / "r1")]
    )
    decoded: list[str] = []
    decode = features.decode_batch

    def spy(paths, *args, **kwargs):  # the backbone runs on the files decoded here (cache misses)
        decoded.extend(Path(p).name + "@" + Path(p).parent.name for p in paths)
        return decode(paths, *args, **kwargs)

    monkeypatch.setattr(features, "decode_batch", spy)
    out = tmp_path / "r2"
    second = train_json(
        capsys, [str(full_data), "--init", str(tmp_path / "r1"), *TINY, "--lr", "3e-3", "--out", str(out)]
    )
    # only the new items went through the backbone: the old ones' features came from the cache
    assert sorted(decoded) == sorted(p.name + "@" + p.parent.name for p in new_files)
    assert second["new_classes"] == ["class3", "twin"]
    before, after = second["old_classes_accuracy_before"], second["old_classes_accuracy_after"]
    assert before == pytest.approx(first["val_accuracy"], abs=1e-6)
    assert before >= 0.9, second
    # the twin takes none of class0's items (ADR 0053's method lost several)
    assert after >= before - 0.05, second
    assert second["new_classes_logit_shift"] > 0, second
    metrics = json.loads((out / "metrics.json").read_text())
    recall = {row["class"]: row["recall"] for row in metrics["per_class"]}
    assert recall["class3"] >= 0.75, recall  # the distinct new class is learned
