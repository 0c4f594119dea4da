"""The Label page: class list, thumbnail gallery and large image view; keys 1–9 label, Backspace undoes.

Keys (when the gallery or the image view has focus): 1–9 give the current image (or all selected images)
the n-th class and, with auto-advance on, move to the next unlabeled image; L opens a filterable list of
every class (for the 10th and later, or to label by name); 0 or Delete removes the label;
Backspace or Ctrl+Z undoes, Ctrl+Shift+Z (or Ctrl+Y) redoes; ←/→ move to the previous/next image
in the gallery's order.  Each label is committed to SQLite (``ProjectSession.set_label``) before the key
handler returns, so it is saved before the next key press is handled.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.thumbnails import ThumbnailCache
from labeltune.ui.class_chooser import ClassChooser
from labeltune.ui.class_panel import ClassPanel
from labeltune.ui.errors import show_error
from labeltune.ui.gallery import FilterCombo, GalleryView
from labeltune.ui.gallery_model import SORT_ORDERS, GalleryFilter, GalleryModel
from labeltune.ui.image_view import ImageView
from labeltune.ui.session import ProjectSession
from labeltune.ui.thumbnails import ThumbnailLoader

log = logging.getLogger(__name__)

KEY_HINT = "1–9 label · L any class · 0 unlabel · Backspace undo · ←/→ move · +/−/F zoom"
KEY_HELP = (
    "1–9: label with the n-th class · L: label as any class, by name or number · 0 or Delete: remove "
    "the label · Backspace or Ctrl+Z: undo · Ctrl+Shift+Z: redo · ←/→: previous/next image · "
    "+/−/F: zoom in/out/fit"
)
_SOURCE_TEXT = {"human": "by you", "import": "imported", "model": "accepted prediction"}
_DIGITS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(10)}


def _is_label_key(event: QKeyEvent, digits_only: bool = False) -> bool:
    """Whether a key labels or undoes: 0-9, L, Delete, Backspace, Ctrl+Z, Ctrl+Shift+Z, Ctrl+Y."""
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    key = event.key()
    if modifiers == Qt.KeyboardModifier.NoModifier:
        others = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_L)
        return key in _DIGITS or (not digits_only and key in others)
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    return (key, modifiers) in ((Qt.Key.Key_Z, ctrl), (Qt.Key.Key_Z, ctrl | shift), (Qt.Key.Key_Y, ctrl))


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
        self._updating = False  # a label change is being applied: ignore Qt's own current-row moves
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
        self.class_panel = ClassPanel(session)
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
        order = self.settings.gallery_order if self.settings.gallery_order in SORT_ORDERS else "name"
        self.order_combo.setCurrentIndex(list(SORT_ORDERS).index(order))
        self.class_chooser = ClassChooser(self)
        self.count_label = QLabel()
        self.count_label.setObjectName("galleryCountLabel")
        self.auto_advance_box = QCheckBox("Auto-advance")
        self.auto_advance_box.setChecked(self.settings.auto_advance)
        self.auto_advance_box.setToolTip("After a class key, jump to the next unlabeled image")
        self.status_label = QLabel(KEY_HINT)
        self.status_label.setObjectName("labelStatusLabel")
        self.status_label.setToolTip(KEY_HELP)
        # Its text changes with every key: it must not set the gallery's width (the splitter would move
        # and the thumbnails reflow), so a long message is clipped instead (the tooltip has the keys).
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._build_layout()

        self.gallery.installEventFilter(self)
        self.image_view.view.installEventFilter(self)
        # The bar's controls keep the keyboard after a click; labeling keys pressed there still label
        # (a combo box would otherwise take "1" as a search for the filter "1: <class>").
        for control in (self.filter_combo, self.order_combo, self.auto_advance_box, self.class_panel.tree):
            control.installEventFilter(self)
        self.gallery.selectionModel().currentChanged.connect(self._on_gallery_current_changed)
        self.gallery.doubleClicked.connect(self._on_gallery_double_clicked)
        self.gallery.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.gallery.customContextMenuRequested.connect(self._on_gallery_context_menu_requested)
        self.model.modelReset.connect(self._on_model_reset)
        self.model.rowsInserted.connect(self._update_count)
        self.model.rowsRemoved.connect(self._update_count)
        self.filter_combo.filter_chosen.connect(self._on_filter_combo_filter_chosen)
        self.order_combo.activated.connect(self._on_order_combo_activated)
        self.class_chooser.chosen.connect(self._on_class_chooser_chosen)
        self.class_chooser.finished.connect(self._on_class_chooser_finished)
        self.auto_advance_box.toggled.connect(self._on_auto_advance_box_toggled)
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
        bar = QHBoxLayout()
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
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addLayout(bar)
        middle_layout.addWidget(self.gallery, 1)
        middle_layout.addWidget(self.status_label)
        splitter = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.class_panel)
        splitter.addWidget(middle)
        splitter.addWidget(self.image_view)
        self.image_view.setMinimumWidth(300)
        self.class_panel.setMinimumWidth(170)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 2)
        splitter.setSizes([230, 560, 480])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

    # -- commands (MainWindow calls undo, redo and shutdown) ------------------------------------------
    def assign_class(self, number: int) -> None:
        """Give the current (or all selected) images the ``number``-th class (1-based); maybe advance."""
        project = self.session.project
        if project is None:
            return
        classes = project.classes
        if not 1 <= number <= len(classes):
            self._say(f"There is no class {number}: add classes in the list on the left")
            return
        self._apply_label(classes[number - 1], advance=self.settings.auto_advance)

    def label_as(self, name: str) -> None:
        """Give the current (or all selected) images class ``name`` (any class, also past the 9th)."""
        if self.session.project is not None:
            self._apply_label(name, advance=self.settings.auto_advance)

    def choose_class(self) -> None:
        """Open the filterable list of every class; the class picked labels the current image(s)."""
        project = self.session.project
        if project is None:
            return
        if not project.classes:
            self._say("No classes yet: add one in the list on the left")
            return
        ids = self._targets()
        if not ids:
            self._say("Select an image first")
            return
        targets = (
            f"{len(ids):,} images" if len(ids) > 1 else self.image_view.title_label.text() or "the image"
        )
        self.class_chooser.ask(project.classes, targets)

    def remove_label(self) -> None:
        """Remove the label of the current (or all selected) images."""
        if self.session.project is not None:
            self._apply_label(None, advance=False)

    def undo(self) -> None:
        """Undo the last label change and show the image it touched."""
        self._history_step(self.session.undo, "Nothing to undo", "Undid the label of")

    def redo(self) -> None:
        """Redo the last undone label change and show the image it touched."""
        self._history_step(self.session.redo, "Nothing to redo", "Redid the label of")

    def show_neighbour(self, step: int) -> None:
        """Show the previous (-1) or next (+1) image in the gallery's order."""
        rows = self.model.rowCount()
        if rows == 0:
            return
        current = self.gallery.currentIndex()
        row = current.row() + step if current.isValid() else 0
        self._go_to_row(max(0, min(rows - 1, row)))

    def set_filter(self, gallery_filter: GalleryFilter) -> None:
        """Show only the images ``gallery_filter`` lets through (a split is read in the background)."""
        self.filter_combo.choose(gallery_filter)

    def shutdown(self) -> None:
        """Stop background work (thumbnails, decoding, reading a split) before the window closes."""
        self.loader.shutdown()
        self.image_view.shutdown()
        self.filter_combo.shutdown()

    # -- labeling -----------------------------------------------------------------------------------
    def _targets(self) -> list[int]:
        selected = self.gallery.selected_sample_ids()
        if len(selected) > 1:
            return selected
        current = self.session.current_id
        return [current] if current is not None else selected

    def _apply_label(self, label: str | None, advance: bool) -> None:
        ids = self._targets()
        if not ids:
            self._say("Select an image first")
            return
        unreadable = [i for i in ids if self.model.unreadable_reason(i) is not None]
        if label is not None and unreadable:  # an unreadable file is never labeled (nor trained on)
            ids = [i for i in ids if i not in unreadable]
            if not ids:
                reason = self.model.unreadable_reason(unreadable[0])
                self._say(f"Not labeled: this file cannot be read ({reason})")
                return
        current = self.session.current_id
        last = max(ids, key=self.model.insertion_row)  # the last target in the gallery's order
        if not self._run_updating(lambda: self.session.set_label(ids, label)):
            return
        message = f"{len(ids):,} image{'s' if len(ids) != 1 else ''} → {label or 'no label'}"
        if label is not None and unreadable:
            message += f" · {len(unreadable):,} unreadable left out"
        after = self.model.insertion_row(last) + (1 if self.model.row_of(last) >= 0 else 0)
        row = self.model.next_unlabeled_row(after) if advance and label is not None else -1
        if advance and label is not None and row < 0:
            message += " · every image in this view is labeled"
        if row < 0:  # stay, or (when the image left the filter) take the one that followed it
            row = self.model.row_of(current) if current is not None else -1
            if row < 0:
                row = min(self.model.insertion_row(last), self.model.rowCount() - 1)
        self._say(message)
        if row >= 0:
            self._go_to_row(row)

    def _history_step(self, step: Callable[[], int | None], nothing: str, done: str) -> None:
        if self.session.project is None:
            return
        result: list[int | None] = []
        self._run_updating(lambda: result.append(step()))
        sample_id = result[0] if result else None
        if sample_id is None:
            self._say(nothing)
            return
        row = self.model.row_of(sample_id)
        if row >= 0:
            self._go_to_row(row)
        self.session.set_current(sample_id)
        self._refresh_current(sample_id)
        self._say(f"{done} {self.image_view.title_label.text()}")

    def _go_to_row(self, row: int) -> None:
        """Select ``row`` alone and show it (also when Qt already moved the current index there)."""
        if 0 <= row < self.model.rowCount():
            self.gallery.select_row(row)
            self.session.set_current(self.model.sample_id(row))

    def _run_updating(self, action: Callable[[], object]) -> bool:
        self._updating = True
        try:
            action()
        except Exception as error:  # a failed write must be seen, and the page must keep working
            log.exception("label change failed")
            show_error(self, "Cannot change the label", str(error))
            return False
        finally:
            self._updating = False
        return True

    def _say(self, message: str) -> None:
        self.status_label.setText(message)

    # -- keys ---------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Label keys in the gallery and the image view, and from the bar's controls above the gallery."""
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return super().eventFilter(watched, event)
        if watched is self.gallery or watched is self.image_view.view:
            return self._handle_key(event, in_gallery=watched is self.gallery)
        in_bar = watched is self.filter_combo or watched is self.auto_advance_box
        # In the class list Delete and Backspace keep their meaning there (delete the class): digits label.
        in_classes = watched is self.class_panel.tree
        if (in_bar or in_classes) and _is_label_key(event, digits_only=in_classes):
            self.gallery.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return self._handle_key(event, in_gallery=True)
        return super().eventFilter(watched, event)

    def _handle_key(self, event: QKeyEvent, in_gallery: bool) -> bool:
        key = event.key()
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
        if (key, modifiers) in ((Qt.Key.Key_Z, ctrl | shift), (Qt.Key.Key_Y, ctrl)):
            self.redo()
        elif key == Qt.Key.Key_Z and modifiers == ctrl:
            self.undo()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal) and modifiers in (
            shift,
            Qt.KeyboardModifier.NoModifier,
        ):
            self.image_view.view.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus and modifiers == Qt.KeyboardModifier.NoModifier:
            self.image_view.view.zoom_by(0.8)
        elif key == Qt.Key.Key_F and modifiers == Qt.KeyboardModifier.NoModifier:
            self.image_view.view.fit()
        elif modifiers != Qt.KeyboardModifier.NoModifier:
            return False  # Shift/Ctrl + arrows extend the selection in the gallery
        elif key in _DIGITS and _DIGITS[key] > 0:
            self.assign_class(_DIGITS[key])
        elif key == Qt.Key.Key_L:
            self.choose_class()
        elif key in (Qt.Key.Key_0, Qt.Key.Key_Delete):
            self.remove_label()
        elif key == Qt.Key.Key_Backspace:
            self.undo()
        elif key == Qt.Key.Key_Left or (key == Qt.Key.Key_Up and not in_gallery):
            self.show_neighbour(-1)
        elif key == Qt.Key.Key_Right or (key == Qt.Key.Key_Down and not in_gallery):
            self.show_neighbour(+1)
        else:
            return False
        return True

    # -- filters ------------------------------------------------------------------------------------
    def _rebuild_filters(self) -> None:
        unfamiliar = self.model.unfamiliar_count()
        if not self.filter_combo.rebuild(self.session.project, self.model.filter, unfamiliar):
            self.model.set_filter(GalleryFilter("all"))  # the class shown was renamed or deleted

    def _on_session_predictions_changed(self) -> None:
        current = self.gallery.currentIndex()
        sample_id = self.model.sample_id(current.row()) if current.isValid() else None
        self.model.load_predictions()  # the newest checked run's answers, and its unfamiliar images
        self._rebuild_filters()
        if sample_id is not None:
            self._on_session_current_changed(sample_id)

    def _on_filter_combo_filter_chosen(self, gallery_filter: GalleryFilter, paths: frozenset[str]) -> None:
        self.model.set_filter(gallery_filter, paths)
        self.gallery.setFocus(Qt.FocusReason.OtherFocusReason)  # labeling goes on with the keys

    def _on_order_combo_activated(self, _index: int) -> None:
        order = str(self.order_combo.currentData())
        current = self.session.current_id
        self.model.set_order(order)  # type: ignore[arg-type]
        self.settings.gallery_order = order
        self.settings.save()
        row = self.model.row_of(current) if current is not None else -1
        if row >= 0:
            self._go_to_row(row)
            self.gallery.scrollTo(self.model.index(row))
        self.gallery.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_class_chooser_chosen(self, name: str) -> None:
        self.label_as(name)

    def _on_class_chooser_finished(self, _result: int) -> None:
        self.gallery.setFocus(Qt.FocusReason.PopupFocusReason)  # labeling goes on with the keys

    def _on_class_panel_class_activated(self, name: object) -> None:
        self.set_filter(GalleryFilter("unlabeled") if name is None else GalleryFilter("class", str(name)))

    def _update_count(self, *_args: object) -> None:
        project = self.session.project
        shown = self.model.rowCount()
        total = project.sample_count() if project is not None and not project.closed else 0
        self.count_label.setText(f"{shown:,} of {total:,} images" if project is not None else "")

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
        self._say(KEY_HINT)  # not the last project's "Undid the label of …"
        self._fit_class_panel()
        size = self.settings.thumbnail_size
        self.loader.set_cache(ThumbnailCache(project.cache_dir / "thumbnails", size), size)
        self.image_view.forget()
        self.model.set_project(project)
        self._rebuild_filters()
        self.gallery.setFocus()

    def _on_session_project_closed(self) -> None:
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
            self._go_to_row(row)
        elif self.session.project is None:
            self.image_view.show_image(None)

    def _on_gallery_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._updating or not current.isValid():
            return
        self.session.set_current(self.model.sample_id(current.row()))

    def _on_gallery_context_menu_requested(self, position: QPoint) -> None:
        project = self.session.project
        if project is None or not self._targets():
            return
        menu = QMenu(self)
        for i, name in enumerate(project.classes):
            action = menu.addAction(f"Label as {name}", functools.partial(self.label_as, name))
            if i < 9:
                action.setShortcut(QKeySequence(str(i + 1)))
        menu.addSeparator()
        menu.addAction("Remove label", self.remove_label).setShortcut(QKeySequence("0"))
        menu.popup(self.gallery.viewport().mapToGlobal(position))

    def _on_gallery_double_clicked(self, _index: QModelIndex) -> None:
        self.image_view.view.setFocus()  # keys keep working there; the wheel zooms

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
        info += model_text(self.model.prediction(sample_id), label)
        self.image_view.show_image(path, name, info)
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

    def _on_auto_advance_box_toggled(self, checked: bool) -> None:
        self.settings.auto_advance = checked
        try:
            self.settings.save()
        except OSError as error:
            show_error(self, "Cannot save settings", str(error))
