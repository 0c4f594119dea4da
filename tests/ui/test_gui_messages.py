"""Messages in the GUI name bad files with their reason and speak GUI, not CLI (issue 9, items 9 and 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox, QWidget

from labeltune.core.datasets import SkippedFile
from labeltune.core.training import RunResult
from labeltune.ui.train_status import summary_text
from labeltune.ui.weights_dialog import WeightsDialog


def _result(skipped: list[SkippedFile]) -> RunResult:
    return RunResult(
        run_dir=Path("run"),
        backbone="resnet18",
        strategy="features",
        classes=["a", "b"],
        train_size=8,
        val_size=0,
        metrics={"note": "No validation images."},
        best_epoch=1,
        epochs_run=1,
        seconds_total=1.0,
        seconds_features=0.5,
        skipped=skipped,
    )


def test_train_summary_names_each_skipped_file_with_its_reason() -> None:
    skipped = [
        SkippedFile("/data/a/cut.jpg", "truncated JPEG (image data ends early)"),
        SkippedFile("/data/a/empty.jpg", "empty file (0 bytes)"),
        SkippedFile("/data/b/gone.png", "missing (file not found)"),
    ]
    text = summary_text(_result(skipped))
    assert "3 files left out" in text
    assert "<li>cut.jpg: truncated JPEG (image data ends early)</li>" in text
    assert "<li>empty.jpg: empty file (0 bytes)</li>" in text
    assert "<li>gone.png: missing (file not found)</li>" in text
    assert "unreadable or missing" not in text


def test_train_summary_lists_the_first_files_and_says_where_the_rest_are() -> None:
    skipped = [SkippedFile(f"/d/x{i}.jpg", "empty file (0 bytes)") for i in range(8)]
    text = summary_text(_result(skipped))
    assert text.count("<li>") == 5 and "3 more are listed in the run's config.json" in text


def _error_boxes(parent: QWidget) -> list[QMessageBox]:
    return [box for box in parent.findChildren(QMessageBox) if box.objectName() == "errorBox"]


@pytest.mark.parametrize("kind", ["code", "text", "other_network"])
def test_weights_dialog_shows_a_plain_reason_never_pytorchs_advice(qtbot, tmp_path: Path, kind: str) -> None:
    import torch

    file = tmp_path / "resnet18-f37072fd.pth"
    if kind == "code":
        torch.save({"conv1.weight": print}, file)  # a pickle naming a function: could run code
    elif kind == "text":
        file.write_text("this is a README, not weights\n")
    else:
        torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, file)
    dialog = WeightsDialog("resnet18")
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.controller.failed, timeout=20000) as blocker:
        dialog.import_file(file)
    message, details = blocker.args
    (box,) = _error_boxes(dialog)
    shown = f"{box.text()}\n{dialog.status_label.text()}\n{details}"
    assert "weights_only" not in shown and "--" not in box.text() and "labeltune weights" not in box.text()
    expected = {
        "code": "holds Python objects besides the weights",
        "text": "this file is not a PyTorch/safetensors weights file",
        "other_network": "does not fit resnet18",
    }[kind]
    assert expected in message and expected in box.text()
    assert (
        "--" not in dialog.manual_label.text()
        and "labeltune weights import" not in dialog.manual_label.text()
    )
