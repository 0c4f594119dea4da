"""End-to-end tests of the ``labeltune`` command line, run in-process through ``labeltune.cli.main``.

One module-scoped data set (3 separable classes plus corrupt, truncated, unlabeled, hidden and text files)
and one trained run (resnet18, random weights, 32 px, 3 epochs) are shared by all tests; every output goes
to temporary folders (``LABELTUNE_CACHE_DIR``, ``LABELTUNE_DATA_DIR``, the working directory), and the
weights server points at a closed local port so nothing goes online.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labeltune import cli
from labeltune.core.datasets import Sample
from labeltune.core.project import Project

CLASSES = {"alpha": (220, 40, 40), "beta": (40, 200, 40), "gamma": (40, 40, 220)}
PER_CLASS = 16
READABLE_LABELED = 3 * PER_CLASS
OFFLINE_URL = "http://127.0.0.1:9/"  # the discard port: connection refused at once
TRAIN_REQUIRED = {
    "run_dir",
    "backbone",
    "strategy",
    "classes",
    "train_size",
    "val_size",
    "val_accuracy",
    "val_macro_f1",
    "best_epoch",
    "epochs_run",
    "seconds_total",
    "seconds_features",
    "skipped",
}
FAST = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--seed", "0"]


# ------------------------------------------------------------------------------------------ data


def _image(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 40) -> Image.Image:
    pixels = np.asarray(colour, dtype=np.float64)[None, None, :] + rng.normal(0, 20, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_dataset(root: Path, seed: int = 0) -> dict[str, Path]:
    """3 classes x 16 colour-coded images (PNG, JPEG, nested, upper-case .JPG) and the usual debris."""
    rng = np.random.default_rng(seed)
    for name, colour in CLASSES.items():
        for i in range(PER_CLASS):
            folder = root / name / ("batch2" if name == "beta" and i >= 12 else "")
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{name}_sp{i // 2:02d}_{i % 2}"  # two images per specimen: --group-by tests
            image = _image(colour, rng)
            if name == "gamma" and i >= 14:
                image.save(folder / f"{stem}.JPG", "JPEG", quality=90)
            elif i % 2:
                image.save(folder / f"{stem}.png")
            else:
                image.save(folder / f"{stem}.jpg", quality=90)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "JPEG")
    truncated = root / "alpha" / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    corrupt = root / "beta" / "corrupt.jpg"
    corrupt.write_bytes(rng.bytes(600))
    unlabeled = root / "unlabeled.png"
    _image((128, 128, 128), rng).save(unlabeled)
    (root / "notes.txt").write_text("imaged on the 3rd, microscope B\n")
    (root / ".DS_Store").write_bytes(rng.bytes(64))
    (root / ".thumbnails").mkdir()
    _image((0, 0, 0), rng).save(root / ".thumbnails" / "thumb.png")
    return {"truncated": truncated, "corrupt": corrupt, "unlabeled": unlabeled}


@dataclass
class Env:
    base: Path
    data: Path
    special: dict[str, Path]
    cache: Path
    store: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("cli")
    data = base / "images"
    special = make_dataset(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELTUNE_CACHE_DIR", str(base / "cache"))
        mp.setenv("LABELTUNE_DATA_DIR", str(base / "store"))
        mp.setenv("LABELTUNE_WEIGHTS_BASE_URL", OFFLINE_URL)
        (base / "cwd").mkdir()
        mp.chdir(base / "cwd")  # a train without --out writes ./runs here, never into the repository
        yield Env(base, data, special, base / "cache", base / "store")


@pytest.fixture(autouse=True)
def _module_dirs(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees this module's cache and store (set after any conftest-wide isolation fixture).

    The module-scoped runs below are made before function-scoped fixtures run, so the tests must use the
    same folders for the feature cache to be shared (``seconds_features == 0`` on a second run).
    """
    monkeypatch.setenv("LABELTUNE_CACHE_DIR", str(env.cache))
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(env.store))
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", OFFLINE_URL)


