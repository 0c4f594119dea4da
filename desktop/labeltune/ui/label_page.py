"""The Label page: class list, thumbnail gallery and large image view; keys 1–9 label, Backspace undoes.

Keys (when the gallery or the image view has focus): 1–9 give the current image (or all selected images)
the n-th class and, with auto-advance on, move to the next unlabeled image; L opens a filterable list of
every class (for the 10th and later, or to label by name); 0 or Delete removes the label;
Backspace or Ctrl+Z undoes, Ctrl+Shift+Z (or Ctrl+Y) redoes; ←/→ move to the previous/next image
in the gallery's order.  Each label is committed to SQLite (``ProjectSession.set_label``) before the key
handler returns, so it is saved before the next key press is handled.

The page lays out the class list, the bar (:mod:`labeltune.ui.gallery_bar`), the gallery and the large view
and keeps them in step with the session; what a key does is :mod:`labeltune.ui.label_controller`'s.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from labeltune.core.audit_store import latest_findings
from labeltune.core.review import cell_paths, read_val_predictions
from labeltune.core.thumbnails import ThumbnailCache
from labeltune.ui.class_chooser import ClassChooser
from labeltune.ui.class_panel import ClassPanel
from labeltune.ui.gallery import GalleryView
from labeltune.ui.gallery_bar import GalleryBar
from labeltune.ui.gallery_filters import AUDIT_FILTERS
from labeltune.ui.gallery_model import SORT_ORDERS, GalleryFilter, GalleryModel
from labeltune.ui.gallery_topk import TopKBars
from labeltune.ui.heatmap_panel import HeatmapPanel, predicted_run_dir
from labeltune.ui.image_view import ImageView
from labeltune.ui.label_audit import DUPLICATE_HINT, ISSUE_HINT, audit_text
from labeltune.ui.label_controller import KEY_HELP, KEY_HINT, LabelingController
from labeltune.ui.label_next import LabelNextController
from labeltune.ui.session import ProjectSession
from labeltune.ui.thumbnails import ThumbnailLoader

_SOURCE_TEXT = {
    "human": "by you",
    "import": "imported",
    "model": "accepted prediction",
    "accepted": "model's suggestion, confirmed by you",
}


def _unreadable_info(reason: str) -> str:
    """The large view's line for a file that cannot be read: the reason, and that it is left out."""
    return f"⚠ <b>Cannot be read:</b> {html.escape(reason)} · not labeled, not used for training"


def model_text(prediction: tuple[str, float, float | None] | None, label: str | None) -> str:
    """What the newest checked model says about an image, for the line above the large view.

    An unfamiliar image (unlike the model's training images: its answer deserves little trust) is marked
    like its thumbnail, with an amber '?'.
    """
    if prediction is None:
        return ""
    predicted, confidence, ood = prediction
    agrees = "" if label is None or predicted == label else " (disagrees)"
    text = f" · model: {html.escape(predicted)} {100 * confidence:.0f} %{agrees}"
    if ood is not None and ood > 1.0:  # short: the line must fit beside the large view (its tooltip too)
        text += " · <span style='color:#b36b00'><b>? unfamiliar</b> to the model</span>"
    return text


