"""The XRD page: ticks commit labels.csv at once, undo/redo, keys, import reasons, wavelength, predictions,
fine-tuning, failures shown; and the main window's XRD demo."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from labeltune.core import demos
from labeltune.core.settings import Settings, projects_dir
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.xrd_project import LABELS_FILE, PROJECT_FILE, XrdProject
from labeltune.ui import xrd_identify as xrd_identify_module
from labeltune.ui.demo_opener import DemoOpener
from labeltune.ui.xrd_page import XrdPage
from labeltune.workers.xrd import XrdPredictWorker

TIMEOUT = 180_000
TINY = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project without a model (it points at the shipped model when the app has one)."""
    folder = demos.write_demo("xrd", tmp_path_factory.mktemp("xrd") / "demo")
    XrdProject.open(folder).set_model(None)
    return folder


@pytest.fixture(scope="module")
def tiny_run(demo_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labeltune.core.xrd.training import XrdTrainConfig, train_xrd

    run = tmp_path_factory.mktemp("runs") / "tiny"
    train_xrd(demo_source / "library", XrdTrainConfig(epochs=1, **TINY), run)  # type: ignore[arg-type]
    return run


@pytest.fixture
def demo(demo_source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo_source, tmp_path / "demo"))


@pytest.fixture
def page(qtbot, demo: Path) -> Iterator[XrdPage]:
    widget = XrdPage()
    qtbot.addWidget(widget)
    widget.resize(1300, 850)
    widget.show()
    widget.open(demo)
    yield widget
    widget.shutdown()


