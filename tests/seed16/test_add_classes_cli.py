"""``labeltune train DATA --init RUN`` adds DATA's new classes to an image run, keeping the old (issue 16)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import write_class_folder  # tests/conftest.py
from labeltune.cli import main

TINY = ["--weights", "none", "--batch-size", "16", "--patience", "0", "--threads", "1"]


def manifest(run: Path) -> dict[str, str]:
    """sha256 -> split of a run's manifest."""
    with open(run / "manifest.csv", newline="") as handle:
        return {row["sha256"]: row["split"] for row in csv.DictReader(handle)}


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def five_classes(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of 5 separable classes and one of its first 3 (the old run's data)."""
    full = write_class_folder(tmp_path / "all", classes=5, per_class=12, size=40)
    old = tmp_path / "old"
    for k in range(3):
        shutil.copytree(full / f"class{k}", old / f"class{k}")
    return old, full


@pytest.mark.parametrize(
    ("backbone", "strategy", "size"), [("resnet18", "features", "32"), ("resnet18", "partial", "32")]
)
def test_init_adds_the_new_classes_and_keeps_the_old(
    tmp_path, capsys, monkeypatch, five_classes, backbone, strategy, size
):
    monkeypatch.setenv("LABELTUNE_CACHE_DIR", str(tmp_path / "cache"))
    old_data, full_data = five_classes
    base = ["--backbone", backbone, "--strategy", strategy, "--input-size", size, *TINY]
    first = run_json(
        capsys,
        [
            "train",
            str(old_data),
            *base,
            "--epochs",
            "8",
            "--lr",
            "3e-3",
            "--out",
            str(tmp_path / "r1"),
            "--json",
        ],
    )
    assert first["classes"] == ["class0", "class1", "class2"]
    out = tmp_path / "r2"
    from labeltune.core import training

    fitted: list[tuple[str, int]] = []  # (strategy, cached views) the addition's inputs were prepared with
    real_prepare = training.prepare_inputs

    def spy(job, *args, **kwargs):
        fitted.append((job.config.strategy, job.config.cached_views))
        return real_prepare(job, *args, **kwargs)

    monkeypatch.setattr(training, "prepare_inputs", spy)
    second = run_json(
        capsys,
        [
            "train",
            str(full_data),
            "--init",
            str(tmp_path / "r1"),
            *TINY,
            "--lr",
            "3e-3",
            "--out",
            str(out),
            "--json",
        ],
    )
    # inherited: backbone, strategy and input size; old classes first, the new ones added
    assert (second["backbone"], second["strategy"]) == (backbone, strategy)
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["input_size"] == int(size)
    assert second["classes"] == ["class0", "class1", "class2", "class3", "class4"]
    assert second["new_classes"] == ["class3", "class4"]
    # the old run's validation items are validated on again; its training items stay training items
    old_split, new_split = manifest(tmp_path / "r1"), manifest(out)
    assert all(new_split[h] == split for h, split in old_split.items())
    # learning: old classes kept within one of their ~6 validation items, new ones far above chance (1/5)
    before, after = second["old_classes_accuracy_before"], second["old_classes_accuracy_after"]
    assert before == pytest.approx(first["val_accuracy"], abs=1e-6)
    assert after >= before - 0.2, second
    assert second["new_classes_accuracy"] >= 0.6, second
    # a partial run's addition trains the head alone, on its network's features and an augmented view of
    # each image (ADR 0064); a features run's on the pretrained features, as its run did
    assert fitted == ([("features", 1)] if strategy == "partial" else [("features", 0)])
    # the network is RUN's, untouched (partial: its fine-tuned top too, ADR 0064); only the head grew
    a, b = load_file(tmp_path / "r1" / "model.safetensors"), load_file(out / "model.safetensors")
    network = [k for k in a if k.startswith(("trunk.", "top.", "normalize."))]
    assert network and all((a[k] == b[k]).all() for k in network)
    last = max(k for k in b if k.startswith("head.") and k.endswith(".weight"))
    assert b[last].shape[0] == 5 and a[last].shape[0] == 3
    # an ordinary run: predict uses it
    assert main(["predict", str(out), str(full_data / "class4"), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    labels = (
        [p["label"] for p in predicted["predictions"]]
        if isinstance(predicted, dict)
        else [p["label"] for p in predicted]
    )
    assert labels.count("class4") >= 0.6 * len(labels)


def test_init_refuses_a_conflicting_backbone(tmp_path, capsys, monkeypatch, five_classes):
    monkeypatch.setenv("LABELTUNE_CACHE_DIR", str(tmp_path / "cache"))
    old_data, full_data = five_classes
    run_json(
        capsys,
        [
            "train",
            str(old_data),
            "--backbone",
            "resnet18",
            "--input-size",
            "32",
            *TINY,
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "r1"),
            "--json",
        ],
    )
    code = main(
        [
            "train",
            str(full_data),
            "--init",
            str(tmp_path / "r1"),
            "--backbone",
            "alexnet",
            "--out",
            str(tmp_path / "r2"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--backbone alexnet conflicts" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r2").exists()
