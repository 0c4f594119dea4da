"""Results ▸ Predict a folder… and Export…: the model used from the app, off the GUI thread."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from conftest import train_small_project, write_class_folder  # tests/conftest.py
from labeltune.core.settings import Settings
from labeltune.ui import model_use, predict_dialog
from labeltune.ui.predict_dialog import PredictFolderDialog
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.session import ProjectSession

TIMEOUT = 120_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project folder with one trained run, a folder to predict: class images, an odd one, a text file)."""
    root = tmp_path_factory.mktemp("use")
    folder, _run_dir = train_small_project(root, {})
    new = write_class_folder(root / "new", classes=3, per_class=3, size=40)
    stripes = np.zeros((40, 40, 3), dtype=np.uint8)
    stripes[::4] = 255  # nothing like the noisy colour fields the model was trained on
    Image.fromarray(stripes).save(new / "odd.png")
    (new / "broken.png").write_bytes(b"not an image")
    return folder, new


def _dialog(qtbot: Any, run_dir: Path, folder: Path, out: Path, threshold: float) -> PredictFolderDialog:
    dialog = PredictFolderDialog(run_dir)
    qtbot.addWidget(dialog)
    dialog.set_folder(folder)
    dialog.csv_edit.setText(str(out / "predictions.csv"))
    dialog.sort_check.setChecked(True)
    dialog.sort_edit.setText(str(out / "sorted"))
    dialog.threshold.setValue(threshold)
    return dialog


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_predict_a_folder_writes_the_csv_and_sorts_copies(
    qtbot: Any, trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, new = trained
    session = ProjectSession(Settings())
    session.open(project)
    results = ResultsPanel(session)
    qtbot.addWidget(results)
    bar = results.details_view.use_bar
    assert bar.predict_button.isEnabled() and bar.export_button.isEnabled()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(new))
    dialog = bar.open_predict_dialog()
    assert dialog is not None and dialog.run_dir == project / "runs" / "run-1"
    dialog.folder_button.click()  # the patched folder dialog answers
    assert dialog.folder_edit.text() == str(new)
    assert dialog.csv_edit.text() == str(new.parent / "new-predictions.csv")  # beside, not inside
    dialog.csv_edit.setText(str(tmp_path / "out" / "predictions.csv"))
    dialog.sort_check.setChecked(True)
    dialog.sort_edit.setText(str(tmp_path / "sorted"))
    dialog.threshold.setValue(1.0)  # no calibrated confidence reaches 1: every familiar image is uncertain
    with qtbot.waitSignal(dialog.controller.finished, timeout=TIMEOUT):
        dialog.run_button.click()
    rows = _rows(tmp_path / "out" / "predictions.csv")
    assert sorted(Path(r["path"]).name for r in rows) == sorted(
        p.name for p in new.rglob("*.png") if p.name != "broken.png"
    )
    unfamiliar = {Path(r["path"]).name for r in rows if r["unfamiliar"] == "true"}
    assert "odd.png" in unfamiliar
    sorted_dir = tmp_path / "sorted"
    assert "odd.png" in {p.name for p in (sorted_dir / "unfamiliar").iterdir()}
    assert len(list((sorted_dir / "unfamiliar").iterdir())) == len(unfamiliar)
    assert len(list((sorted_dir / "uncertain").iterdir())) == len(rows) - len(unfamiliar)
    result = dialog.result
    assert result.counts == {"uncertain": len(rows) - len(unfamiliar), "unfamiliar": len(unfamiliar)}
    assert [Path(path).name for path, _why in result.skipped] == ["broken.png"]
    summary = dialog.summary_label.text()
    assert f"Predicted {len(rows)} images" in summary and "broken.png" in summary
    opened: list[str] = []
    monkeypatch.setattr(
        predict_dialog.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile())
    )
    assert dialog.open_button.isVisibleTo(dialog)
    dialog.open_button.click()
    assert opened == [str(sorted_dir)]

    # Sure answers go to their class folders: every copy sits in the folder its CSV row says.
    dialog.threshold.setValue(0.0)
    dialog.sort_edit.setText(str(tmp_path / "by-class"))
    with qtbot.waitSignal(dialog.controller.finished, timeout=TIMEOUT):
        dialog.run_button.click()
    for row in _rows(tmp_path / "out" / "predictions.csv"):
        folder = "unfamiliar" if row["unfamiliar"] == "true" else row["predicted"]
        assert (tmp_path / "by-class" / folder / Path(row["path"]).name).is_file()
    assert any(name.startswith("class") for name in dialog.result.counts)
    dialog.close()
    results.shutdown()
    session.close()