def _quiet_main(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(env: Env) -> tuple[dict[str, Any], Path]:
    """The shared run: resnet18, random weights, 32 px, 3 epochs, seed 0."""
    run_dir = env.base / "run"
    code, out, err = _quiet_main(
        ["train", str(env.data), *FAST, "--epochs", "3", "--out", str(run_dir), "--json"]
    )
    assert code == 0, err
    return json.loads(out), run_dir


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code: int, out: str, err: str, match: str | None = None) -> None:
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("labeltune: error: ")
    if match is not None:
        assert match in lines[0], lines[0]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------------------ basics


def _no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Linux machine without X11/Wayland and no Qt platform chosen (an SSH session on a server)."""
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)


def test_no_arguments_without_a_display_prints_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_display(monkeypatch)
    code, out, _ = run(capsys)
    assert code == 0
    assert "usage: labeltune" in out
    for command in ("backbones", "weights", "scan", "train", "evaluate", "predict", "export", "demo", "gui"):
        assert command in out
    assert out.strip().splitlines()[-1] == cli.NO_DISPLAY_NOTE


def test_no_arguments_with_a_display_starts_the_gui(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import labeltune.app

    _no_display(monkeypatch)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    calls: list[object] = []
    monkeypatch.setattr(labeltune.app, "run_gui", lambda project=None: calls.append(project) or 0)
    code, out, _ = run(capsys)
    assert (code, calls, out) == (0, [None], "")


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(*run(capsys, "frobnicate"))


def test_backbones_json(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "backbones", "--json")
    assert code == 0
    rows = json.loads(out)
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
        "alexnet",
        "densenet201",
        "inception_v3",
        "resnet18",
        "mobilenet_v3_large",
    }
    for row in rows:
        assert isinstance(row["input_size"], int) and isinstance(row["feature_dim"], int)
        # the empty store holds nothing; only the bundled networks' weights are here, offline
        bundled = row["name"].startswith("efficientnet_lite")
        assert row["weights_present"] is bundled
        assert row["bundled"] is bundled
    assert by_name["efficientnet_lite0"]["feature_dim"] == 1280
    assert by_name["efficientnet_lite0"]["download_mb"] == 0
    assert by_name["inception_v3"]["input_size"] == 299
    assert by_name["resnet18"]["input_size"] == 224
    assert by_name["densenet201"]["feature_dim"] == 1920
    assert by_name["resnet18"]["feature_dim"] == 512
    assert by_name["alexnet"]["feature_dim"] == 4096
    assert by_name["mobilenet_v3_large"]["feature_dim"] == 960


def test_backbones_text(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "backbones")
    assert code == 0
    assert "inception_v3" in out and "299" in out and "not downloaded" in out


def test_weights_list_json_uses_data_dir(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "weights", "list", "--json")
    assert code == 0
    infos = json.loads(out)
    assert len(infos) == 8
    bundled_files = {
        "efficientnet_lite0": "efficientnet-lite0-57934424.pth",
        "efficientnet_lite1": "efficientnet-lite1-77cc7160.pth",
        "efficientnet_lite2": "efficientnet-lite2-",
    }
    for info in infos:
        if info["name"] in bundled_files:  # ships inside a Python package, not in the store
            assert info["present"] is True and "bundled" in info["source"]
            assert Path(info["path"]).name.startswith(bundled_files[info["name"]])
            continue
        assert info["present"] is False
        assert Path(info["path"]).is_relative_to(env.store)
        assert info["url"].startswith(OFFLINE_URL)


# ------------------------------------------------------------------------------------------ scan


def test_scan_json(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scan", env.data, "--json")
    assert code == 0
    summary = json.loads(out)
    classes = summary["classes"]
    assert list(classes) == ["alpha", "beta", "gamma"]
    assert classes["beta"] == classes["gamma"] == PER_CLASS
    assert classes["alpha"] in (PER_CLASS, PER_CLASS + 1)  # +1 if the truncated file passes the header check
    assert summary["unlabeled"] == 1
    skipped = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert skipped.get("corrupt.jpg")
    assert "notes.txt" not in skipped and ".DS_Store" not in skipped


def test_scan_text(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", env.data)
    assert code == 0
    assert "alpha" in out and "(unlabeled)" in out
    assert "corrupt.jpg" in err


# ------------------------------------------------------------------------------------------ train


def test_train_json_summary(env: Env, trained: tuple[dict[str, Any], Path]) -> None:
    summary, run_dir = trained
    assert set(summary) >= TRAIN_REQUIRED
    assert Path(summary["run_dir"]) == run_dir
    assert summary["backbone"] == "resnet18"
    assert summary["strategy"] == "features"
    assert summary["classes"] == ["alpha", "beta", "gamma"]
    assert summary["train_size"] + summary["val_size"] == READABLE_LABELED
    assert summary["val_size"] >= 3
    assert summary["val_accuracy"] > 1 / 3 + 0.1
    assert 0 <= summary["val_macro_f1"] <= 1
    assert summary["epochs_run"] == 3
    assert 1 <= summary["best_epoch"] <= 3
    assert summary["seconds_total"] >= summary["seconds_features"] > 0
    skipped = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert skipped.get("corrupt.jpg")
    assert skipped.get("truncated.jpg")  # reported by the scan or, after passing it, by the decoder


def test_run_dir_contents(trained: tuple[dict[str, Any], Path], env: Env) -> None:
    summary, run_dir = trained
    for name in ("config.json", "history.csv", "metrics.json", "model.safetensors", "manifest.csv"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["classes"] == summary["classes"]
    assert config["model"]["input_size"] == 32
    assert len(_rows(run_dir / "history.csv")) == summary["epochs_run"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["val_accuracy"])

    with open(run_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["file", "sha256", "label", "split"]
    splits = [row["split"] for row in rows if row["split"] in ("train", "val")]
    assert len(splits) == len(rows)
    readable = [row for row in rows if Path(row["file"]).name not in ("truncated.jpg", "corrupt.jpg")]
    assert len(readable) == READABLE_LABELED
    assert sum(row["split"] == "val" for row in readable) == summary["val_size"]
    for row in rows[:5]:
        path = Path(row["file"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
        assert row["label"] == path.relative_to(env.data.resolve()).parts[0]


def test_second_run_reuses_the_feature_cache(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, first_dir = trained
    run_dir = env.base / "run-lr"
    code, out, err = run(
        capsys, "train", env.data, *FAST, "--epochs", "2", "--lr", "0.01", "--out", run_dir, "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["seconds_features"] == 0
    assert summary["epochs_run"] == 2
    assert (summary["train_size"], summary["val_size"]) == (first["train_size"], first["val_size"])
    assert _rows(run_dir / "manifest.csv") == _rows(first_dir / "manifest.csv")  # same seed, same split


def test_resume_continues_to_more_epochs(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = env.base / "run-resumed"
    shutil.copytree(trained[1], run_dir)
    code, out, err = run(capsys, "train", "--resume", run_dir, "--epochs", "4", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["epochs_run"] == 4
    assert len(_rows(run_dir / "history.csv")) == 4


def test_resume_of_a_non_run(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(*run(capsys, "train", "--resume", env.data))


def test_group_by_keeps_groups_on_one_side(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = env.base / "run-grouped"
    pattern = r"_sp(\d+)_"  # specimen number: the same specimen numbers occur in every class
    code, out, err = run(
        capsys, "train", env.data, *FAST, "--epochs", "1", "--group-by", pattern, "--out", run_dir, "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["val_size"] > 0 and summary["train_size"] > 0
    sides: dict[str, set[str]] = {}
    for row in _rows(run_dir / "manifest.csv"):
        name = Path(row["file"]).name
        if name.startswith(("alpha", "beta", "gamma")):
            group = name.split("_")[1]
            sides.setdefault(group, set()).add(row["split"])
    assert len(sides) == PER_CLASS // 2
    assert all(len(s) == 1 for s in sides.values()), sides
    assert any(s == {"val"} for s in sides.values()) and any(s == {"train"} for s in sides.values())


@pytest.mark.parametrize("kind", ["folder", "csv", "regex"])
def test_group_by_choices_are_printed_and_recorded(
    env: Env, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    if kind == "csv":  # a CSV of path,specimen chosen by the user (specimens 0-7 per class)
        table = env.base / "specimens.csv"
        rows = [
            f"{path.relative_to(env.data).as_posix()},{path.parent.name}-{path.stem.split('_')[1]}"
            for path in sorted(env.data.rglob("*_sp*"))
        ]
        table.write_text("path,specimen\n" + "\n".join(rows) + "\n")
        spec, expected = (
            f"csv:specimen@{table}",
            "grouped by CSV column 'specimen' of specimens.csv — 24 groups",
        )
    elif kind == "folder":  # alpha, gamma and beta/batch2 besides beta
        spec, expected = "folder", "grouped by folder — 4 groups"
    else:
        spec, expected = r"regex:_sp(\d+)_", r"grouped by file-name pattern _sp(\d+)_ — 8 groups"
    run_dir = env.base / f"run-grouped-{kind}"
    code, out, err = run(
        capsys, "train", env.data, *FAST, "--epochs", "1", "--group-by", spec, "--out", run_dir
    )
    assert code == 0, err
    assert f"split: {expected}" in out.splitlines(), out  # truncated.jpg is left out: no group of its own
    record = json.loads((run_dir / "metrics.json").read_text())["summary"]["grouping"]
    assert record["text"] == expected
    summary = json.loads((run_dir / "metrics.json").read_text())["summary"]
    assert (record["train_images"], record["val_images"]) == (summary["train_size"], summary["val_size"])


def test_train_text_output(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "train", env.data, *FAST, "--epochs", "1", "--out", env.base / "run-text")
    assert code == 0, err
    assert "validation accuracy" in out and "95 % interval" in out
    assert "warning: Trained from random weights" in out
    # train and validation sizes on one line (a line break once split that sentence in two)
    assert any("train" in line and "validation images" in line for line in out.splitlines())
    assert "corrupt.jpg" in err and "Traceback" not in err


def test_train_without_backbone_uses_the_bundled_network_offline(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # the weights store is empty and downloads fail here (OFFLINE_URL): the default needs neither
    code, out, err = run(
        capsys, "train", env.data, "--input-size", "32", "--epochs", "2", "--out", env.base / "run-default"
    )
    assert code == 0, err
    assert "efficientnet_lite0 / features" in out
    assert "confidence calibrated" in out and "unfamiliar-image check" in out
    config = json.loads((env.base / "run-default" / "config.json").read_text())
    assert config["weights_id"] == "imagenet-57934424" and config["train"]["backbone"] == "efficientnet_lite0"


def test_validation_fraction_0_writes_valid_json(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = env.base / "run-no-val"
    code, out, err = run(
        capsys, "train", env.data, *FAST, "--epochs", "1", "--val-fraction", "0", "--out", out_dir
    )
    assert code == 0, err
    assert "confidence not calibrated" in out

    def no_nan(name: str) -> None:
        raise AssertionError(f"{name} in metrics.json is not JSON")

    metrics = json.loads((out_dir / "metrics.json").read_text(), parse_constant=no_nan)
    assert metrics["calibration"]["n"] == 0 and metrics["calibration"]["ece_before"] is None


def test_weights_download_of_the_bundled_network(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "weights", "download", "efficientnet_lite0")
    assert code == 0 and "nothing to download" in out


def test_train_k_fold(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    sides = []
    for fold in (1, 2):
        out_dir = env.base / f"run-fold{fold}"
        code, _out, err = run(
            capsys,
            "train",
            env.data,
            *FAST,
            "--epochs",
            "1",
            "--folds",
            "2",
            "--fold",
            fold,
            "--out",
            out_dir,
            "--json",
        )
        assert code == 0, err
        with open(out_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
            sides.append({row["file"]: row["split"] for row in csv.DictReader(handle)})
    assert sides[0].keys() == sides[1].keys()
    # two folds: what one validates on, the other trains on
    assert all({sides[0][f], sides[1][f]} == {"train", "val"} for f in sides[0])


def test_ctrl_c_during_training_exits_130_and_keeps_the_model(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.core import training

    real_train = training.train

    def train_and_press_ctrl_c(
        data: Any, config: Any, out: Path, progress: Any, stop: Any, *rest: Any
    ) -> Any:
        def report(p: Any) -> None:
            progress(p)
            if p.stage == "train":
                stop.set()  # what the CLI's SIGINT handler does

        return real_train(data, config, out, report, stop, *rest)  # rest: the CLI's trainer callbacks

    monkeypatch.setattr(training, "train", train_and_press_ctrl_c)
    run_dir = env.base / "run-stopped"
    code, out, err = run(
        capsys, "train", env.data, *FAST, "--epochs", "3", "--batch-size", "8", "--out", run_dir, "--json"
    )
    assert code == 130, err
    assert "Traceback" not in err
    assert json.loads(out)["stopped"] is True
    assert (run_dir / "model.safetensors").is_file()


def test_keyboard_interrupt_exits_130(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.core import datasets

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "scan", interrupted)
    code, _, err = run(capsys, "scan", env.data)
    assert code == 130
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------ evaluate


def test_evaluate_json(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "evaluate", trained[1], env.data, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["n"] == READABLE_LABELED
    assert 1 / 3 < metrics["accuracy"] <= 1
    matrix = metrics["confusion_matrix"]
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert sum(map(sum, matrix)) == READABLE_LABELED
    assert [row["class"] for row in metrics["per_class"]] == ["alpha", "beta", "gamma"]
    skipped = {Path(s["path"]).name for s in metrics["skipped"]}
    assert {"corrupt.jpg", "truncated.jpg"} <= skipped


def test_evaluate_text(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "evaluate", trained[1], env.data)
    assert code == 0
    assert "accuracy" in out and "confusion matrix" in out


# ------------------------------------------------------------------------------------------ predict


def test_predict_csv_top_k_and_sort_into(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = env.base / "predictions.csv"
    sorted_dir = env.base / "sorted"
    code, _, err = run(
        capsys,
        "predict",
        trained[1],
        env.data,
        "--top-k",
        "2",
        "--out",
        out_csv,
        "--sort-into",
        sorted_dir,
        "--min-confidence",
        "0.99",
    )
    assert code == 0, err
    with open(out_csv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == [
        "path",
        "predicted",
        "label",
        "confidence",
        "ood_score",
        "unfamiliar",
        "top1_label",
        "top1_probability",
        "top2_label",
        "top2_probability",
    ]
    assert len(rows) == READABLE_LABELED + 1  # + the unlabeled image; the two broken files are skipped
    classes = {"alpha", "beta", "gamma"}
    for row in rows:
        assert row["predicted"] == row["label"] == row["top1_label"] in classes
        assert row["top2_label"] in classes and row["top2_label"] != row["top1_label"]
        p1, p2 = float(row["top1_probability"]), float(row["top2_probability"])
        assert float(row["confidence"]) == p1
        assert 0 <= p2 <= p1 <= 1 and p1 + p2 <= 1 + 1e-5
    assert "corrupt.jpg" in err

    copied = {p.name: p.parent.name for p in sorted_dir.rglob("*") if p.is_file()}
    assert len(copied) == len(rows)  # counts add up to the readable inputs
    assert set(copied.values()) <= classes | {"uncertain", "unfamiliar"}
    for row in rows:
        name = Path(row["path"]).name
        assert row["unfamiliar"] == str(float(row["ood_score"]) > 1).lower()
        if row["unfamiliar"] == "true":
            expected = "unfamiliar"
        else:
            expected = row["label"] if float(row["confidence"]) >= 0.99 else "uncertain"
        assert copied[name] == expected, row
    assert (env.data / "unlabeled.png").exists()  # copied, not moved


def test_predict_json_reports_broken_inputs(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "predict", trained[1], env.data, env.data / "notes.txt", "--top-k", "3", "--json"
    )
    assert code == 0
    items = json.loads(out)
    errors = {Path(item["path"]).name: item["error"] for item in items if "error" in item}
    assert {"corrupt.jpg", "truncated.jpg", "notes.txt"} <= set(errors)
    assert all(errors.values())
    good = [item for item in items if "error" not in item]
    assert len(good) == READABLE_LABELED + 1
    for item in good:
        assert item["label"] in ("alpha", "beta", "gamma")
        assert len(item["top_k"]) == 3
        assert item["top_k"][0]["label"] == item["label"] == item["predicted"]
        assert item["confidence"] == pytest.approx(item["top_k"][0]["probability"])
        assert sum(t["probability"] for t in item["top_k"]) == pytest.approx(1, abs=1e-4)


def test_predict_on_a_project_folder_means_its_samples(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 9.11: predict recursed into the project's cache/thumbnails and listed its database files."""
    folder = env.base / "predict-project"
    code, _out, err = run(capsys, "project", "new", folder, "--from", env.data)
    assert code == 0, err
    thumbs = folder / "cache" / "thumbnails"
    thumbs.mkdir(parents=True, exist_ok=True)
    shutil.copy(env.special["unlabeled"], thumbs / "thumb.png")
    (folder / "labeltune.sqlite-wal").write_bytes(b"")
    code, out, err = run(capsys, "predict", trained[1], folder, "--json")
    assert code == 0, err
    items = json.loads(out)
    predicted = [Path(i["path"]) for i in items if "error" not in i]
    with Project.open(folder) as project:
        samples = {s.path for s in project.samples()}
    assert predicted and set(predicted) <= samples
    assert not any(
        "cache" in p.parts or p.name.startswith("labeltune.sqlite")
        for p in map(Path, (i["path"] for i in items))
    )


