"""Train tab ▸ Advanced ▸ Group by: the choices, the live preview, and the grouping shown with every run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from labeltune.core import demos
from labeltune.core.datasets import Sample
from labeltune.core.errors import UnusableInputError
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.ui.group_by import CUSTOM, GroupByBox
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.run_comparison import summary_values
from labeltune.ui.run_details import facts_text
from labeltune.ui.runs_list import RunDetails
from labeltune.ui.session import ProjectSession
from labeltune.ui.train_form import TrainSettingsForm
from labeltune.ui.train_panel import TrainPanel

TIMEOUT = 120_000


def fish_project(folder: Path, imported_groups: bool = False) -> Path:
    """Two species, five tracks each, three frames per track: fish_<track>_<frame>.png (empty files)."""
    Project.create(folder).close()  # a new project's folder, then its images inside it
    samples = []
    for k, species in enumerate(("Amphiprion", "Chromis")):
        (folder / "images" / species).mkdir(parents=True)
        for track in range(5 * k, 5 * k + 5):
            for frame in range(3):
                path = folder / "images" / species / f"fish_{track:04d}_{frame:03d}.png"
                path.write_bytes(b"")
                samples.append(Sample(path, species, f"t{track}" if imported_groups else None))
    with Project.open(folder) as project:
        project.add_samples(samples, source="import")
    return folder


@pytest.fixture
def open_form(qtbot) -> Iterator[Callable[[Path], TrainSettingsForm]]:
    sessions: list[ProjectSession] = []

    def make(folder: Path) -> TrainSettingsForm:
        session = ProjectSession(Settings(backbone="resnet18", weights="none"))
        session.open(folder)
        sessions.append(session)
        form = TrainSettingsForm(session)
        qtbot.addWidget(form)
        return form

    yield make
    for session in sessions:
        session.close()


def choose(box: GroupByBox, qtbot, kind: str) -> None:
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        box.kind_combo.setCurrentIndex(box.kind_combo.findData(kind))


def test_file_name_presets_and_a_custom_pattern_preview_live(qtbot, open_form, tmp_path):
    form = open_form(fish_project(tmp_path / "p"))
    box = form.group_box
    assert box.kind() == "none"  # the import brought no groups: nothing to offer from it
    assert not box.kind_combo.model().item(box.kind_combo.findData("import")).isEnabled()

    choose(box, qtbot, "pattern")
    assert box.preset_combo.currentData() == "before-last" and box.pattern_edit.isReadOnly()
    preview = box.preview
    assert preview is not None and preview.groups == 10 and preview.alone == 0
    assert (preview.train, preview.val) == (24, 6)
    assert preview.per_class == {"Amphiprion": (12, 3), "Chromis": (12, 3)}
    text = box.preview_label.text()
    assert "10 groups" in text and "24 training / 6 validation images" in text
    assert "Per class: Amphiprion 12 / 3; Chromis 12 / 3" in text
    assert "<b>fish_0000</b>_000.png" in text  # the part that forms the group, highlighted

    box.preset_combo.setCurrentIndex(box.preset_combo.findData(CUSTOM))
    assert not box.pattern_edit.isReadOnly()
    box.pattern_edit.clear()
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        qtbot.keyClicks(box.pattern_edit, r"_(\d+)_")
    assert box.preview is not None and box.preview.groups == 10
    assert "fish_<b>0000</b>_000.png" in box.preview_label.text()
    assert form.config().group_by == r"regex:_(\d+)_"

    box.pattern_edit.setText("")
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        qtbot.keyClicks(box.pattern_edit, "_(")
    assert box.preview is None and "invalid group regex" in box.error
    assert "color: red" in box.preview_label.text()
    with pytest.raises(UnusableInputError, match="invalid group regex"):
        form.config()


def test_edits_are_debounced_not_computed_per_keystroke(qtbot, open_form, tmp_path):
    form = open_form(fish_project(tmp_path / "p"))
    box = form.group_box
    choose(box, qtbot, "pattern")
    box.preset_combo.setCurrentIndex(box.preset_combo.findData(CUSTOM))
    box.update_preview()
    before = box.preview
    qtbot.keyClicks(box.pattern_edit, "x")  # no event loop ran yet: the preview waits for the pause
    assert box._timer.isActive() and box.preview is before
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        pass
    assert "matches none" in box.error


def test_imported_groups_are_preselected_and_follow_the_validation_share(qtbot, open_form, tmp_path):
    form = open_form(fish_project(tmp_path / "p", imported_groups=True))
    box = form.group_box
    assert box.kind() == "import" and box.spec_text() == "csv:group"
    assert "(10 groups)" in box.kind_combo.currentText()
    box.update_preview()
    assert box.preview is not None and box.preview.val == 6
    form.advanced_button.setChecked(True)
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        form.val_spin.setValue(0.4)
    assert box.preview is not None and box.preview.val == 12 and box.preview.groups == 10
    assert form.config().group_by == "csv:group"

    choose(box, qtbot, "none")
    assert (
        box.preview is not None and "Not grouped: 24 training / 6 validation" not in box.preview_label.text()
    )
    assert "Not grouped: 18 training / 12 validation images" in box.preview_label.text()
    form.save_settings()
    assert form.session.require().settings["train"]["group_by"] == "none"


def test_folder_and_csv_column(qtbot, open_form, tmp_path):
    folder = fish_project(tmp_path / "p")
    form = open_form(folder)
    box = form.group_box
    choose(box, qtbot, "folder")
    assert box.preview is not None and box.preview.groups == 2 and box.preview.val == 0
    assert "No image is left for validation" in box.preview_label.text()
    assert (
        "Amphiprion/<b>" not in box.preview_label.text()
        and "<b>Amphiprion</b>/fish_" in box.preview_label.text()
    )

    choose(box, qtbot, "csv")
    with pytest.raises(UnusableInputError, match="choose the CSV file"):
        form.config()
    table = tmp_path / "plants.csv"
    rows = [
        f"images/{p.parent.name}/{p.name},dish{int(p.name[5:9]) // 2}" for p in folder.rglob("fish_*.png")
    ]
    table.write_text("path,dish\n" + "\n".join(rows) + "\n")
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        box.set_csv_file(str(table))
    assert box.column_combo.currentText() == "dish"
    # Matched by file name (the CSV's paths are not relative to it): two tracks a dish, dish0..dish4.
    assert box.preview is not None and box.preview.groups == 5, box.error
    assert form.config().group_by == f"csv:dish@{table}"
    assert "→ <b>dish" in box.preview_label.text()


def test_the_fish_demo_opens_grouped_by_track(qtbot, open_form, tmp_path):
    form = open_form(demos.write_demo("fish", tmp_path / "fish"))
    box = form.group_box
    assert box.kind() == "pattern" and box.preset_combo.currentData() == CUSTOM
    assert box.pattern_edit.text() == r"fish_(\d+)_"
    box.update_preview()
    assert box.preview is not None and box.preview.groups == 150 and box.preview.alone == 0
    assert box.preview.train + box.preview.val == 150
    assert form.config().group_by == r"regex:fish_(\d+)_"


def test_run_details_and_comparison_show_the_grouping() -> None:
    record = {
        "kind": "pattern",
        "pattern": r"fish_(\d+)_",
        "groups": 23,
        "train_images": 80,
        "val_images": 20,
    }
    grouped = RunDetails(
        {"id": "a"}, metrics={"summary": {"train_size": 80, "val_size": 20, "grouping": record}}
    )
    plain = RunDetails({"id": "b"}, metrics={"summary": {"grouping": {"kind": "none", "groups": 0}}})
    old = RunDetails({"id": "c"}, metrics={"summary": {"train_size": 3}})
    assert r"split grouped by file-name pattern fish_(\d+)_ — 23 groups" in facts_text(grouped)
    assert "split not grouped" in facts_text(plain)
    assert "split" not in facts_text(old)  # made before runs recorded their grouping
    assert summary_values(grouped)["Split"] == r"grouped by file-name pattern fish_(\d+)_ — 23 groups"
    assert summary_values(plain)["Split"] == "not grouped"
    assert summary_values(old)["Split"] is None


def test_a_grouped_training_run_records_and_shows_its_grouping(qtbot, image_folder, tmp_path):
    data = image_folder(classes=2, per_class=12)
    for path in data.rglob("img*.png"):  # three frames per track
        index = int(path.stem[3:])
        path.rename(path.with_name(f"fish_{path.parent.name}t{index // 3}_{index:03d}.png"))
    from labeltune.core.datasets import scan

    with Project.create(tmp_path / "project") as project:
        project.add_samples(scan(data).samples)
    session = ProjectSession(Settings(backbone="resnet18", weights="none", epochs=1, batch_size=8))
    session.open(tmp_path / "project")
    panel = TrainPanel(session)
    results = ResultsPanel(session)
    qtbot.addWidget(panel)
    qtbot.addWidget(results)
    try:
        panel.form.input_size_spin.setValue(32)
        box = panel.form.group_box
        choose(box, qtbot, "pattern")
        assert box.preview is not None and box.preview.groups == 8
        with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as blocker:
            qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        record = json.loads((blocker.args[0] / "metrics.json").read_text())["summary"]["grouping"]
        assert record["groups"] == 8 and record["pattern"] == box.pattern_edit.text()
        assert (record["train_images"], record["val_images"]) == (box.preview.train, box.preview.val)
        text = record["text"]
        assert text.startswith("grouped by file name: text before the last _ or -") and text.endswith(
            "— 8 groups"
        )
        assert f"split {text}" in results.details_view.facts_label.text()
        assert session.require().settings["train"]["group_by"] == f"regex:{box.pattern_edit.text()}"
    finally:
        panel.shutdown()
        results.shutdown()
        session.close()


def test_a_large_project_previews_in_a_worker_and_keeps_the_newest_edit(
    qtbot, open_form, tmp_path, monkeypatch
):
    import threading

    from labeltune.ui import group_by

    monkeypatch.setattr(group_by, "SYNC_LIMIT", 0)  # every preview counts as large here
    threads: list[str] = []
    real = group_by.preview_grouping

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(group_by, "preview_grouping", recording)
    form = open_form(fish_project(tmp_path / "p"))
    box = form.group_box
    choose(box, qtbot, "pattern")
    qtbot.waitUntil(lambda: box.preview is not None and not box._controller.is_running(), timeout=5000)
    assert threads and threading.main_thread().name not in threads  # never in the GUI thread
    box.preset_combo.setCurrentIndex(box.preset_combo.findData(CUSTOM))
    box.pattern_edit.setText(r"_(\d)")  # first digit of the track: 2 groups
    box.update_preview()
    assert box._controller.is_running() and "Working out the split" in box.preview_label.text()
    box.pattern_edit.setText(r"_(\d+)_")  # edited while the worker computes
    box.update_preview()
    qtbot.waitUntil(lambda: not box._controller.is_running() and box.preview is not None, timeout=5000)
    qtbot.waitUntil(lambda: "fish_<b>0000</b>_000.png" in box.preview_label.text(), timeout=5000)
    assert box.preview.groups == 10  # the newest pattern, not the one computing when it was typed


def test_an_ungrouped_project_whose_names_carry_tracks_is_offered_a_grouping(qtbot, open_form, tmp_path):
    form = open_form(fish_project(tmp_path / "p"))
    box = form.group_box
    assert box.kind() == "none"
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        box.update_preview()
    assert box.suggestion is not None and box.suggestion.preset.key == "before-last"
    assert box.suggestion.groups == 10 and "group by it" in box.preview_label.text()
    with qtbot.waitSignal(box.preview_updated, timeout=5000):
        box.preview_label.linkActivated.emit("preset:before-last")
    assert box.kind() == "pattern" and box.preset_combo.currentData() == "before-last"
    assert (
        box.preview is not None and box.preview.groups == 10 and "group by it" not in box.preview_label.text()
    )


def test_names_that_only_carry_the_class_are_not_offered_a_grouping() -> None:
    from labeltune.core.grouping_preview import suggest_grouping

    names = [Path(f"Corn_{c} ({i}).JPG") for c in ("Blight", "Rust", "Healthy") for i in range(20)]
    labels = [str(p).split(" ")[0] for p in names]
    assert suggest_grouping(names, labels) is None  # "Corn" or "Corn_Blight": the class, not a group
    tracks = [Path(f"fish_{t:04d}_{f:03d}.png") for t in range(12) for f in range(3)]
    found = suggest_grouping(tracks, ["a" if t < 6 else "b" for t in range(12) for _f in range(3)])
    assert found is not None and found.groups == 12 and found.grouped_images == 36


def test_a_large_project_is_read_for_the_preview_in_a_worker(qtbot, open_form, tmp_path, monkeypatch):
    import threading

    from labeltune.core.project import Project as ProjectClass
    from labeltune.ui import train_form

    monkeypatch.setattr(train_form, "SYNC_LIMIT", 0)  # every project counts as large here
    readers: list[str] = []
    real = ProjectClass.samples

    def recording(self, *args, **kwargs):
        readers.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ProjectClass, "samples", recording)
    form = open_form(fish_project(tmp_path / "p"))
    form.load_group_samples()
    qtbot.waitUntil(lambda: len(form.group_box._paths) == 30, timeout=5000)
    assert readers and threading.main_thread().name not in readers  # never in the GUI thread
    form.shutdown()