def test_stop_leaves_no_half_written_csv_and_the_model_runs_off_the_gui_thread(
    qtbot: Any, trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.core import inference
    from labeltune.core.progress import Progress

    project, new = trained
    real = inference.predict_files
    threads: list[threading.Thread] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        answer = real(*args, **kwargs)  # every file predicted; the Stop comes before the CSV is written
        kwargs["progress"](Progress("predict", 1, 2))
        assert kwargs["stop_event"].wait(60)
        return answer

    monkeypatch.setattr(inference, "predict_files", slow)
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("old,file\n", encoding="utf-8")
    dialog = _dialog(qtbot, project / "runs" / "run-1", new, out, 0.5)
    dialog.run_button.click()
    qtbot.waitUntil(lambda: dialog.status_label.text().startswith("Predicting…"), timeout=TIMEOUT)
    assert dialog.run_button.text() == "&Stop" and not dialog.folder_edit.isEnabled()
    with qtbot.waitSignal(dialog.controller.stopped, timeout=TIMEOUT):
        dialog.run_button.click()
    assert threads and threading.main_thread() not in threads
    assert (out / "predictions.csv").read_text(encoding="utf-8") == "old,file\n"
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv"]  # no temporary file left
    assert not (out / "sorted").exists() and dialog.result is None
    assert dialog.status_label.text().startswith("Stopped: no CSV was written")
    assert dialog.run_button.text() == predict_dialog.PREDICT_TEXT
    dialog.close()


def test_errors_reach_the_user(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        predict_dialog, "show_error", lambda _w, title, message, *_: shown.append((title, message))
    )
    broken = tmp_path / "run"
    broken.mkdir()
    (broken / "config.json").write_text("{}", encoding="utf-8")
    (broken / "model.safetensors").write_bytes(b"damaged")
    dialog = PredictFolderDialog(broken)
    qtbot.addWidget(dialog)
    dialog.folder_edit.setText(str(tmp_path / "missing"))
    dialog.run_button.click()
    assert shown and "Choose a folder" in shown[-1][1] and not dialog.controller.is_running()
    images = write_class_folder(tmp_path / "images", classes=2, per_class=1, size=16)
    dialog.set_folder(images)
    dialog.csv_check.setChecked(False)
    with qtbot.waitSignal(dialog.controller.failed, timeout=TIMEOUT):
        dialog.run_button.click()
    assert shown[-1][0] == "Cannot predict the folder" and shown[-1][1]
    assert dialog.status_label.text() == "The prediction failed."
    dialog.close()


def test_export_writes_the_model_and_its_card(
    qtbot: Any, trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _new = trained
    target = tmp_path / "exports" / "leaves"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(target), "TorchScript (*.pt)"))
    session = ProjectSession(Settings())
    session.open(project)
    results = ResultsPanel(session)
    qtbot.addWidget(results)
    bar = results.details_view.use_bar
    with qtbot.waitSignal(bar.controller.finished, timeout=TIMEOUT):
        bar.export_button.click()
    model = tmp_path / "exports" / "leaves.pt"
    assert model.is_file() and bar.export_result.format == "torchscript"
    card = json.loads((tmp_path / "exports" / "leaves.pt.card.json").read_text(encoding="utf-8"))
    assert (
        card["classes"]
        == json.loads((project / "runs" / "run-1" / "config.json").read_text())["model"]["classes"]
    )
    assert card["file"]["format"] == "torchscript" and card["file"]["sha256"] == bar.export_result.sha256
    assert (tmp_path / "exports" / "leaves.pt.card.md").is_file()
    assert "Exported to" in bar.export_label.text() and "leaves.pt.card.md" in bar.export_label.text()

    # A failing export reaches the user.
    shown: list[str] = []
    monkeypatch.setattr(model_use, "show_error", lambda _w, _t, message, *_: shown.append(message))
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        lambda *_a, **_k: (str(project / "runs" / "run-1" / "config.json"), "TorchScript (*.pt)"),
    )
    with qtbot.waitSignal(bar.controller.failed, timeout=TIMEOUT):
        bar.export_button.click()
    assert shown and "refusing to overwrite" in shown[0]
    assert bar.export_label.text() == "The export failed."
    results.shutdown()
    session.close()