class LabelPage(QWidget):
    """Everything for labeling the open project's images."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        """Build the page; it follows ``session``'s project from then on."""
        super().__init__(parent)
        self.session = session
        self.settings = session.settings
        self._fit_pending = False  # widen the class list when the page is next shown
        size = self.settings.thumbnail_size
        threads = max(1, min(4, (os.cpu_count() or 2) - 1))  # leave a core to the GUI thread
        self.loader = ThumbnailLoader(None, threads=threads, display_size=size, parent=self)
        self.model = GalleryModel(self.loader, parent=self)
        if self.settings.gallery_order in SORT_ORDERS:
            self.model.set_order(self.settings.gallery_order)  # type: ignore[arg-type]
        self.gallery = GalleryView(size)
        self.gallery.setModel(self.model)
        self.image_view = ImageView()
        self.topk_bars = TopKBars()
        # the "Why" heatmap over the image, by the model of the run whose predictions the gallery shows
        self.why = HeatmapPanel(
            self.image_view, lambda: predicted_run_dir(self.session.project, self.model.predicted_run), self
        )
        self.class_panel = ClassPanel(session)
        self.bar = GalleryBar(self.settings)
        self.filter_combo = self.bar.filter_combo
        self.order_combo = self.bar.order_combo
        self.count_label = self.bar.count_label
        self.auto_advance_box = self.bar.auto_advance_box
        self.class_chooser = ClassChooser(self)
        self.status_label = QLabel(KEY_HINT)
        self.status_label.setObjectName("labelStatusLabel")
        self.status_label.setToolTip(KEY_HELP)
        # Its text changes with every key: it must not set the gallery's width (the splitter would move
        # and the thumbnails reflow), so a long message is clipped instead (the tooltip has the keys).
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._build_layout()

        self.labeling = LabelingController(
            session, self.model, self.gallery, self.image_view, self.class_chooser, self.status_label, self
        )
        self.labeling.watch(
            (self.filter_combo, self.order_combo, self.auto_advance_box), self.class_panel.tree
        )
        self.label_next = LabelNextController(session, self.model, self.filter_combo, self.status_label, self)
        self.middle_layout.insertWidget(1, self.label_next.widget)  # under the bar, over the gallery
        self.labeling.sample_revisited.connect(self._refresh_current)
        self.labeling.excluded_changed.connect(self._rebuild_filters)
        self.labeling.batches.tasks.running_changed.connect(self._on_batches_running_changed)
        self.model.modelReset.connect(self._on_model_reset)
        self.model.rowsInserted.connect(self._update_count)
        self.model.rowsRemoved.connect(self._update_count)
        self.filter_combo.filter_chosen.connect(self._on_filter_combo_filter_chosen)
        self.bar.order_chosen.connect(self._on_bar_order_chosen)
        self.class_panel.class_activated.connect(self._on_class_panel_class_activated)
        session.project_opened.connect(self._on_session_project_opened)
        session.project_closed.connect(self._on_session_project_closed)
        session.labels_changed.connect(self._on_session_labels_changed)
        session.classes_changed.connect(self._on_session_classes_changed)
        session.samples_changed.connect(self._on_session_samples_changed)
        session.runs_changed.connect(self._rebuild_filters)
        session.predictions_changed.connect(self._on_session_predictions_changed)
        session.current_changed.connect(self._on_session_current_changed)
        self.image_view.image_failed.connect(self._on_image_view_image_failed)
        if session.project is not None:
            self._on_session_project_opened(session.project)

    def _build_layout(self) -> None:
        middle = QWidget()
        middle_layout = self.middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(self.bar)
        middle_layout.addWidget(self.gallery, 1)
        middle_layout.addWidget(self.status_label)
        splitter = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.class_panel)
        splitter.addWidget(middle)
        right = QWidget()  # the large view, and under it what the model says (top-k bars)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.image_view, 1)
        right_layout.addWidget(self.topk_bars)
        splitter.addWidget(right)
        self.image_view.setMinimumWidth(300)
        self.class_panel.setMinimumWidth(170)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 2)
        splitter.setSizes([230, 560, 480])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

    # -- commands (MainWindow calls undo, redo and shutdown; the keys are LabelingController's) ---------
    def assign_class(self, number: int) -> None:
        """Give the current (or all selected) images the ``number``-th class (1-based); maybe advance."""
        self.labeling.assign_class(number)

    def label_as(self, name: str) -> None:
        """Give the current (or all selected) images class ``name`` (any class, also past the 9th)."""
        self.labeling.label_as(name)

    def choose_class(self) -> None:
        """Open the filterable list of every class; the class picked labels the current image(s)."""
        self.labeling.choose_class()

    def remove_label(self) -> None:
        """Remove the label of the current (or all selected) images."""
        self.labeling.remove_label()

    def undo(self) -> None:
        """Undo the last label change and show the image it touched."""
        self.labeling.undo()

    def redo(self) -> None:
        """Redo the last undone label change and show the image it touched."""
        self.labeling.redo()

    def show_neighbour(self, step: int) -> None:
        """Show the previous (-1) or next (+1) image in the gallery's order."""
        self.labeling.show_neighbour(step)

    def set_filter(self, gallery_filter: GalleryFilter) -> None:
        """Show only the images ``gallery_filter`` lets through (a split is read in the background)."""
        self.filter_combo.choose(gallery_filter)

    def accept_prediction(self) -> None:
        """Label the current (or all selected) images as the model predicts (source ``accepted``); go on."""
        self.labeling.accept_prediction()

    def toggle_excluded(self) -> None:
        """Exclude the current (or all selected) images from training, or include them again."""
        self.labeling.toggle_excluded()

    def show_cell(self, run_dir: Path, true: str, predicted: str) -> int:
        """Show exactly the validation images of ``run_dir`` of class ``true`` predicted as ``predicted``.

        The confusion-matrix drill-down; returns how many images the run lists for the cell (its count).
        ``val_predictions.csv`` is a small file (one line per validation image): read here.
        """
        items = read_val_predictions(Path(run_dir))
        if not items:
            self._say("This run lists no validation images (train it again to see the images of a cell)")
            return 0
        paths = cell_paths(items, true, predicted)
        self.filter_combo.show_cell(GalleryFilter("cell", f"{true} → {predicted}"), paths)
        images = f"{len(paths)} validation image{'s' if len(paths) != 1 else ''}"
        what = f"{true} taken for {predicted}" if true != predicted else f"{true} recognised"
        # the Show combo is narrow ("Validation: Healthy → B…"): the cell in full, and what to do
        self._say(f"{what}: {images} · Space accepts the model's answer, a digit corrects, X excludes")
        return len(paths)

    def show_map_selection(self, paths: frozenset[str]) -> None:
        """Show exactly the images selected on the data map, all selected: a digit labels them all."""
        self.filter_combo.show_cell(GalleryFilter("map", f"{len(paths)}"), paths)
        if self.model.rowCount():
            self.labeling.go_to_row(0)
        self.gallery.selectAll()
        self.gallery.setFocus(Qt.FocusReason.OtherFocusReason)

    def show_sample(self, sample_id: int) -> None:
        """Make ``sample_id`` the current image (all images shown when the filter hides it)."""
        if self.model.row_of(sample_id) < 0:
            self.filter_combo.choose(GalleryFilter("all"))
        row = self.model.row_of(sample_id)
        if row >= 0:
            self.labeling.go_to_row(row)
            self.gallery.setFocus(Qt.FocusReason.OtherFocusReason)

    def shutdown(self) -> None:
        """Stop background work (thumbnails, decoding, reading a split) before the window closes."""
        self.labeling.batches.shutdown()
        self.loader.shutdown()
        self.image_view.shutdown()
        self.why.shutdown()
        self.label_next.shutdown()
        self.filter_combo.shutdown()

    def say(self, message: str) -> None:
        """Put ``message`` on the status line under the gallery."""
        self.labeling.say(message)

    def _say(self, message: str) -> None:
        self.say(message)

    # -- filters ------------------------------------------------------------------------------------
    def _rebuild_filters(self) -> None:
        unfamiliar = self.model.unfamiliar_count()
        predicted = self.model.predicted_run is not None
        excluded = self.model.excluded_count()
        if not self.filter_combo.rebuild(
            self.session.project, self.model.filter, unfamiliar, predicted, excluded, self.model.findings
        ):
            self.model.set_filter(GalleryFilter("all"))  # the class shown was renamed or deleted
        self.order_combo.setEnabled(self.model.filter.kind not in AUDIT_FILTERS)  # the audit's own order

    def _on_session_predictions_changed(self) -> None:
        current = self.gallery.currentIndex()
        sample_id = self.model.sample_id(current.row()) if current.isValid() else None
        # the answers of the run checked or drilled into last (else the newest checked), its unfamiliar images
        self.model.load_predictions(self.session.shown_run)
        self._load_findings()
        self._rebuild_filters()
        if sample_id is not None:
            self._on_session_current_changed(sample_id)

    def _load_findings(self) -> None:
        """Take the newest audit stored in a run folder (a small JSON file: read here)."""
        project = self.session.project
        runs = project.runs() if project is not None and not project.closed else []
        self.model.set_findings(latest_findings(Path(str(run["path"])) for run in runs))

    def _on_filter_combo_filter_chosen(self, gallery_filter: GalleryFilter, paths: frozenset[str]) -> None:
        self.model.set_filter(gallery_filter, paths)
        hint = {"label_errors": ISSUE_HINT, "duplicates": DUPLICATE_HINT}.get(gallery_filter.kind)
        self.order_combo.setEnabled(hint is None)  # the audit's lists keep its order
        if hint is not None:
            self._say(hint)
        self.gallery.setFocus(Qt.FocusReason.OtherFocusReason)  # labeling goes on with the keys

    def _on_bar_order_chosen(self, order: str) -> None:
        current = self.session.current_id
        self.model.set_order(order)  # type: ignore[arg-type]
        row = self.model.row_of(current) if current is not None else -1
        if row >= 0:
            self.labeling.go_to_row(row)
            self.gallery.scrollTo(self.model.index(row))
        self.gallery.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_class_panel_class_activated(self, name: object) -> None:
        self.set_filter(GalleryFilter("unlabeled") if name is None else GalleryFilter("class", str(name)))

    def _update_count(self, *_args: object) -> None:
        project = self.session.project
        total = project.sample_count() if project is not None and not project.closed else 0
        self.bar.set_count(self.model.rowCount(), total if project is not None else None)

    # -- session and view events --------------------------------------------------------------------
    def _fit_class_panel(self) -> None:
        """Widen the class list so every class name shows whole (the gallery gives up the room)."""
        sizes = self.splitter.sizes()
        if not self.isVisible() or sum(sizes) == 0:  # not laid out yet: when the page is shown
            self._fit_pending = True
            return
        self._fit_pending = False
        wanted = self.class_panel.preferred_width()
        if len(sizes) == 3 and sizes[0] < wanted:
            give = min(wanted - sizes[0], max(0, sizes[1] - 420))  # keep three thumbnails across
            self.splitter.setSizes([sizes[0] + give, sizes[1] - give, sizes[2]])

    def showEvent(self, event: QShowEvent) -> None:
        """Fit the class list to its names once the page is laid out."""
        super().showEvent(event)
        if self._fit_pending:
            QTimer.singleShot(0, self._fit_class_panel)

    def _on_session_project_opened(self, _project: object) -> None:
        project = self.session.project
        if project is None:  # an XRD project: the XRD page shows it
            return
        self.labeling.say(KEY_HINT)  # not the last project's "Undid the label of …"
        self._fit_class_panel()
        size = self.settings.thumbnail_size
        limit = max(0, self.settings.thumbnail_cache_mb) * 2**20
        self.loader.set_cache(ThumbnailCache(project.cache_dir / "thumbnails", size, limit), size)
        self.image_view.forget()
        self.model.set_project(project)
        self._load_findings()
        self._rebuild_filters()
        self.gallery.setFocus()

    def _on_batches_running_changed(self, running: bool) -> None:
        self.class_panel.setEnabled(not running)  # no class edit under a running batch (ADR 0039)

    def _on_session_project_closed(self) -> None:
        self.topk_bars.set_topk([], [], False)
        self.loader.set_cache(None)
        self.model.set_project(None)
        self.image_view.forget()
        self._rebuild_filters()

    def _on_session_labels_changed(self, ids: list[int]) -> None:
        self.model.update_labels(ids)
        current = self.session.current_id
        if current is not None and (not ids or current in ids):
            self._refresh_current(current)

    def _on_session_classes_changed(self) -> None:
        self._fit_class_panel()
        self.model.update_classes()
        self._rebuild_filters()
        if self.session.current_id is not None:
            self._refresh_current(self.session.current_id)

    def _on_session_samples_changed(self) -> None:
        self.model.reload()

    def _on_model_reset(self) -> None:
        self._update_count()
        current = self.session.current_id
        row = self.model.row_of(current) if current is not None else -1
        if row < 0 and self.model.rowCount() > 0:
            row = 0
        if row >= 0:
            self.labeling.go_to_row(row)
        elif self.session.project is None:
            self.image_view.show_image(None)

    def _on_session_current_changed(self, sample_id: int) -> None:
        row = self.model.row_of(sample_id)
        if row >= 0 and self.gallery.currentIndex().row() != row:
            self.gallery.select_row(row)
        self._refresh_current(sample_id)

    def _refresh_current(self, sample_id: int) -> None:
        """Show a sample in the large view with its file name, label and the label's source."""
        project = self.session.project
        if project is None or project.closed:
            return
        rows = project.rows(ids=[sample_id])
        if not rows:
            self.image_view.show_image(None)
            return
        _id, path, label = rows[0]
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        reason = self.model.unreadable_reason(sample_id)
        if reason is not None:
            info = _unreadable_info(reason)
        elif label is None:
            info = "<i>Unlabeled</i> · press 1–9 to label"
        else:
            classes = project.classes
            key = f" (key {classes.index(label) + 1})" if label in classes[:9] else ""
            last = project.label_history(sample_id)[-1]
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last.time))
            source = _SOURCE_TEXT.get(last.source, last.source)
            info = f"<b>{html.escape(label)}</b>{key} · {source}, {when}"
        info = audit_text(self.model.findings, path, label) + info  # first: the line is clipped on the right
        info += model_text(self.model.prediction(sample_id), label)
        if self.model.is_excluded(sample_id):
            info += " · <b>excluded from training</b> (X includes it)"
        self.topk_bars.set_topk(
            self.model.topk(sample_id), project.classes, self.model.is_unfamiliar(sample_id)
        )
        self.image_view.show_image(path, name, info)
        self.why.set_target(path)
        row = self.model.row_of(sample_id)
        if row >= 0:  # decode where the next key press will probably go: the next, or next unlabeled
            for ahead in (row + 1, self.model.next_unlabeled_row(row + 1, limit=64)):
                if 0 <= ahead < self.model.rowCount() and ahead != row:
                    self.image_view.prefetch(self.model.path(ahead))

    def _on_image_view_image_failed(self, path: str, reason: str) -> None:
        """The file became unreadable since its thumbnail was made: stop offering it for labeling."""
        current = self.session.current_id
        row = self.model.row_of(current) if current is not None else -1
        if current is None or row < 0 or self.model.path(row) != path:
            return
        self.model.mark_unreadable(current, reason)
        self.image_view.set_info(_unreadable_info(reason))