def rows(folder: Path) -> dict[str, tuple[str, str]]:
    with (folder / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        return {row["path"]: (row["phases"], row["fractions"]) for row in csv.DictReader(handle)}


def error_boxes(parent: QWidget) -> list[QMessageBox]:
    return [box for box in parent.findChildren(QMessageBox) if box.objectName() == "errorBox"]


def select(page: XrdPage, name: str) -> None:
    page.patterns_panel.select(page.project.patterns_dir / name)  # type: ignore[union-attr]
    assert page.current_path() is not None and page.current_path().name == name  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------ labeling


def test_ticking_a_phase_writes_labels_csv_at_once(page: XrdPage, demo: Path) -> None:
    select(page, "MnO.xy")
    panel = page.phase_panel
    assert panel.ticked() == ["MnO"]  # the demo's formula label, kept as given
    panel.set_ticked("MnO_225", True)
    assert rows(demo)["patterns/MnO.xy"] == ("MnO;MnO_225", "")
    panel.set_ticked("MnO", False)
    assert rows(demo)["patterns/MnO.xy"] == ("MnO_225", "")
    assert "MnO_225" in page.pattern_list.currentItem().text()
    assert [s.name for s in page.plot.stick_sets()] == ["MnO_225"]  # its sticks are drawn at once
    panel.set_ticked("MnO_225", False)
    assert "patterns/MnO.xy" not in rows(demo)
    assert page.pattern_list.currentItem().text().startswith("· MnO.xy")
    assert page.patterns_panel.count_label.text() == "7 of 8 labeled"


def test_formula_labels_show_every_polymorph_and_filter_keeps_ticked(page: XrdPage) -> None:
    select(page, "TiO2.xy")
    assert {s.name for s in page.plot.stick_sets()} == {"TiO2_136", "TiO2_141"}
    page.phase_panel.filter_edit.setText("mno2")
    visible = page.phase_panel.visible_names()
    assert visible[0] == "TiO2"  # ticked: stays in view
    assert {"MnO2_10", "MnO2_136", "LiMnO2_141"} <= set(visible)  # name or formula contains "MnO2"
    assert not {"TiO2_136", "Mn2O3_206", "MnO_225"} & set(visible)


def test_weight_fractions_are_saved_with_the_label(page: XrdPage, demo: Path) -> None:
    select(page, "Mn2O3+LiF.xy")
    panel = page.phase_panel
    panel.fractions_box.setChecked(True)
    assert rows(demo)["patterns/Mn2O3+LiF.xy"] == ("Mn2O3;LiF", "0.5;0.5")
    spin = panel.fraction_spin("LiF")
    assert spin is not None
    spin.setValue(30.0)  # 50 + 30: the phases stay saved, the fractions wait until they add up
    assert rows(demo)["patterns/Mn2O3+LiF.xy"] == ("Mn2O3;LiF", "")
    assert panel.sum_label.text().startswith("sum 80.0 %") and "100 %" in panel.sum_label.toolTip()
    panel.fractions_box.setChecked(False)
    assert rows(demo)["patterns/Mn2O3+LiF.xy"] == ("Mn2O3;LiF", "")


def test_undo_and_redo_go_back_to_the_pattern(page: XrdPage, demo: Path) -> None:
    select(page, "MnO.xy")
    page.phase_panel.set_ticked("MnO_225", True)
    select(page, "TiO2.xy")
    page.undo()
    assert page.current_path().name == "MnO.xy"  # type: ignore[union-attr]
    assert page.phase_panel.ticked() == ["MnO"] and rows(demo)["patterns/MnO.xy"] == ("MnO", "")
    page.redo()
    assert page.phase_panel.ticked() == ["MnO", "MnO_225"]
    assert rows(demo)["patterns/MnO.xy"] == ("MnO;MnO_225", "")


def test_up_and_down_move_between_patterns(page: XrdPage, qtbot) -> None:
    names = [p.name for p in page.patterns_panel.paths()]
    assert page.current_path().name == names[0]  # type: ignore[union-attr]
    qtbot.keyClick(page.pattern_list, Qt.Key.Key_Down)
    assert page.current_path().name == names[1]  # type: ignore[union-attr]
    qtbot.keyClick(page.plot.plot, Qt.Key.Key_Down)  # over the plot too
    assert page.current_path().name == names[2]  # type: ignore[union-attr]
    qtbot.keyClick(page.plot.plot, Qt.Key.Key_Up)
    assert page.current_path().name == names[1]  # type: ignore[union-attr]
    assert page.phase_panel.ticked() == ["LiMnO2"]


# ------------------------------------------------------------------------------------ settings, import


def test_an_unreadable_pattern_after_a_labeled_one_shows_no_sticks_and_previews_none(
    page: XrdPage, demo: Path
) -> None:
    select(page, "TiO2.xy")
    assert page.plot.stick_sets()  # the label's phases
    (demo / "patterns" / "MnO.xy").write_text("not a pattern\n", encoding="utf-8")
    select(page, "MnO.xy")
    assert "color:" in page.pattern_info.text()  # the reason, in the warning colour
    assert page.plot.stick_sets() == [] and page.prediction() is None
    page.phase_panel.phase_previewed.emit("MnO2_10")  # a library phase made current: nothing to draw on
    assert page.plot.stick_sets() == []
    select(page, "TiO2.xy")
    assert "MnO2_10" in [s.name for s in page.plot.stick_sets()]  # the preview shows on a readable one


def test_wavelength_is_shown_and_a_change_is_saved_confirmed(page: XrdPage, demo: Path) -> None:
    bar = page.project_bar
    assert (
        bar.wavelength_spin.value() == pytest.approx(1.5406) and bar.wavelength_state.text() == "✓ confirmed"
    )
    assert not bar.confirm_button.isVisibleTo(page)
    bar.wavelength_spin.setValue(1.78897)
    meta = json.loads((demo / PROJECT_FILE).read_text())
    assert meta["wavelength"] == pytest.approx(1.78897) and meta["wavelength_confirmed"] is True
    assert "λ 1.789 Å (the project setting" in page.pattern_info.text()


def test_an_assumed_wavelength_asks_for_confirmation(qtbot, demo: Path) -> None:
    meta = json.loads((demo / PROJECT_FILE).read_text())
    meta["wavelength_confirmed"] = False
    (demo / PROJECT_FILE).write_text(json.dumps(meta))
    page = XrdPage()
    qtbot.addWidget(page)
    page.show()
    page.open(demo)
    assert "please confirm" in page.project_bar.wavelength_state.text()
    qtbot.mouseClick(page.project_bar.confirm_button, Qt.MouseButton.LeftButton)
    assert XrdProject.open(demo).wavelength_confirmed and not page.project_bar.confirm_button.isVisible()


def test_import_lists_skipped_files_with_reasons(page: XrdPage, qtbot, tmp_path: Path, demo: Path) -> None:
    good = tmp_path / "new.xy"
    good.write_text("".join(f"{10 + i * 0.1:.2f} {100 + (i % 13) * 7}\n" for i in range(400)))
    bad = tmp_path / "broken.xy"
    bad.write_text("only words here\n")
    with qtbot.waitSignal(page.import_controller.finished, timeout=TIMEOUT):
        page.import_patterns([good, bad])
    assert page.current_path() == demo / "patterns" / "new.xy"
    assert page.patterns_panel.count_label.text() == "8 of 9 labeled"
    (box,) = error_boxes(page)
    assert "1 pattern(s) imported; 1 file(s) skipped" in box.text()
    assert box.detailedText().startswith("broken.xy: ")


# ------------------------------------------------------------------------------------ model


def test_without_a_model_the_page_says_what_to_do(page: XrdPage) -> None:
    assert "No model yet" in page.prediction_panel.model_label.text()
    assert "fine-tune or choose one" in page.prediction_panel.model_label.text()
    assert not page.prediction_panel.identify_button.isEnabled()
    assert page.project_bar.model_label.text() == "Model: none yet"
    assert "No model yet" in page.train_panel.data_label.text() and page.train_panel.start_button.isEnabled()


def test_identify_shows_predictions_sticks_activation_and_use_as_label(
    page: XrdPage, qtbot, tiny_run: Path, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class QuickWorker(XrdPredictWorker):  # the fit makes a barely trained model slow; the network is enough
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["fit"] = False
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(xrd_identify_module, "XrdPredictWorker", QuickWorker)
    assert page.set_model(tiny_run)
    assert XrdProject.open(demo).model_dir == tiny_run
    select(page, "MnO2.xy")
    assert page.prediction_panel.identify_button.isEnabled()
    with qtbot.waitSignal(page.predict_controller.finished, timeout=TIMEOUT):
        qtbot.mouseClick(page.prediction_panel.identify_all_button, Qt.MouseButton.LeftButton)
    prediction = page.prediction()
    assert prediction is not None and prediction.phases
    table = page.prediction_panel.table
    assert table.rowCount() == len(prediction.phases) + len(prediction.candidates)
    assert table.item(0, 0).text() == prediction.phases[0].name
    assert table.item(0, 2).text() == f"{prediction.phases[0].probability * 100:.0f} %"
    names = [s.name for s in page.plot.stick_sets()]
    assert names[0] == prediction.phases[0].name  # the model's phases come first
    assert page.plot.legend_texts()[0].startswith(prediction.phases[0].name)
    activation = prediction.activation[prediction.phases[0].name]  # the selected (first) phase's
    assert page.plot.activation_image.isVisible() == bool(activation.max() > 0)
    assert prediction.phases[0].name in page.plot.activation_label.text()
    assert "Model says" in page.pattern_list.currentItem().toolTip()
    select(page, "TiO2.xy")  # identified too (all patterns)
    assert page.prediction() is not None
    select(page, "MnO2.xy")
    qtbot.mouseClick(page.prediction_panel.use_button, Qt.MouseButton.LeftButton)
    phases, fractions = rows(demo)["patterns/MnO2.xy"]
    assert phases == ";".join(c.name for c in prediction.phases)
    if len(prediction.phases) > 1:  # the fitted weight fractions come along
        assert sum(float(v) for v in fractions.split(";")) == pytest.approx(1.0, abs=0.01)
    assert page.phase_panel.ticked() == [c.name for c in prediction.phases]
    page.set_project(XrdProject.open(demo))  # reopened: the identifications are still there
    select(page, "MnO2.xy")
    reopened = page.prediction()
    assert reopened is not None and [c.name for c in reopened.phases] == [c.name for c in prediction.phases]


def test_a_failing_identification_is_shown(page: XrdPage, qtbot, tmp_path: Path) -> None:
    broken = tmp_path / "broken-run"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"domain": "xrd"}))
    (broken / "model.safetensors").write_bytes(b"not weights")
    assert page.set_model(broken)
    with qtbot.waitSignal(page.predict_controller.failed, timeout=TIMEOUT):
        page.identify()
    (box,) = error_boxes(page)
    assert box.windowTitle() == "Identifying phases failed" and box.text()
    assert page.prediction_panel.identify_button.isEnabled()  # usable again


