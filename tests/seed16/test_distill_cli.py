"""``labeltune distill``: teachers' soft targets and unlabeled items train an ordinary student (issue 16)."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import write_class_folder  # tests/conftest.py
from labeltune.cli import main

TINY = ["--weights", "none", "--batch-size", "16", "--threads", "1"]


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_student_learns_from_two_teachers_and_the_unlabeled_items(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LABELTUNE_CACHE_DIR", str(tmp_path / "cache"))
    data = write_class_folder(tmp_path / "data", classes=3, per_class=12, size=40)
    spare = write_class_folder(tmp_path / "spare", classes=3, per_class=4, size=40, seed=5)
    for k in range(3):  # files at the top level are unlabeled items
        for image in (spare / f"class{k}").iterdir():
            shutil.copy(image, data / f"unlabeled-{k}-{image.name}")
    teachers = {
        "strong": ["--backbone", "resnet18", "--input-size", "32", "--epochs", "6", "--lr", "3e-3"],
        "weak": ["--backbone", "alexnet", "--input-size", "63", "--epochs", "1", "--lr", "1e-4"],
    }
    for name, options in teachers.items():
        run_json(
            capsys,
            ["train", str(data), *options, *TINY, "--patience", "0", "--out", str(tmp_path / name), "--json"],
        )
    out = tmp_path / "student"
    student = run_json(
        capsys,
        ["distill", str(data), "--teachers", str(tmp_path / "strong"), str(tmp_path / "weak"),
         "--student", "resnet18", "--input-size", "24", *TINY, "--epochs", "8", "--lr", "3e-3",
         "--out", str(out), "--json"],
    )  # fmt: skip
    report = student["distill"]
    assert [t["backbone"] for t in report["teachers"]] == ["resnet18", "alexnet"]
    assert [t["input_size"] for t in report["teachers"]] == [32, 63]
    assert report["unlabeled_used"] == 12
    weak = report["teachers"][1]["val_accuracy"]
    assert student["val_accuracy"] >= max(weak, 0.6), report  # chance is 1/3
    assert report["student"]["val_accuracy"] == student["val_accuracy"]
    # sizes and speeds are measured, the ensemble's add up
    for row in (report["student"], *report["teachers"], report["ensemble"]):
        assert row["params"] > 0 and row["size_mb"] > 0 and row["images_per_second"] > 0
    assert report["ensemble"]["params"] == sum(t["params"] for t in report["teachers"])
    assert report["student"]["params"] < report["ensemble"]["params"]
    # the teachers' validation items are the student's: nothing the teachers validated on is trained on
    assert (
        student["val_size"]
        == json.loads((tmp_path / "strong" / "metrics.json").read_text())["summary"]["val_size"]
    )
    # an ordinary run: predict, export
    assert main(["predict", str(out), str(data / "class1"), "--json"]) == 0
    capsys.readouterr()
    assert main(["export", str(out), "--format", "torchscript", "--out", str(tmp_path / "export")]) == 0


def test_distill_refuses_teachers_of_other_classes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LABELTUNE_CACHE_DIR", str(tmp_path / "cache"))
    three = write_class_folder(tmp_path / "three", classes=3, per_class=6, size=32)
    two = tmp_path / "two"
    for k in range(2):
        shutil.copytree(three / f"class{k}", two / f"class{k}")
    for name, data in (("a", three), ("b", two)):
        run_json(
            capsys,
            [
                "train",
                str(data),
                "--backbone",
                "resnet18",
                "--input-size",
                "32",
                *TINY,
                "--epochs",
                "1",
                "--out",
                str(tmp_path / name),
                "--json",
            ],
        )
    code = main(
        [
            "distill",
            str(three),
            "--teachers",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
            "--student",
            "resnet18",
            "--out",
            str(tmp_path / "s"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "must know the same classes" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
