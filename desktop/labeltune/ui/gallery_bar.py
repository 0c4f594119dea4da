"""The bar above the Label page's gallery: the filter (which images show), how many, order, auto-advance."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from labeltune.core.audit_store import AuditFindings
from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.ui.errors import show_error
from labeltune.ui.gallery_model import SORT_ORDERS, GalleryFilter, read_split_paths
from labeltune.workers.tasks import FunctionWorker, TaskController

#: The gallery filter of the label-next queue (ui/label_next.py) and its name in the list.
QUEUE_FILTER = GalleryFilter("next")
QUEUE_TEXT = "Label next (least sure first)"


def path_filter_text(path_filter: GalleryFilter) -> str:
    """The list's text for a filter of given files: a confusion-matrix cell, or a selection on the map."""
    if path_filter.kind == "map":
        return f"Selected on the map ({path_filter.value})"
    return f"Validation: {path_filter.value}"


class FilterCombo(QComboBox):
    """Chooses what the gallery shows: all, unlabeled, a class, or the latest run's train/val images.

    A split is read from the run's ``manifest.csv`` in a worker thread; ``filter_chosen`` then carries
    the filter and the set of file paths it lets through (empty for the other filters).
    """

    filter_chosen = Signal(object, object)  # GalleryFilter, paths (split filters; label next: in order)

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty combo box (see :meth:`rebuild`)."""
        super().__init__(parent)
        self.setObjectName("filterCombo")
        self.setToolTip("Which images the gallery shows")
        self.currentTextChanged.connect(self._on_current_text_changed)  # the whole text, when cut
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._run_dir: str | None = None
        self._cell: GalleryFilter | None = None  # the confusion-matrix cell shown last (drill-down)
        self._cell_paths: frozenset[str] = frozenset()
        self._queue_paths: tuple[str, ...] | None = None  # the label-next queue, in its order
        self._wanted_split: tuple[str, str] | None = None  # (run folder, "train" or "val")
        self.split_task = TaskController(self)
        self.split_task.finished.connect(self._on_split_task_finished)
        self.split_task.failed.connect(self._on_split_task_failed)
        self.activated.connect(self._on_activated)

    def rebuild(
        self,
        project: Project | None,
        current: GalleryFilter,
        unfamiliar: int = 0,
        predicted: bool = False,
        excluded: int = 0,
        audit: AuditFindings | None = None,
    ) -> bool:
        """List the filters of ``project``, keeping ``current``; False if it no longer exists.

        ``unfamiliar`` is how many images the newest checked run finds unfamiliar (their filter is offered
        when there are any); ``predicted``: whether a checked run's predictions are stored (the filters by
        predicted class, correct and incorrect are offered); ``excluded``: how many images are left out of
        training; ``audit``: the newest stored audit (its filters are offered).
        """
        self.clear()
        self._run_dir = None
        if project is None or project.closed:
            return True
        self.addItem("All images", GalleryFilter("all"))
        self.addItem("Unlabeled", GalleryFilter("unlabeled"))
        for i, name in enumerate(project.classes):
            self.addItem(f"{i + 1}: {name}" if i < 9 else name, GalleryFilter("class", name))
        runs = project.runs()
        if runs:
            self._run_dir = str(runs[-1]["path"])
            self.addItem("Training images (latest run)", GalleryFilter("split", "train"))
            self.addItem("Validation images (latest run)", GalleryFilter("split", "val"))
        if unfamiliar:
            self.addItem(f"Unfamiliar to the model ({unfamiliar})", GalleryFilter("unfamiliar"))
        if predicted:
            self.addItem("Model agrees with the label", GalleryFilter("correct"))
            self.addItem("Model disagrees with the label", GalleryFilter("incorrect"))
            for name in project.classes:
                self.addItem(f"Predicted: {name}", GalleryFilter("predicted", name))
        if excluded:
            self.addItem(f"Excluded from training ({excluded})", GalleryFilter("excluded"))
        if audit is not None:
            self.addItem(f"Likely label errors ({len(audit.issues)})", GalleryFilter("label_errors"))
            groups = len({d.group for d in audit.duplicates.values()})
            self.addItem(f"Near-duplicates ({groups} groups)", GalleryFilter("duplicates"))
        if self._cell is not None and current == self._cell:
            self.addItem(path_filter_text(self._cell), self._cell)
        if self._queue_paths is not None:
            self.addItem(QUEUE_TEXT, QUEUE_FILTER)
        index = self.index_of(current)
        self.setCurrentIndex(max(0, index))
        return index >= 0

    def _on_current_text_changed(self, text: str) -> None:
        self.setToolTip(
            f"Which images the gallery shows: {text}" if text else "Which images the gallery shows"
        )

    def show_cell(self, cell: GalleryFilter, paths: frozenset[str]) -> None:
        """Offer and select the filter of a matrix cell (or a map selection); announce it with its files."""
        self._cell, self._cell_paths = cell, paths
        index = self.index_of(cell)
        if index < 0:
            self.addItem(path_filter_text(cell), cell)
            index = self.count() - 1
        self.setCurrentIndex(index)
        self._wanted_split = None
        self.filter_chosen.emit(cell, paths)

    def show_queue(self, paths: tuple[str, ...] | None) -> None:
        """Offer, select and announce the label-next queue (``paths`` most useful first); None: forget it."""
        self._queue_paths = paths
        index = self.index_of(QUEUE_FILTER)
        if paths is None:
            if index >= 0:
                self.removeItem(index)
            return
        if index < 0:
            self.addItem(QUEUE_TEXT, QUEUE_FILTER)
        self.choose(QUEUE_FILTER)

    def index_of(self, gallery_filter: GalleryFilter) -> int:
        """Position of a filter in the list (-1: not offered)."""
        for i in range(self.count()):
            if self.itemData(i) == gallery_filter:
                return i
        return -1

    def choose(self, gallery_filter: GalleryFilter) -> None:
        """Select ``gallery_filter`` and announce it (a split once its files are read)."""
        index = self.index_of(gallery_filter)
        if index >= 0:
            self.setCurrentIndex(index)
        if gallery_filter.kind != "split":
            self._wanted_split = None
            paths: object = self._cell_paths if gallery_filter == self._cell else frozenset()
            if gallery_filter == QUEUE_FILTER:
                paths = self._queue_paths or ()
            self.filter_chosen.emit(gallery_filter, paths)
        elif self._run_dir is not None:
            self._wanted_split = (self._run_dir, str(gallery_filter.value))
            self._start_split_task()

    def shutdown(self) -> None:
        """Wait for a manifest being read."""
        self.split_task.shutdown()

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if isinstance(data, GalleryFilter):
            self.choose(data)

    def _start_split_task(self) -> None:
        if self._wanted_split is None or self.split_task.is_running():
            return  # the running task is followed by the newest wish when it finishes
        run_dir, split = self._wanted_split
        self.split_task.start(
            FunctionWorker(lambda _progress, _stop: (run_dir, split, read_split_paths(Path(run_dir), split)))
        )

    def _on_split_task_finished(self, result: tuple[str, str, list[Path]]) -> None:
        if self._wanted_split is None:
            return
        run_dir, split, paths = result
        if (run_dir, split) != self._wanted_split:
            self._start_split_task()
            return
        self.filter_chosen.emit(GalleryFilter("split", split), paths)

    def _on_split_task_failed(self, message: str, details: str) -> None:
        show_error(self, "Cannot read the training run's split", message, details)
        self.choose(GalleryFilter("all"))


class GalleryBar(QWidget):
    """*Show:* filter · count · *Sort:* order · *Auto-advance*; the order and auto-advance are settings."""

    order_chosen = Signal(str)  # a key of SORT_ORDERS, chosen by the user (and saved)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        """Show the order and auto-advance of ``settings``; the user's changes are saved there."""
        super().__init__(parent)
        self.settings = settings
        self.filter_combo = FilterCombo()
        # wide enough for "All images" or a class name ("All imag" was cut), not for the longest entry
        self.filter_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.filter_combo.setMinimumContentsLength(14)
        self.filter_combo.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
        self.order_combo = QComboBox()
        self.order_combo.setObjectName("galleryOrderCombo")
        self.order_combo.setToolTip("The order of the thumbnails (numbers in names sort as numbers)")
        for key, text in SORT_ORDERS.items():
            self.order_combo.addItem(text, key)
        order = settings.gallery_order if settings.gallery_order in SORT_ORDERS else "name"
        self.order_combo.setCurrentIndex(list(SORT_ORDERS).index(order))
        self.count_label = QLabel()
        self.count_label.setObjectName("galleryCountLabel")
        self.auto_advance_box = QCheckBox("Auto-advance")
        self.auto_advance_box.setChecked(settings.auto_advance)
        self.auto_advance_box.setToolTip("After a class key, jump to the next unlabeled image")

        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        show_label = QLabel("&Show:")
        show_label.setBuddy(self.filter_combo)
        bar.addWidget(show_label)
        bar.addWidget(self.filter_combo)
        bar.addWidget(self.count_label, 1)
        order_label = QLabel("S&ort:")
        order_label.setBuddy(self.order_combo)
        bar.addWidget(order_label)
        bar.addWidget(self.order_combo)
        bar.addWidget(self.auto_advance_box)

        self.order_combo.activated.connect(self._on_order_combo_activated)
        self.auto_advance_box.toggled.connect(self._on_auto_advance_box_toggled)

    def set_count(self, shown: int, total: int | None) -> None:
        """Say how many images show of how many (``total`` ``None``: no project, say nothing)."""
        self.count_label.setText(f"{shown:,} of {total:,} images" if total is not None else "")

    def _on_order_combo_activated(self, _index: int) -> None:
        order = str(self.order_combo.currentData())
        self.settings.gallery_order = order
        self.order_chosen.emit(order)
        try:
            self.settings.save()
        except OSError as error:
            show_error(self, "Cannot save settings", str(error))

    def _on_auto_advance_box_toggled(self, checked: bool) -> None:
        self.settings.auto_advance = checked
        try:
            self.settings.save()
        except OSError as error:
            show_error(self, "Cannot save settings", str(error))