def test_choosing_a_folder_that_is_no_model_says_why(page: XrdPage, tmp_path: Path) -> None:
    assert not page.set_model(tmp_path)
    (box,) = error_boxes(page)
    assert "no config.json" in box.text() and page.project.model_dir is None  # type: ignore[union-attr]


def test_a_fine_tune_that_does_better_becomes_the_projects_model(
    page: XrdPage, qtbot, tiny_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.core.xrd import model_check

    def better(self: model_check.Comparison) -> None:  # two barely trained models: fix the verdict
        self.winner = "new"

    monkeypatch.setattr(model_check.Comparison, "decide", better)
    assert page.set_model(tiny_run)
    panel = page.train_panel
    assert "Fine-tunes" in panel.data_label.text() and "8 labeled" in panel.data_label.text()
    assert "switches only to a better model" in panel.data_label.text()
    panel.config_overrides = {**TINY, "check_folds": 2}
    panel.epochs_spin.setValue(2)
    with qtbot.waitSignal(panel.controller.finished, timeout=TIMEOUT):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    project = page.project
    assert project is not None and project.model_dir is not None and project.model_dir != tiny_run
    assert (
        project.model_dir.parent == project.runs_dir and (project.model_dir / "model.safetensors").is_file()
    )
    assert XrdProject.open(project.folder).model_dir == project.model_dir
    assert [r.epoch for r in panel.curves.records()] == [1, 2]
    summary = panel.summary_label.text()
    assert "The project now uses this model" in summary and "each held out of the fine-tuning once" in summary
    assert "of 8, the current one (tiny) in" in summary and panel.use_anyway_button.isHidden()
    assert project.model_dir.name in page.project_bar.model_label.text()
    models = page.models_panel
    row = models.row_of(project.model_dir)
    assert row >= 0 and models.entries[row].active and models.use_button(row).text() == "In use"


@pytest.mark.skipif(shipped_model_dir() is None, reason="the bundled XRD model is not here")
def test_a_worse_fine_tune_keeps_the_current_model_and_the_models_tab_switches(
    page: XrdPage, qtbot, tiny_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = shipped_model_dir()
    assert bundled is not None and page.set_model(bundled)
    panel = page.train_panel
    panel.config_overrides = {**TINY, "check_folds": 2, "lr": 0.05}  # a learning rate that ruins it
    panel.epochs_spin.setValue(1)
    with qtbot.waitSignal(panel.controller.finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    tuned = Path(blocker.args[0].run_dir)
    project = page.project
    assert project is not None and project.model_dir == bundled  # kept
    assert XrdProject.open(project.folder).model_dir == bundled
    summary = panel.summary_label.text()
    assert "the current one (xrd-li-mn-ti-o-f) in 7 of 8" in summary
    assert "Kept the current model" in summary and "held-out labeled patterns" in summary
    assert not panel.use_anyway_button.isHidden()

    # the Models tab: both models with their recorded scores, the bundled one in use
    qtbot.mouseClick(page.project_bar.models_button, Qt.MouseButton.LeftButton)
    models = page.models_panel
    assert page.tabs.currentWidget() is models
    new_row, old_row = models.row_of(tuned), models.row_of(bundled)
    assert old_row == 0 and models.entries[old_row].active and not models.entries[new_row].active
    table = models.table
    assert table.item(old_row, 1).text() == "7 of 8 fully right (88 %)"
    heldout = json.loads((tuned / "metrics.json").read_text())["measured_heldout"]
    assert heldout["exact"] < 7 and table.item(new_row, 1).text().startswith(f"{heldout['exact']} of 8 fully")
    assert (
        "did no better than it" in table.item(new_row, 0).text() and "in use" in table.item(old_row, 0).text()
    )
    recorded = json.loads((bundled / "metrics.json").read_text())["simulated_validation"]
    shown = f"{100 * recorded['exact_accuracy']:.1f} % of {recorded['patterns']}"  # 61.9 % of 1024
    assert table.item(old_row, 2).text() == shown and table.item(new_row, 3).text()

    # Use it anyway, then one click back to the bundled model
    qtbot.mouseClick(panel.use_anyway_button, Qt.MouseButton.LeftButton)
    assert project.model_dir == tuned and XrdProject.open(project.folder).model_dir == tuned
    assert "The project now uses this model" in panel.summary_label.text()
    assert models.entries[models.row_of(tuned)].active
    qtbot.mouseClick(models.use_button(models.row_of(bundled)), Qt.MouseButton.LeftButton)
    assert project.model_dir == bundled and models.entries[models.row_of(bundled)].active

    # a model from another folder is added, and stays listed after switching away from it
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(tiny_run))
    qtbot.mouseClick(models.add_button, Qt.MouseButton.LeftButton)
    assert project.model_dir == tiny_run and models.entries[models.row_of(tiny_run)].active
    qtbot.mouseClick(models.use_button(models.row_of(bundled)), Qt.MouseButton.LeftButton)
    assert project.model_dir == bundled and models.row_of(tiny_run) >= 0


def test_a_failing_training_is_shown(page: XrdPage, qtbot, tmp_path: Path) -> None:
    broken = tmp_path / "broken-run"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"domain": "xrd"}))
    (broken / "model.safetensors").write_bytes(b"not weights")
    assert page.set_model(broken)
    with qtbot.waitSignal(page.train_panel.controller.failed, timeout=TIMEOUT):
        page.train_panel.start()
    (box,) = error_boxes(page.train_panel)
    assert box.windowTitle() == "Training failed"
    assert page.project.model_dir == broken  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------ main window


def test_main_window_opens_the_xrd_demo_and_closes_it(qtbot) -> None:
    from labeltune.ui.main_window import MainWindow

    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.show()
    button = window.start_page.demo_buttons["xrd"]
    assert button.text() == "XRD phases" and "8 patterns, 7 phases" in button.description()
    opener = DemoOpener.of(window, window.open_project)
    with qtbot.waitSignal(opener.opened, timeout=60000):  # the demo is written in a worker
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.stack.currentWidget() is window.xrd_page
    assert window.windowTitle() == "XRD phases — LabelTune"
    assert len(window.xrd_page.patterns_panel.paths()) == 8
    assert window.import_action.isEnabled() and window.import_action.text() == "&Import patterns…"
    window.xrd_page.phase_panel.set_ticked("MnO_225", True)
    window.undo_action.trigger()
    assert "MnO_225" not in window.xrd_page.phase_panel.ticked()
    window.close_action.trigger()
    assert window.stack.currentWidget() is window.start_page and window.xrd_page.project is None
    assert window.start_page.recent_list.item(0).text() == "XRD phases"
    with qtbot.waitSignal(opener.opened, timeout=60000):
        window.open_demo("corn")  # an image project replaces the XRD page
    assert window.stack.currentWidget() is window.tabs
    window.open_project(str(demos.demo_project_dir("xrd")))
    assert window.stack.currentWidget() is window.xrd_page and window.session.project is None
    window.close()


def test_new_xrd_project_dialog_creates_a_project_or_says_why(qtbot, demo: Path, tmp_path: Path) -> None:
    from labeltune.ui.about import about_html
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    assert "njszym/XRD-AutoAnalyzer" in about_html()  # the demo's credits reach the About box
    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    assert dialog.project_folder() == projects_dir() / "XRD project"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("someone else's file")
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("mine")
    assert "already exists and holds other files" in dialog.where_label.text()
    dialog.accept()
    assert dialog.project is None and "not empty" in dialog.error_label.text()
    (tmp_path / "mine" / "notes.txt").unlink()
    dialog.name_edit.setText("mine ")  # any edit re-checks the place
    assert dialog.where_label.text() == f"The project is created in {tmp_path / 'mine'}."
    (tmp_path / "empty").mkdir()
    dialog.library_edit.setText(str(tmp_path / "empty"))  # not a library, no CIF files either
    dialog.model_edit.clear()
    dialog.accept()
    assert dialog.project is None and "not a peak library" in dialog.error_label.text()
    dialog.library_edit.setText(str(demo / "library"))
    dialog.model_edit.setText(str(tmp_path))
    dialog.accept()
    assert dialog.project is None and "no config.json" in dialog.error_label.text()
    dialog.model_edit.clear()
    dialog.wavelength_spin.setValue(0.70932)
    dialog.accept()
    assert dialog.project is not None and dialog.result() == dialog.DialogCode.Accepted
    project = XrdProject.open(tmp_path / "mine")
    assert project.name == "mine" and project.wavelength == pytest.approx(0.70932)
    assert (
        project.wavelength_confirmed and project.library_dir == demo / "library" and project.model_dir is None
    )