def test_predict_single_file_text(
    env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "predict", trained[1], env.special["unlabeled"])
    assert code == 0
    path, label, confidence, *flag = out.strip().split("\t")
    assert Path(path).name == "unlabeled.png" and label in CLASSES and 0 < float(confidence) <= 1
    assert flag in ([], ["unfamiliar"])


# ------------------------------------------------------------------------------------------ export


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export(
    fmt: str, env: Env, trained: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("labeltune.core.export")
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    out_file = env.base / "export" / ("model.onnx" if fmt == "onnx" else "model.pt")
    code, out, err = run(capsys, "export", trained[1], "--format", fmt, "--out", out_file)
    assert code == 0, err
    assert out_file.is_file() and out_file.stat().st_size > 0
    cards = [p for p in out_file.parent.iterdir() if p.name.startswith(out_file.name + ".card")]
    assert cards, "no model card written"
    card_json = out_file.with_name(out_file.name + ".card.json")
    if card_json.is_file():
        card = json.loads(card_json.read_text())
        assert card["classes"] == trained[0]["classes"]
    assert str(out_file) in out


def test_export_of_a_non_run(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("labeltune.core.export")
    out_file = env.base / "export-bad.pt"
    assert_usage_error(*run(capsys, "export", env.data, "--format", "torchscript", "--out", out_file))
    assert not out_file.exists()


# ------------------------------------------------------------------------------------------ projects


def test_train_on_a_project_records_the_run(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    folder = env.base / "project"
    with Project.create(folder, name="Leaves", classes=["alpha", "gamma"]) as project:
        for label in ("alpha", "gamma"):
            files = sorted((env.data / label).glob(f"{label}_sp0[0-4]_*"))
            project.add_samples([Sample(p, label) for p in files])
    code, out, err = run(capsys, "train", folder, *FAST, "--epochs", "1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["classes"] == ["alpha", "gamma"]
    assert summary["train_size"] + summary["val_size"] == 20
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == folder / "runs"
    with Project.open(folder) as project:
        runs = project.runs()
    assert [r["id"] for r in runs] == [run_dir.name]
    assert runs[0]["backbone"] == "resnet18"


# ------------------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def bad(env: Env) -> dict[str, Path]:
    """Inputs that must each end in exit status 2 with one line on stderr."""
    import torch

    folder = env.base / "bad"
    one_class = folder / "one-class" / "only"
    one_class.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(3):
        _image((10, 10, 10), rng).save(one_class / f"x{i}.png")
    garbage = folder / "garbage.pth"
    garbage.write_bytes(rng.bytes(4096))
    fake_safetensors = folder / "fake.safetensors"
    fake_safetensors.write_text("not safetensors at all")
    wrong_arch = folder / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong_arch)
    no_path_csv = folder / "nopath.csv"
    no_path_csv.write_text("file,label\nx.png,a\n")
    return {
        "one_class": one_class.parent,
        "garbage": garbage,
        "fake_safetensors": fake_safetensors,
        "wrong_arch": wrong_arch,
        "no_path_csv": no_path_csv,
        "missing": folder / "missing.pth",
    }


# (id, argv builder, text the error line must contain)
BAD_INPUT: list[tuple[str, Callable[[Env, dict[str, Path], Path], list[object]], str | None]] = [
    ("scan-missing-path", lambda e, b, r: ["scan", e.base / "nope"], "does not exist"),
    ("scan-csv-without-path-column", lambda e, b, r: ["scan", b["no_path_csv"]], "path"),
    ("train-missing-path", lambda e, b, r: ["train", e.base / "nope", *FAST], "does not exist"),
    ("train-no-data", lambda e, b, r: ["train", "--weights", "none"], None),
    ("unknown-backbone", lambda e, b, r: ["train", e.data, *FAST, "--backbone", "vgg16"], "unknown backbone"),
    ("unknown-strategy", lambda e, b, r: ["train", e.data, *FAST, "--strategy", "nope"], "strategy"),
    ("one-class", lambda e, b, r: ["train", b["one_class"], *FAST], "2 classes"),
    (
        "weights-missing-file",
        lambda e, b, r: ["train", e.data, *FAST, "--weights", b["missing"]],
        "not found",
    ),
    ("weights-garbage", lambda e, b, r: ["train", e.data, *FAST, "--weights", b["garbage"]], None),
    (
        "weights-fake-safetensors",
        lambda e, b, r: ["train", e.data, *FAST, "--weights", b["fake_safetensors"]],
        None,
    ),
    (
        "weights-wrong-architecture",
        lambda e, b, r: ["train", e.data, *FAST, "--weights", b["wrong_arch"]],
        "fit",
    ),
    ("zero-epochs", lambda e, b, r: ["train", e.data, *FAST, "--epochs", "0"], "epochs"),
    ("fold-out-of-range", lambda e, b, r: ["train", e.data, *FAST, "--folds", "3", "--fold", "4"], "fold"),
    ("one-fold", lambda e, b, r: ["train", e.data, *FAST, "--folds", "1"], "folds"),
    ("fold-without-folds", lambda e, b, r: ["train", e.data, *FAST, "--fold", "2"], "--folds"),
    ("folds-without-fold", lambda e, b, r: ["train", e.data, *FAST, "--folds", "3"], "--fold"),
    (
        "folds-and-val-fraction",
        lambda e, b, r: ["train", e.data, *FAST, "--folds", "3", "--fold", "1", "--val-fraction", "0.3"],
        "alternatives",
    ),
    (
        "group-by-matches-nothing",
        lambda e, b, r: ["train", e.data, *FAST, "--group-by", "nomatch_(\\d+)"],
        "none",
    ),
    ("out-holds-a-run", lambda e, b, r: ["train", e.data, *FAST, "--out", r], "already holds a run"),
    ("zero-batch-size", lambda e, b, r: ["train", e.data, *FAST, "--batch-size", "0"], None),
    ("bad-val-fraction", lambda e, b, r: ["train", e.data, *FAST, "--val-fraction", "1.5"], None),
    ("bad-lr", lambda e, b, r: ["train", e.data, *FAST, "--lr", "-1"], None),
    ("bad-group-regex", lambda e, b, r: ["train", e.data, *FAST, "--group-by", "("], "regex"),
    ("tiny-input-size", lambda e, b, r: ["train", e.data, *FAST, "--input-size", "4"], None),
    ("epochs-not-a-number", lambda e, b, r: ["train", e.data, *FAST, "--epochs", "many"], None),
    ("predict-non-run", lambda e, b, r: ["predict", e.data, e.special["unlabeled"]], "not a finished run"),
    ("predict-missing-input", lambda e, b, r: ["predict", r, e.base / "nope.png"], "does not exist"),
    (
        "predict-min-confidence-2",
        lambda e, b, r: ["predict", r, e.data, "--min-confidence", "2"],
        "confidence",
    ),
    ("predict-top-k-0", lambda e, b, r: ["predict", r, e.data, "--top-k", "0"], "top-k"),
    ("evaluate-non-run", lambda e, b, r: ["evaluate", e.data, e.data], "not a finished run"),
    ("evaluate-missing-data", lambda e, b, r: ["evaluate", r, e.base / "nope"], "does not exist"),
    ("evaluate-other-classes", lambda e, b, r: ["evaluate", r, b["one_class"]], None),
    ("weights-import-garbage", lambda e, b, r: ["weights", "import", "resnet18", b["garbage"]], None),
    ("weights-import-missing", lambda e, b, r: ["weights", "import", "resnet18", b["missing"]], "not found"),
    ("weights-import-wrong", lambda e, b, r: ["weights", "import", "resnet18", b["wrong_arch"]], "fit"),
    ("weights-download-unknown", lambda e, b, r: ["weights", "download", "vgg16"], "unknown backbone"),
    ("weights-no-subcommand", lambda e, b, r: ["weights"], None),
]


@pytest.mark.parametrize(("build", "match"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_exits_2_with_one_line(
    build: Callable[[Env, dict[str, Path], Path], list[object]],
    match: str | None,
    env: Env,
    bad: dict[str, Path],
    trained: tuple[dict[str, Any], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build(env, bad, trained[1])
    if args[0] == "train" and "--out" not in args:
        args = [*args, "--out", env.base / "bad-runs" / "run"]
    assert_usage_error(*run(capsys, *args), match=match)


def test_failed_weights_import_stores_nothing(
    env: Env, bad: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert_usage_error(*run(capsys, "weights", "import", "resnet18", bad["garbage"]))
    assert not (env.store / "weights" / "resnet18-imagenet.safetensors").exists()


def test_weights_download_offline_says_how_to_import(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(*run(capsys, "weights", "download", "resnet18"), match="labeltune weights import")
    store = env.store / "weights"
    assert not store.exists() or not [p for p in store.iterdir() if p.name.startswith("resnet18")]


def test_train_imagenet_offline_says_how_to_import(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", env.data, "--backbone", "resnet18", "--weights", "imagenet", "--input-size", "32"]
    code, out, err = run(capsys, *args, "--out", env.base / "run-imagenet", "--json")
    assert_usage_error(code, out, err, match="labeltune weights import")
    assert out == ""


def test_failed_train_leaves_no_half_run(
    env: Env, bad: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = env.base / "run-half"
    assert_usage_error(*run(capsys, "train", env.data, *FAST, "--weights", bad["garbage"], "--out", run_dir))
    assert not run_dir.exists()


@pytest.fixture(scope="module")
def damaged_runs(env: Env, trained: tuple[dict[str, Any], Path]) -> dict[str, Path]:
    runs = {}
    for name, (file, content) in {
        "garbage-model": ("model.safetensors", b"this is not safetensors"),
        "empty-config": ("config.json", b"{}"),
        "config-not-json": ("config.json", b"{not json"),
    }.items():
        runs[name] = env.base / "damaged" / name
        shutil.copytree(trained[1], runs[name])
        (runs[name] / file).write_bytes(content)
    return runs


@pytest.mark.parametrize("damage", ["garbage-model", "empty-config", "config-not-json"])
def test_predict_and_evaluate_a_damaged_run(
    damage: str, env: Env, damaged_runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = damaged_runs[damage]
    assert_usage_error(*run(capsys, "predict", run_dir, env.special["unlabeled"]))
    assert_usage_error(*run(capsys, "evaluate", run_dir, env.data))


def test_export_a_damaged_run(
    env: Env, damaged_runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("labeltune.core.export")
    out_file = env.base / "export-damaged.pt"
    run_dir = damaged_runs["garbage-model"]
    assert_usage_error(*run(capsys, "export", run_dir, "--format", "torchscript", "--out", out_file))


# ------------------------------------------------------------------------------------------ console entry


def test_python_m_labeltune_train_json(env: Env, trained: tuple[dict[str, Any], Path]) -> None:
    run_dir = env.base / "run-subprocess"
    args = ["train", str(env.data), *FAST, "--epochs", "1", "--out", str(run_dir), "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "labeltune", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=env.base / "cwd",
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.lstrip().startswith("{") and result.stdout.rstrip().endswith("}")
    summary = json.loads(result.stdout)  # the whole of stdout is one JSON object
    assert set(summary) >= TRAIN_REQUIRED
    assert summary["epochs_run"] == 1
    assert Path(summary["run_dir"]) == run_dir
    assert "\r" not in result.stdout and "it/s" not in result.stdout


def test_python_m_labeltune_cli_runs_the_command_line() -> None:
    """``python -m labeltune.cli`` is the command line too (it used to import the module and do nothing)."""
    from labeltune import __version__

    result = subprocess.run(
        [sys.executable, "-m", "labeltune.cli", "--version"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout
