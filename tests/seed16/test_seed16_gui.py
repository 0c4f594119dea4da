"""The runs list offers "Add the new classes to <run>" and "Distill into a smaller model…" (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtGui import QAction

from conftest import open_image_page, train_small_project, write_class_folder  # tests/conftest.py
from labeltune.core.datasets import scan
from labeltune.core.project import Project

TIMEOUT = 180_000


def test_new_class_is_added_to_a_run_and_a_student_distilled_from_the_runs_list(qtbot, tmp_path):
    folder, run_dir = train_small_project(tmp_path, {})
    more = write_class_folder(tmp_path / "more", classes=4, per_class=16, size=40, seed=3)
    for k in range(3):  # only the fourth class is new
        for image in (more / f"class{k}").iterdir():
            image.unlink()
        (more / f"class{k}").rmdir()
    with Project.open(folder) as project:
        project.add_class("class3")
        project.add_samples(scan(more).samples)
    page = open_image_page(qtbot, folder)
    runs_list = page.results_panel.runs_list
    run = next(r for r in runs_list.runs() if Path(r["path"]) == run_dir)
    add = runs_list.menu_for(run).findChild(QAction, "addClassesToRun")
    assert add is not None and add.text() == f"Add the new classes to {run['id']}"
    assert "class3" in add.toolTip()
    with qtbot.waitSignal(page.train_panel.controller.finished, timeout=TIMEOUT) as done:
        add.trigger()
    assert page.currentWidget() is page.train_panel
    result = done.args[0]
    assert result.classes == ["class0", "class1", "class2", "class3"]
    added = json.loads((Path(result.run_dir) / "metrics.json").read_text())["added_classes"]
    assert added["new_classes"] == ["class3"] and added["init_run"] == str(run_dir.resolve())
    assert added["new_classes_accuracy"] >= 0.5  # chance 1/4
    # the new run is listed and knows every class: nothing more to add to it
    qtbot.waitUntil(lambda: len(runs_list.runs()) == 2, timeout=10_000)
    new_run = next(r for r in runs_list.runs() if Path(r["path"]) == Path(result.run_dir))
    assert runs_list.menu_for(new_run).findChild(QAction, "addClassesToRun") is None

    distill = runs_list.menu_for(run).findChild(QAction, "distillRun")
    assert distill is not None
    distill.trigger()
    dialog = page.distill_dialog
    assert dialog is not None and dialog.teacher_list.count() == 1  # the runs that know the same classes
    assert dialog.teachers() == [run_dir]
    dialog.student_combo.setCurrentIndex(dialog.student_combo.findData("resnet18"))
    dialog.size_spin.setValue(24)
    config = dialog.config()
    assert (config.backbone, config.input_size, config.teachers) == ("resnet18", 24, [str(run_dir.resolve())])
    config.weights, config.epochs = "none", 4
    with qtbot.waitSignal(page.train_panel.controller.finished, timeout=TIMEOUT) as done:
        assert page.train_panel.start_config(config) == ""
    student = json.loads((Path(done.args[0].run_dir) / "metrics.json").read_text())
    assert student["distill"]["teachers"][0]["run_dir"] == str(run_dir.resolve())
    assert student["summary"]["classes"] == ["class0", "class1", "class2"]  # the teachers' classes only
    left_out = [
        s for s in student["summary"]["skipped"] if "the teachers do not know its class" in s["reason"]
    ]
    assert len(left_out) == 16  # class3's images, listed with the reason