def test_new_xrd_project_from_a_folder_of_cif_files(qtbot, demo: Path, tmp_path: Path) -> None:
    from labeltune.ui.xrd_new_dialog import XrdNewProjectDialog

    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for name in ("MnO_225.cif", "TiO2_141.cif"):
        shutil.copy(demo / "references" / name, cifs / name)
    dialog = XrdNewProjectDialog()
    qtbot.addWidget(dialog)
    dialog.save_in_edit.setText(str(tmp_path))
    dialog.name_edit.setText("from-cifs")
    dialog.library_edit.setText(str(cifs))
    dialog.model_edit.clear()
    with qtbot.waitSignal(dialog.accepted, timeout=30_000):  # the peak lists are computed in a worker
        dialog.accept()
    assert dialog.project is not None, dialog.error_label.text()
    project = XrdProject.open(tmp_path / "from-cifs")
    assert project.library_dir == tmp_path / "from-cifs" / "library"
    assert project.library().names == ["MnO_225", "TiO2_141"]


def test_an_unusual_wavelength_is_asked_about_and_kept_out_on_no(
    page: XrdPage, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    bar = page.project_bar
    asked: list[str] = []

    def answer(_parent: object, _title: str, text: str, *args: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", answer)
    bar.wavelength_spin.setValue(1.0)  # what typing "154" leaves in the box
    assert asked and "1.00000" in asked[0]
    assert bar.wavelength_spin.value() == pytest.approx(1.5406)
    assert json.loads((demo / "xrd_project.json").read_text())["wavelength"] == pytest.approx(1.5406)
    bar.wavelength_spin.setValue(0.70932)  # Mo Kα1: no question
    assert len(asked) == 1
    assert json.loads((demo / "xrd_project.json").read_text())["wavelength"] == pytest.approx(0.70932)


def test_weight_fractions_are_saved_only_when_they_add_up(page: XrdPage, demo: Path) -> None:
    select(page, "Mn2O3+LiF.xy")
    panel = page.phase_panel
    panel.fractions_box.setChecked(True)
    spin = panel.fraction_spin(panel.ticked()[0])
    assert spin is not None
    spin.setValue(70.0)  # 70 + 50: not saved
    assert rows(demo)["patterns/Mn2O3+LiF.xy"] == ("Mn2O3;LiF", "")
    assert "not saved" in panel.sum_label.text()
    other = panel.fraction_spin(panel.ticked()[1])
    assert other is not None
    other.setValue(30.0)
    phases, fractions = rows(demo)["patterns/Mn2O3+LiF.xy"]
    assert phases == "Mn2O3;LiF" and [float(v) for v in fractions.split(";")] == pytest.approx([0.7, 0.3])
