"""The Label page: keys label and commit at once, auto-advance, undo/redo, filters, classes, thumbnails."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox
from pytestqt.qtbot import QtBot

from conftest import write_bad_files
from labeltune.core.datasets import Sample, scan
from labeltune.core.project import DB_FILE, Project
from labeltune.core.settings import Settings
from labeltune.core.thumbnails import ThumbnailCache
from labeltune.ui.gallery_model import THUMBNAIL_ERROR_ROLE, THUMBNAIL_STATE_ROLE, GalleryFilter
from labeltune.ui.label_page import LabelPage
from labeltune.ui.session import ProjectSession
from labeltune.ui.thumbnails import ThumbnailLoader

CLASSES = ["class0", "class1", "class2"]
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def _digit(n: int) -> Qt.Key:
    return Qt.Key(Qt.Key.Key_0.value + n)


@pytest.fixture
def project(tmp_path: Path, image_folder: Callable[..., Path]) -> Iterator[Project]:
    """3 classes x 4 labeled images, then 8 unlabeled images at the top level."""
    folder = image_folder(classes=3, per_class=4, size=40)
    for k in range(3):
        for i in range(3 if k < 2 else 2):
            shutil.copy(folder / f"class{k}" / f"img{i:03d}.png", folder / f"loose_{k}_{i}.png")
    project = Project.create(tmp_path / "proj", classes=CLASSES)
    project.add_samples(scan(folder).samples)
    assert project.unlabeled_count() == 8 and project.sample_count() == 20
    yield project
    project.close()


@pytest.fixture
def session() -> ProjectSession:
    return ProjectSession(Settings())


@pytest.fixture
def page(qtbot: QtBot, session: ProjectSession, project: Project) -> Iterator[LabelPage]:
    label_page = LabelPage(session)
    qtbot.addWidget(label_page)
    label_page.resize(1100, 700)
    label_page.show()
    session.adopt(project)
    yield label_page
    label_page.shutdown()


def _committed_label(project: Project, sample_id: int) -> str | None:
    """The label as a second connection sees it: proof that it was committed."""
    with sqlite3.connect(project.folder / DB_FILE) as conn:
        return conn.execute("SELECT label FROM samples WHERE id = ?", (sample_id,)).fetchone()[0]


def _decoded(page: LabelPage) -> list[str]:
    return [Path(p).as_posix() for p in page.image_view.decoded_paths()]


def _select(page: LabelPage, sample_id: int) -> None:
    row = page.model.row_of(sample_id)
    assert row >= 0
    page.gallery.select_row(row)
    assert page.session.current_id == sample_id


def test_class_keys_commit_at_once_and_advance_to_next_unlabeled(
    qtbot: QtBot, page: LabelPage, project: Project
) -> None:
    unlabeled = project.sample_ids(unlabeled_only=True)
    labeled = project.sample_ids(label="class0")
    assert page.session.current_id == page.model.sample_id(0)  # the first image is shown on opening
    _select(page, unlabeled[0])
    for n, sample_id in enumerate(unlabeled[:3], start=1):
        assert page.session.current_id == sample_id
        before = project.counts()[CLASSES[n - 1]]
        qtbot.keyClick(page.gallery, _digit(n))
        assert _committed_label(project, sample_id) == CLASSES[n - 1]
        assert project.counts()[CLASSES[n - 1]] == before + 1
        assert page.class_panel.counts()[CLASSES[n - 1]] == before + 1
        assert page.session.current_id == unlabeled[n]  # skipped ahead to the next unlabeled image
    assert page.class_panel.unlabeled_count() == 5
    assert page.model.label(page.model.row_of(unlabeled[0])) == "class0"
    assert "class1" in page.model.index(page.model.row_of(unlabeled[1])).data(Qt.ItemDataRole.ToolTipRole)
    # from a labeled image, auto-advance also goes to the next *unlabeled* one (wrapping round)
    _select(page, labeled[-1])
    qtbot.keyClick(page.gallery, _digit(2))
    assert project.label_of(labeled[-1]) == "class1"
    assert page.session.current_id == unlabeled[3]
    assert "class1" not in page.image_view.info_label.text()  # the view shows the new, unlabeled image


def test_keys_work_in_the_image_view_and_it_shows_label_and_source(
    qtbot: QtBot, page: LabelPage, project: Project
) -> None:
    first = page.model.sample_id(0)
    qtbot.waitUntil(lambda: page.image_view.state() == "ready")
    assert page.image_view.view.image_size() == (40, 40)
    assert page.image_view.title_label.text() == Path(project.sample(first).path).name
    assert "imported" in page.image_view.info_label.text() or "Unlabeled" in page.image_view.info_label.text()
    unlabeled = project.sample_ids(unlabeled_only=True)
    _select(page, unlabeled[0])
    assert "Unlabeled" in page.image_view.info_label.text()
    page.auto_advance_box.setChecked(False)
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_3)
    assert project.label_of(unlabeled[0]) == "class2"
    assert page.session.current_id == unlabeled[0]
    info = page.image_view.info_label.text()
    assert "class2" in info and "key 3" in info and "by you" in info
    qtbot.waitUntil(lambda: project.sample(unlabeled[1]).path.as_posix() in _decoded(page), timeout=10000)
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Right)
    assert page.session.current_id == unlabeled[1]
    assert page.image_view.state() == "ready"  # prefetched: shown at once
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Left)
    assert page.session.current_id == unlabeled[0]
    qtbot.waitUntil(lambda: page.image_view.state() == "ready")
    fitted = page.image_view.view.zoom()
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Plus)
    assert page.image_view.view.zoom() == pytest.approx(fitted * 1.25)
    assert not page.image_view.view.is_fit()
    page.image_view.actual_button.click()
    assert page.image_view.view.zoom() == pytest.approx(1.0) and page.image_view.zoom_label.text() == "100 %"
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_F)
    assert page.image_view.view.is_fit() and page.image_view.view.zoom() == pytest.approx(fitted)
    centre = QPointF(page.image_view.view.viewport().rect().center())
    wheel = QWheelEvent(
        centre,
        page.image_view.view.viewport().mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, 240),  # two notches up
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(page.image_view.view.viewport(), wheel)
    assert page.image_view.view.zoom() == pytest.approx(fitted * 1.25**2)
    ids = [page.model.sample_id(row) for row in range(page.model.rowCount())]  # in the gallery's order
    _select(page, ids[-1])
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Right)  # the end: stays
    assert page.session.current_id == ids[-1]
    qtbot.keyClick(page.gallery, Qt.Key.Key_Left)  # also in the gallery, across grid lines
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Up)
    assert page.session.current_id == ids[-3]
    _select(page, ids[0])
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Left)
    assert page.session.current_id == ids[0]


def test_auto_advance_off_stays_and_is_saved(qtbot: QtBot, page: LabelPage, project: Project) -> None:
    page.auto_advance_box.setChecked(False)
    assert page.session.settings.auto_advance is False
    assert Settings.load().auto_advance is False  # stored in the settings file
    unlabeled = project.sample_ids(unlabeled_only=True)
    _select(page, unlabeled[2])
    qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    assert project.label_of(unlabeled[2]) == "class1"
    assert page.session.current_id == unlabeled[2]
    qtbot.keyClick(page.gallery, Qt.Key.Key_1)  # relabel the same image
    assert project.label_of(unlabeled[2]) == "class0"
    page.auto_advance_box.setChecked(True)
    assert Settings.load().auto_advance is True


def test_remove_label_undo_and_redo(qtbot: QtBot, page: LabelPage, project: Project) -> None:
    unlabeled = project.sample_ids(unlabeled_only=True)
    _select(page, unlabeled[0])
    qtbot.keyClick(page.gallery, Qt.Key.Key_1)
    assert page.session.current_id == unlabeled[1]
    qtbot.keyClick(page.gallery, Qt.Key.Key_Backspace)
    assert _committed_label(project, unlabeled[0]) is None
    assert page.session.current_id == unlabeled[0]  # undo shows the image it changed
    qtbot.keyClick(page.gallery, Qt.Key.Key_Z, CTRL | SHIFT)
    assert _committed_label(project, unlabeled[0]) == "class0"
    assert page.session.current_id == unlabeled[0]
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Z, CTRL)
    assert project.label_of(unlabeled[0]) is None
    qtbot.keyClick(page.image_view.view, Qt.Key.Key_Y, CTRL)
    assert project.label_of(unlabeled[0]) == "class0"
    qtbot.keyClick(page.gallery, Qt.Key.Key_0)
    assert _committed_label(project, unlabeled[0]) is None
    assert page.session.current_id == unlabeled[0]  # removing a label does not advance
    qtbot.keyClick(page.gallery, Qt.Key.Key_3)
    _select(page, unlabeled[0])
    qtbot.keyClick(page.gallery, Qt.Key.Key_Delete)
    assert project.label_of(unlabeled[0]) is None
    page.undo()
    page.redo()
    assert project.label_of(unlabeled[0]) is None
    assert page.class_panel.unlabeled_count() == 8
    for _ in range(10):  # more undos than changes: nothing breaks
        page.undo()
    assert "Nothing to undo" in page.status_label.text()


def test_classes_past_the_ninth_are_labeled_from_the_menu(page: LabelPage, project: Project) -> None:
    for i in range(3, 11):
        page.class_panel.add_class(f"extra{i}")
    target = page.session.current_id
    assert target is not None
    page.gallery.customContextMenuRequested.emit(QPoint(10, 10))  # a right-click in the gallery
    menu = page.findChild(QMenu)
    assert menu is not None
    actions = {action.text(): action for action in menu.actions()}
    assert "Label as class0" in actions and "Remove label" in actions
    actions["Label as extra10"].trigger()
    menu.close()
    assert _committed_label(project, target) == "extra10"
    assert page.class_panel.counts()["extra10"] == 1
    assert page.class_panel.tree.topLevelItem(10).text(0) == "L"  # past 9: the L list


def test_unknown_class_key_labels_nothing(qtbot: QtBot, page: LabelPage, project: Project) -> None:
    current = page.session.current_id
    assert current is not None
    before = project.label_of(current)
    qtbot.keyClick(page.gallery, Qt.Key.Key_7)
    assert project.label_of(current) == before
    assert "no class 7" in page.status_label.text().lower()


def test_number_keys_label_after_the_filter_was_used(qtbot: QtBot, page: LabelPage, project: Project) -> None:
    """Issue 9.1: the "Show:" combo kept the keyboard, and "1" switched the filter to "1: class0"."""
    combo = page.filter_combo
    combo.setCurrentIndex(combo.findText("Unlabeled"))
    combo.activated.emit(combo.currentIndex())  # as when the user picks it with the mouse
    unlabeled = project.sample_ids(unlabeled_only=True)
    assert page.session.current_id == unlabeled[0]
    combo.setFocus()  # the keyboard is still on the combo box, as after a click
    qtbot.keyClick(combo, Qt.Key.Key_1)
    assert combo.currentText() == "Unlabeled" and page.model.filter == GalleryFilter("unlabeled")
    assert _committed_label(project, unlabeled[0]) == "class0"
    qtbot.keyClick(page.auto_advance_box, Qt.Key.Key_2)  # the same from the auto-advance box
    assert _committed_label(project, unlabeled[1]) == "class1"
    qtbot.keyClick(combo, Qt.Key.Key_Backspace)  # undo too
    assert _committed_label(project, unlabeled[1]) is None
    order = page.order_combo  # and from the Sort box, which keeps the keyboard after a pick as well
    order_before = order.currentIndex()
    qtbot.keyClick(order, Qt.Key.Key_2)
    assert _committed_label(project, unlabeled[1]) == "class1" and order.currentIndex() == order_before
    qtbot.keyClick(order, Qt.Key.Key_Backspace)
    assert _committed_label(project, unlabeled[1]) is None
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # other keys still move through the filters
    assert combo.currentText() != "Unlabeled"
    # after a click in the class list, digits label too (they used to search the list for "3")
    current = page.session.current_id
    qtbot.keyClick(page.class_panel.tree, Qt.Key.Key_3)
    assert current is not None and _committed_label(project, current) == "class2"


def test_filters_change_the_rows_and_labeled_images_leave_unlabeled(
    qtbot: QtBot, page: LabelPage, project: Project
) -> None:
    assert page.model.rowCount() == 20
    assert page.count_label.text() == "20 of 20 images"
    page.set_filter(GalleryFilter("class", "class1"))
    assert page.model.rowCount() == 4
    assert {page.model.label(r) for r in range(4)} == {"class1"}
    combo = page.filter_combo
    combo.setCurrentIndex(combo.findText("Unlabeled"))
    combo.activated.emit(combo.currentIndex())  # as when the user picks it
    assert page.model.rowCount() == 8
    assert page.count_label.text() == "8 of 20 images"
    unlabeled = project.sample_ids(unlabeled_only=True)
    assert page.session.current_id == unlabeled[0]
    qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    assert page.model.rowCount() == 7  # the labeled image left the list
    assert page.model.row_of(unlabeled[0]) == -1
    assert page.session.current_id == unlabeled[1]
    assert page.gallery.currentIndex().row() == 0
    page.auto_advance_box.setChecked(False)
    _select(page, unlabeled[3])
    qtbot.keyClick(page.gallery, Qt.Key.Key_2)
    assert page.session.current_id == unlabeled[4]  # the image that followed it takes its place
    qtbot.keyClick(page.gallery, Qt.Key.Key_Backspace)  # undo brings it back into the list
    assert page.model.rowCount() == 7 and page.session.current_id == unlabeled[3]
    page.class_panel.class_activated.emit("class1")  # double-click on a class in the side panel
    assert page.model.rowCount() == 5 and combo.currentText() == "2: class1"
    page.class_panel.class_activated.emit(None)  # ... or on "Unlabeled"
    assert page.model.rowCount() == 7 and combo.currentText() == "Unlabeled"


def test_multi_select_and_key_labels_all_selected(qtbot: QtBot, page: LabelPage, project: Project) -> None:
    unlabeled = project.sample_ids(unlabeled_only=True)
    rows = [page.model.row_of(i) for i in unlabeled[:4]]
    selection = QItemSelection()
    for row in rows:
        selection.select(page.model.index(row), page.model.index(row))
    page.gallery.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    assert page.gallery.selected_sample_ids() == unlabeled[:4]
    qtbot.keyClick(page.gallery, Qt.Key.Key_3)
    assert [_committed_label(project, i) for i in unlabeled[:4]] == ["class2"] * 4
    assert page.class_panel.counts()["class2"] == 8
    assert page.session.current_id == unlabeled[4]
    assert page.gallery.selected_sample_ids() == [unlabeled[4]]
    page.undo()  # the selection was one step: undo gives all four back (docs/adr/0039)
    assert [project.label_of(i) for i in unlabeled[:4]] == [None] * 4
    assert page.class_panel.counts()["class2"] == 4
    assert page.status_label.text() == "Undid the labels of 4 images"


def test_class_add_rename_merge_delete_update_counts(qtbot: QtBot, page: LabelPage, project: Project) -> None:
    panel = page.class_panel
    assert panel.counts() == {"class0": 4, "class1": 4, "class2": 4}
    assert panel.tree.topLevelItem(0).text(0) == "1"
    assert panel.add_class("fish")
    assert panel.counts()["fish"] == 0 and project.classes[-1] == "fish"
    assert page.filter_combo.findText("4: fish") >= 0
    target = project.sample_ids(unlabeled_only=True)[0]
    _select(page, target)
    qtbot.keyClick(page.gallery, Qt.Key.Key_4)
    assert project.label_of(target) == "fish" and panel.counts()["fish"] == 1
    assert panel.rename_class("fish", "shark")
    assert project.label_of(target) == "shark" and panel.counts() == {
        "class0": 4,
        "class1": 4,
        "class2": 4,
        "shark": 1,
    }
    assert page.filter_combo.findText("4: shark") >= 0 and page.filter_combo.findText("4: fish") < 0
    assert panel.merge_classes(["class2"], "class1")
    assert panel.counts() == {"class0": 4, "class1": 8, "shark": 1}
    assert panel.delete_class("shark", confirm=False)
    assert project.label_of(target) is None
    assert panel.unlabeled_count() == 8 and "shark" not in panel.counts()
    assert not panel.add_class("class0")  # a duplicate is refused with a message, not a crash
    box = panel.findChild(QMessageBox, "errorBox")
    assert box is not None and "already exists" in box.text()
    box.close()
    panel.tree.topLevelItem(1).setSelected(True)
    assert panel.selected_classes() == ["class1"]
    assert panel.move_class("class1", -1) and project.classes[:2] == ["class1", "class0"]


def test_thumbnails_arrive_and_are_written_to_the_disk_cache(
    qtbot: QtBot, page: LabelPage, project: Project
) -> None:
    index = page.model.index(0)
    qtbot.waitUntil(lambda: index.data(THUMBNAIL_STATE_ROLE) == "ready", timeout=10000)
    image = index.data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(image, QImage) and not image.isNull()
    assert max(image.width(), image.height()) == page.settings.thumbnail_size  # small images are enlarged
    cache = ThumbnailCache(project.cache_dir / "thumbnails", page.settings.thumbnail_size)
    entry = cache.entry_path(page.model.path(0))
    assert entry.is_file()
    with Image.open(entry) as stored:
        assert stored.size == (40, 40)
    page.grab()  # painting every state of the delegate must not fail


def test_unreadable_file_shows_placeholder_with_reason(
    qtbot: QtBot, session: ProjectSession, project: Project, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a picture")
    project.add_samples([Sample(broken, None)])
    page = LabelPage(session)
    qtbot.addWidget(page)
    page.resize(900, 600)
    page.show()
    session.adopt(project)
    try:
        broken_id = project.sample_id(broken)
        page.set_filter(GalleryFilter("unlabeled"))
        index = page.model.index(page.model.row_of(broken_id))
        page.gallery.scrollTo(index)
        qtbot.waitUntil(lambda: index.data(THUMBNAIL_STATE_ROLE) == "failed", timeout=10000)
        assert index.data(THUMBNAIL_ERROR_ROLE) == "not an image (looks like text)"
        assert "Unreadable, not used: not an image (looks like text)" in index.data(
            Qt.ItemDataRole.ToolTipRole
        )
        _select(page, broken_id)
        qtbot.waitUntil(lambda: page.image_view.state() == "failed", timeout=10000)
        assert "not an image (looks like text)" in page.image_view.view.message()
        assert "not an image (looks like text)" in page.image_view.view.toolTip()
        assert "not labeled" in page.image_view.info_label.text()
        page.grab()
        qtbot.keyClick(page.gallery, Qt.Key.Key_1)  # not offered for labeling (issue 9.9)
        assert project.label_of(broken_id) is None
        assert "cannot be read (not an image (looks like text))" in page.status_label.text()
    finally:
        page.shutdown()


def test_a_file_truncated_after_import_shows_its_reason_and_is_skipped_by_labeling(
    qtbot: QtBot, session: ProjectSession, project: Project, tmp_path: Path
) -> None:
    unlabeled = project.sample_ids(unlabeled_only=True)
    damaged = Path(project.sample(unlabeled[1]).path)
    cut = write_bad_files(tmp_path / "bad")["cut.jpg"]
    damaged.write_bytes(cut.read_bytes())  # the file changed on disk after the import
    page = LabelPage(session)
    qtbot.addWidget(page)
    page.resize(900, 600)
    page.show()
    session.adopt(project)
    try:
        page.set_filter(GalleryFilter("unlabeled"))
        _select(page, unlabeled[0])
        qtbot.waitUntil(lambda: page.model.unreadable_reason(unlabeled[1]) is not None, timeout=10000)
        assert page.model.unreadable_reason(unlabeled[1]) == "truncated JPEG (image data ends early)"
        qtbot.keyClick(page.gallery, Qt.Key.Key_1)  # auto-advance passes over the unreadable file
        assert project.label_of(unlabeled[0]) == "class0"
        assert project.label_of(unlabeled[1]) is None
        assert page.session.current_id == unlabeled[2]
        _select(page, unlabeled[1])
        qtbot.waitUntil(lambda: page.image_view.state() == "failed", timeout=10000)
        assert "truncated JPEG (image data ends early)" in page.image_view.info_label.text()
        qtbot.keyClick(page.gallery, Qt.Key.Key_2)
        assert project.label_of(unlabeled[1]) is None
    finally:
        page.shutdown()


def test_thumbnail_requests_for_rows_scrolled_away_are_dropped(qtbot: QtBot, tmp_path: Path) -> None:
    gate = threading.Event()

    class SlowCache(ThumbnailCache):
        def load(self, image_path: object) -> object:  # type: ignore[override]
            gate.wait(10)
            return super().load(image_path)  # type: ignore[arg-type]

    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (20, 10), (i * 20, 0, 0)).save(paths[-1])
    loader = ThumbnailLoader(SlowCache(tmp_path / "cache", 16), threads=1)
    arrived: list[int] = []
    loader.loaded.connect(lambda key, image: arrived.append(key))
    for key, path in enumerate(paths):
        loader.request(key, str(path))
    qtbot.waitUntil(lambda: loader.pending_count() == 11)  # the newest (11) is being made
    loader.retain({0, 10})  # the user scrolled: only rows 0 and 10 are still on screen
    assert loader.pending_count() == 2
    gate.set()
    qtbot.waitUntil(lambda: len(arrived) == 3)
    qtbot.wait(100)
    assert arrived == [11, 10, 0]  # newest requests first; the dropped ones never come
    loader.shutdown()


def test_split_filter_reads_the_latest_run(qtbot: QtBot, page: LabelPage, project: Project) -> None:
    run_dir = project.runs_dir / "run1"
    run_dir.mkdir(parents=True)
    samples = [s for s in project.samples() if s.label is not None]
    lines = ["file,sha256,label,split"]
    lines += [f"{s.path},x,{s.label},{'val' if i % 4 == 0 else 'train'}" for i, s in enumerate(samples)]
    (run_dir / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    project.record_run("run1", run_dir, "resnet18", "features", {})
    page.session.notify_runs_changed()
    assert page.filter_combo.findText("Validation images (latest run)") >= 0
    page.set_filter(GalleryFilter("split", "val"))
    qtbot.waitUntil(lambda: page.model.filter == GalleryFilter("split", "val"), timeout=10000)
    assert page.model.rowCount() == 3
    page.set_filter(GalleryFilter("split", "train"))
    qtbot.waitUntil(lambda: page.model.rowCount() == 9, timeout=10000)
    (run_dir / "manifest.csv").unlink()
    with qtbot.waitSignal(page.filter_combo.split_task.failed, timeout=10000):
        page.set_filter(GalleryFilter("split", "val"))


def test_labels_made_with_keys_survive_closing_and_reopening(
    qtbot: QtBot, page: LabelPage, project: Project
) -> None:
    unlabeled = project.sample_ids(unlabeled_only=True)
    _select(page, unlabeled[0])
    for key in (Qt.Key.Key_1, Qt.Key.Key_3, Qt.Key.Key_2, Qt.Key.Key_3):
        qtbot.keyClick(page.gallery, key)
    folder = project.folder
    page.session.close()
    assert page.model.rowCount() == 0 and page.class_panel.counts() == {}
    reopened = Project.open(folder)
    try:
        assert [reopened.label_of(i) for i in unlabeled[:5]] == ["class0", "class2", "class1", "class2", None]
        assert reopened.counts() == {"class0": 5, "class1": 5, "class2": 6}
        assert reopened.label_history(unlabeled[1])[-1].source == "human"
    finally:
        reopened.close()


def test_every_class_past_the_ninth_is_reached_from_the_keyboard(
    qtbot: QtBot, page: LabelPage, project: Project
) -> None:
    from labeltune.ui.class_chooser import class_matches

    for name in [f"Species_{n:02d}_reef" for n in range(4, 13)] + ["Chromis_chrysura"]:
        page.session.add_class(name)
    assert len(project.classes) == 13
    unlabeled = project.sample_ids(unlabeled_only=True)
    _select(page, unlabeled[0])
    qtbot.keyClick(page.gallery, Qt.Key.Key_L)
    chooser = page.class_chooser
    assert chooser.isVisible() and chooser.list.count() == 13
    qtbot.keyClicks(chooser.search_edit, "chromis ch")  # words, any case, "_" matches a space
    assert chooser.list.count() == 1
    qtbot.keyClick(chooser.search_edit, Qt.Key.Key_Return)
    assert not chooser.isVisible()
    assert _committed_label(project, unlabeled[0]) == "Chromis_chrysura"
    assert page.session.current_id == unlabeled[1]  # auto-advance, as with the digit keys
    assert page.gallery.hasFocus() or QApplication.focusWidget() is None  # keys go on labeling

    qtbot.keyClick(page.gallery, Qt.Key.Key_L)
    qtbot.keyClicks(chooser.search_edit, "1")  # a number: 1, 10, 11, 12, 13
    names = [chooser.list.item(r).data(Qt.ItemDataRole.UserRole) for r in range(chooser.list.count())]
    assert names == [project.classes[i] for i in (0, 9, 10, 11, 12)]
    qtbot.keyClick(chooser.search_edit, Qt.Key.Key_Down)
    qtbot.keyClick(chooser.search_edit, Qt.Key.Key_Enter)
    assert _committed_label(project, unlabeled[1]) == project.classes[9]
    qtbot.keyClick(page.gallery, Qt.Key.Key_L)
    qtbot.keyClick(chooser.search_edit, Qt.Key.Key_Escape)
    assert not chooser.isVisible() and project.label_of(unlabeled[2]) is None
    assert class_matches("reef 1", project.classes) == [9, 10, 11]  # every word must match


def test_thumbnails_follow_file_names_with_numbers_in_number_order(
    qtbot: QtBot, session: ProjectSession, tmp_path: Path
) -> None:
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("fish_10_b.png", "fish_9_a.png", "Fish_2_c.png", "fish_100_a.png"):
        Image.new("RGB", (8, 8)).save(folder / name)
    project = Project.create(tmp_path / "proj", classes=["a"])
    added = [folder / n for n in ("fish_10_b.png", "fish_9_a.png", "Fish_2_c.png", "fish_100_a.png")]
    from labeltune.core.datasets import Sample

    project.add_samples([Sample(p, None) for p in added])
    page = LabelPage(session)
    qtbot.addWidget(page)
    session.adopt(project)
    try:
        names = [Path(page.model.path(r)).name for r in range(page.model.rowCount())]
        assert names == ["Fish_2_c.png", "fish_9_a.png", "fish_10_b.png", "fish_100_a.png"]
        page.order_combo.setCurrentIndex(page.order_combo.findData("added"))
        page.order_combo.activated.emit(page.order_combo.currentIndex())
        names = [Path(page.model.path(r)).name for r in range(page.model.rowCount())]
        assert names == [p.name for p in added]
        assert Settings.load().gallery_order == "added"  # remembered
        page.model.set_order("name")
        first = page.model.sample_id(0)
        session.set_label([first], "a")  # a label change keeps the order and finds the row again
        assert page.model.row_of(first) == 0 and page.model.label(0) == "a"
    finally:
        page.shutdown()
        session.close()


def test_long_file_names_keep_their_track_id_on_two_caption_lines() -> None:
    from labeltune.ui.gallery import caption_lines

    def fits(text: str) -> bool:
        return len(text) <= 18  # characters standing in for pixels

    assert caption_lines("short.png", fits) == ("short.png", "")
    first, second = caption_lines("fish_000001329595_03643.png", fits)
    assert (first, second) == ("fish_000001329595_", "03643.png")  # the track id whole on line one
    assert caption_lines("Corn_Blight (1056).JPG", fits) == ("Corn_Blight ", "(1056).JPG")
    assert caption_lines("averyveryverylongnamewithoutbreaks.png", fits)[0] == "averyveryverylongn"
