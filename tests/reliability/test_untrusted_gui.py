"""The app tells the user when a run folder holds a planted pickle, and runs none of it (ADR 0043)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from planted import plant_torch, trained_project

from labeltune.ui import predict_dialog
from labeltune.ui.predict_dialog import PredictFolderDialog

TIMEOUT = 120_000


def test_predict_a_folder_shows_that_the_model_file_is_a_pickle(
    qtbot: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, trained = trained_project(tmp_path_factory.getbasetemp())
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    marker = tmp_path / "pwned"
    plant_torch(run / "model.safetensors", marker)
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(predict_dialog, "show_error", lambda _w, title, text, *_: shown.append((title, text)))
    dialog = PredictFolderDialog(run)
    qtbot.addWidget(dialog)
    dialog.set_folder(project.parent / "data" / "class0")
    dialog.csv_edit.setText(str(tmp_path / "out" / "predictions.csv"))
    with qtbot.waitSignal(dialog.controller.failed, timeout=TIMEOUT):
        dialog.run_button.click()
    title, text = shown[-1]
    assert title == "Cannot predict the folder"
    assert "model.safetensors" in text and "Python pickle" in text and "could run code" in text
    assert "Traceback" not in text and "weights_only" not in text
    assert not marker.exists() and not (tmp_path / "out").exists()
    dialog.close()