def test_export_format_follows_the_file_type() -> None:
    assert model_use.export_format("a.onnx", "TorchScript (*.pt)") == "onnx"
    assert model_use.export_format("a.pt", "") == "torchscript"
    assert model_use.export_format("a", "TorchScript (*.pt)") == "torchscript"


def test_xrd_models_predict_a_folder_of_patterns(qtbot: Any, tmp_path: Path) -> None:
    import shutil

    from labeltune.core import demos
    from labeltune.core.xrd.xrd_project import XrdProject
    from labeltune.ui.xrd_models import XrdModelsPanel

    demo = demos.write_demo("xrd", tmp_path / "demo")
    project = XrdProject.open(demo)
    if project.model_dir is None:
        pytest.skip("this install has no bundled XRD model")
    patterns = tmp_path / "patterns"
    patterns.mkdir()
    for name in ("TiO2.xy", "MnO.xy"):  # the files state no wavelength: the project's is used
        shutil.copy(demo / "patterns" / name, patterns / name)
    panel = XrdModelsPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    dialog = panel.open_predict_dialog()
    assert dialog is not None and dialog.run_dir == project.model_dir
    assert dialog.wavelength.value() == pytest.approx(project.wavelength)
    dialog.set_folder(patterns)
    dialog.sort_check.setChecked(True)
    with qtbot.waitSignal(dialog.controller.finished, timeout=TIMEOUT):
        dialog.run_button.click()
    rows = {Path(r["path"]).name: r for r in _rows(tmp_path / "patterns-predictions.csv")}
    assert sorted(rows) == ["MnO.xy", "TiO2.xy"] and not dialog.result.skipped
    for name, row in rows.items():
        assert row["predicted"].split(";")[0].split("_")[0] == name.removesuffix(".xy")
        assert (tmp_path / "patterns-sorted" / row["predicted"] / name).is_file()
    assert "Predicted 2 patterns" in dialog.summary_label.text()
    dialog.close()


def test_a_typed_folder_gets_the_csv_proposed_beside_it(
    qtbot: Any, trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried as a new user: a folder typed (not chosen) left "Write a CSV" ticked and empty: refused."""
    project, _new = trained
    shown: list[str] = []
    monkeypatch.setattr(predict_dialog, "show_error", lambda _w, _title, message, *_: shown.append(message))
    folder = write_class_folder(tmp_path / "typed", classes=2, per_class=2, size=40)
    dialog = PredictFolderDialog(project / "runs" / "run-1")
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.folder_edit, str(folder))
    dialog.folder_edit.editingFinished.emit()  # as leaving the field does
    proposed = tmp_path / "typed-predictions.csv"
    assert dialog.csv_edit.text() == str(proposed)
    assert dialog.sort_edit.text() == str(tmp_path / "typed-sorted")
    dialog.csv_edit.clear()  # emptied by hand: Predict proposes it again rather than refuse
    with qtbot.waitSignal(dialog.controller.finished, timeout=TIMEOUT):
        dialog.run_button.click()
    assert not shown and proposed.is_file()
    dialog.close()
