"""Labeling with the keyboard on the Label page: which key does what, and what a label change does next.

:class:`LabelingController` gives the current (or all selected) images a class, removes it, undoes and
redoes, moves through the gallery, and reads the keys that do all this in the gallery, the large view and
the bar above the gallery. Each label is committed to SQLite (``ProjectSession.set_label``) before the key
handler returns, so it is saved before the next key press is handled; a selection of more than
``BACKGROUND_ABOVE`` images is one transaction written by a worker (ui/label_batch.py, docs/adr/0039),
and the keys wait for it. A selection is one undo step. The page lays the widgets out and
keeps them in step with the session; this class holds what a key press means.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMenu, QWidget

from labeltune.core.domain import LabelChange
from labeltune.core.project import LabelSource
from labeltune.ui.class_chooser import ClassChooser
from labeltune.ui.errors import show_error
from labeltune.ui.gallery import GalleryView
from labeltune.ui.gallery_model import GalleryModel
from labeltune.ui.image_view import ImageView
from labeltune.ui.label_batch import BACKGROUND_ABOVE, LabelBatchRunner
from labeltune.ui.session import ProjectSession

log = logging.getLogger(__name__)

KEY_HINT = "1–9 label · Space accept · X exclude · 0 unlabel · Backspace undo · ←/→ move · +/−/F zoom"
KEY_HELP = (
    "1–9: label with the n-th class · L: label as any class, by name or number · Space: accept the "
    "model's prediction and go on · X: exclude from training (again: include) · 0 or Delete: remove "
    "the label · Backspace or Ctrl+Z: undo · Ctrl+Shift+Z: redo · ←/→: previous/next image · "
    "+/−/F: zoom in/out/fit"
)
_DIGITS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(10)}


def is_label_key(event: QKeyEvent, digits_only: bool = False) -> bool:
    """Whether a key labels or undoes: 0-9, L, Space, X, Delete, Backspace, Ctrl+Z, Ctrl+Shift+Z, Ctrl+Y."""
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    key = event.key()
    if modifiers == Qt.KeyboardModifier.NoModifier:
        others = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace, Qt.Key.Key_L, Qt.Key.Key_Space, Qt.Key.Key_X)
        return key in _DIGITS or (not digits_only and key in others)
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    return (key, modifiers) in ((Qt.Key.Key_Z, ctrl), (Qt.Key.Key_Z, ctrl | shift), (Qt.Key.Key_Y, ctrl))


class LabelingController(QObject):
    """What the labeling keys, the gallery's context menu and the class chooser do to the open project."""

    sample_revisited = Signal(int)  # undo/redo showed this sample again: the large view re-reads it
    excluded_changed = Signal()  # X excluded or included images: the filters' counts change

    def __init__(
        self,
        session: ProjectSession,
        model: GalleryModel,
        gallery: GalleryView,
        image_view: ImageView,
        class_chooser: ClassChooser,
        status_label: QLabel,
        parent: QWidget,
    ) -> None:
        """Label through ``session``; ``gallery`` shows ``model``; messages go to ``status_label``."""
        super().__init__(parent)
        self.session = session
        self.settings = session.settings
        self.model = model
        self.gallery = gallery
        self.image_view = image_view
        self.class_chooser = class_chooser
        self.status_label = status_label
        self._widget = parent  # errors and the context menu appear over it
        self._bar: tuple[QWidget, ...] = ()
        self._class_list: QWidget | None = None
        self.updating = False  # a label change is being applied: ignore Qt's own current-row moves
        self.batches = LabelBatchRunner(status_label, parent)  # big selections: one worker at a time
        gallery.installEventFilter(self)
        image_view.view.installEventFilter(self)
        gallery.selectionModel().currentChanged.connect(self._on_gallery_current_changed)
        gallery.doubleClicked.connect(self._on_gallery_double_clicked)
        gallery.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        gallery.customContextMenuRequested.connect(self._on_gallery_context_menu_requested)
        class_chooser.chosen.connect(self._on_class_chooser_chosen)
        class_chooser.finished.connect(self._on_class_chooser_finished)
        session.project_closing.connect(self._on_session_project_closing)

    def watch(self, bar: tuple[QWidget, ...], class_list: QWidget) -> None:
        """Take labeling keys pressed in the ``bar``'s controls, and digits pressed in ``class_list``.

        The bar's controls keep the keyboard after a click; labeling keys pressed there still label (a combo
        box would otherwise take "1" as a search for the filter "1: <class>"). In the class list Delete and
        Backspace keep their meaning there (delete the class): digits label.
        """
        self._bar, self._class_list = bar, class_list
        for control in (*bar, class_list):
            control.installEventFilter(self)

    # -- commands -----------------------------------------------------------------------------------
    def assign_class(self, number: int) -> None:
        """Give the current (or all selected) images the ``number``-th class (1-based); maybe advance."""
        project = self.session.project
        if project is None:
            return
        classes = project.classes
        if not 1 <= number <= len(classes):
            self.say(f"There is no class {number}: add classes in the list on the left")
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
            self.say("No classes yet: add one in the list on the left")
            return
        ids = self.targets()
        if not ids:
            self.say("Select an image first")
            return
        targets = (
            f"{len(ids):,} images" if len(ids) > 1 else self.image_view.title_label.text() or "the image"
        )
        self.class_chooser.ask(project.classes, targets)

    def remove_label(self) -> None:
        """Remove the label of the current (or all selected) images."""
        if self.session.project is not None:
            self._apply_label(None, advance=False)

    def accept_prediction(self) -> None:
        """Label the current (or all selected) images as the model predicts them, and go to the next one.

        The label is recorded with source ``accepted`` (the model suggested it, a person confirmed it);
        images the newest checked run has no prediction for are left alone. Undo takes it back.
        """
        if self.session.project is None:
            return
        ids = self.targets()
        if self.model.filter.kind == "label_errors":  # a likely label error: take the audit's suggestion
            self._accept_suggestion(ids)
            return
        changes: dict[int, str | None] = {
            i: found[0] for i in ids if (found := self.model.prediction(i)) is not None
        }
        if not changes:
            self.say("No prediction to accept: Results ▸ Check all images predicts every image")
            return
        self._apply(changes, advance=True, source="accepted")

    def _accept_suggestion(self, ids: list[int]) -> None:
        """Give likely label errors the class the audit suggests (source ``accepted``), leaving the list."""
        findings, rows = self.model.findings, [self.model.row_of(i) for i in ids]
        changes: dict[int, str | None] = {
            i: suggested
            for i, row in zip(ids, rows, strict=True)
            if row >= 0 and findings is not None and (suggested := findings.suggestion(self.model.path(row)))
        }
        if not changes:
            self.say("No suggestion for this image")
            return
        self._apply(changes, advance=False, source="accepted")
        names = " / ".join(sorted({str(label) for label in changes.values()}))
        self.say(f"Took the suggested class: {len(changes):,} image(s) → {names} · Backspace undoes")

    def toggle_excluded(self) -> None:
        """Exclude the current (or all selected) images from training; include them again if all were."""
        project = self.session.project
        ids = self.targets()
        if project is None or not ids:
            return
        if self.batches.refuse_if_busy():
            return
        exclude = not all(self.model.is_excluded(i) for i in ids)
        if not self._run_updating(lambda: self.model.update_excluded(project.set_excluded(ids, exclude))):
            return
        self.excluded_changed.emit()
        count = f"{len(ids):,} image{'s' if len(ids) != 1 else ''}"
        self.say(
            f"{count} excluded from training · X includes again"
            if exclude
            else f"{count} included in training again"
        )
        current = self.session.current_id
        if current is not None:
            self.sample_revisited.emit(current)

    def undo(self) -> None:
        """Undo the last label change (a selection: all of it) and show the image it touched."""
        self._history_step(redo=False)

    def redo(self) -> None:
        """Redo the last undone label change and show the image it touched."""
        self._history_step(redo=True)

    def show_neighbour(self, step: int) -> None:
        """Show the previous (-1) or next (+1) image in the gallery's order."""
        rows = self.model.rowCount()
        if rows == 0:
            return
        current = self.gallery.currentIndex()
        row = current.row() + step if current.isValid() else 0
        self.go_to_row(max(0, min(rows - 1, row)))

    def go_to_row(self, row: int) -> None:
        """Select ``row`` alone and show it (also when Qt already moved the current index there)."""
        if 0 <= row < self.model.rowCount():
            self.gallery.select_row(row)
            self.session.set_current(self.model.sample_id(row))

    def say(self, message: str) -> None:
        """Show ``message`` in the line under the gallery."""
        self.status_label.setText(message)

    def targets(self) -> list[int]:
        """The images a key acts on: the selection when several are selected, else the current one."""
        selected = self.gallery.selected_sample_ids()
        if len(selected) > 1:
            return selected
        current = self.session.current_id
        return [current] if current is not None else selected

    # -- labeling -----------------------------------------------------------------------------------
    def _apply_label(self, label: str | None, advance: bool) -> None:
        ids = self.targets()
        if not ids:
            self.say("Select an image first")
            return
        self._apply(dict.fromkeys(ids, label), advance, "human")

    def _apply(self, changes: dict[int, str | None], advance: bool, source: LabelSource) -> None:
        """Give each sample its label (``None``: remove it), then stay or move on (see the module doc).

        One transaction and one undo step for all of them; many are written by a worker (ADR 0039).
        """
        if self.batches.refuse_if_busy():
            return
        ids = list(changes)
        unreadable = [
            i for i in ids if changes[i] is not None and self.model.unreadable_reason(i) is not None
        ]
        if unreadable:  # an unreadable file is never labeled (nor trained on)
            ids = [i for i in ids if i not in unreadable]
            if not ids:
                reason = self.model.unreadable_reason(unreadable[0])
                self.say(f"Not labeled: this file cannot be read ({reason})")
                return
        wanted = {i: changes[i] for i in ids}
        current = self.session.current_id
        last = ids[-1]  # the last target in the gallery's order (targets() lists them in that order)
        finish = functools.partial(self._after_apply, wanted, advance, source, len(unreadable), current, last)
        project = self.session.require()
        if len(wanted) > BACKGROUND_ABOVE:  # one transaction of seconds: in a worker (ui/label_batch.py)
            self.batches.run(
                f"Labeling {len(wanted):,} images…",
                lambda progress, stop: project.assign_labels(
                    wanted, source, progress=progress, stop_event=stop
                ),
                lambda _changed: self._after_batch(project, list(wanted), finish),
            )
        elif self._run_updating(lambda: self.session.assign_labels(wanted, source)):
            finish()

    def _after_batch(self, project: object, ids: list[int], finish: Callable[[], None]) -> None:
        """A worker wrote a big selection: the gallery updates once, then the page moves on."""
        if self.session.project is project:  # (not another project opened meanwhile)
            self.session.notify_labels_changed(ids)
            finish()

    def _after_apply(
        self,
        wanted: dict[int, str | None],
        advance: bool,
        source: LabelSource,
        unreadable: int,
        current: int | None,
        last: int,
    ) -> None:
        """Say what a label change did and stay or move on (``last``: its last image in gallery order)."""
        if self.session.project is None:
            return
        ids, groups = list(wanted), dict.fromkeys(wanted.values())
        labeling = any(label is not None for label in groups)
        names = " / ".join(label or "no label" for label in groups)
        accepted = "Accepted: " if source == "accepted" else ""
        message = f"{accepted}{len(ids):,} image{'s' if len(ids) != 1 else ''} → {names}"
        if unreadable:
            message += f" · {unreadable:,} unreadable left out"
        after = self.model.insertion_row(last) + (1 if self.model.row_of(last) >= 0 else 0)
        row = self.model.next_unlabeled_row(after) if advance and labeling else -1
        if advance and labeling and row < 0:
            message += " · every image in this view is labeled"
        if row < 0:  # stay, or (when the image left the filter) take the one that followed it
            row = self.model.row_of(current) if current is not None else -1
            if row < 0:
                row = min(self.model.insertion_row(last), self.model.rowCount() - 1)
        self.say(message)
        if row >= 0:
            self.go_to_row(row)

    def _history_step(self, redo: bool) -> None:
        project = self.session.project
        if project is None or self.batches.refuse_if_busy():
            return
        size = project.next_undo_size(redo)
        done = "Redid" if redo else "Undid"
        if size > BACKGROUND_ABOVE:  # a big selection's undo is as long as its labeling: in a worker
            self.batches.run(
                f"{'Redoing' if redo else 'Undoing'} the labels of {size:,} images…",
                lambda _progress, _stop: project.redo() if redo else project.undo(),
                lambda change: self._after_history_batch(project, change, done, size),
            )
            return
        result: list[int | None] = []
        self._run_updating(lambda: result.append(self.session.redo() if redo else self.session.undo()))
        self._show_history_step(result[0] if result else None, done, size)

    def _after_history_batch(self, project: object, change: object, done: str, size: int) -> None:
        if self.session.project is project and isinstance(change, LabelChange):
            self._show_history_step(self.session.announce_change(change), done, size)

    def _show_history_step(self, sample_id: int | None, done: str, size: int) -> None:
        if sample_id is None:
            self.say(f"Nothing to {'redo' if done == 'Redid' else 'undo'}")
            return
        row = self.model.row_of(sample_id)
        if row >= 0:
            self.go_to_row(row)
        self.session.set_current(sample_id)
        self.sample_revisited.emit(sample_id)
        what = (
            f"the labels of {size:,} images"
            if size > 1
            else f"the label of {self.image_view.title_label.text()}"
        )
        self.say(f"{done} {what}")

    def _run_updating(self, action: Callable[[], object]) -> bool:
        self.updating = True
        try:
            action()
        except Exception as error:  # a failed write must be seen, and the page must keep working
            log.exception("label change failed")
            show_error(self._widget, "Cannot change the label", str(error))
            return False
        finally:
            self.updating = False
        return True

    # -- keys ---------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Label keys in the gallery and the image view, and from the bar's controls above the gallery."""
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return super().eventFilter(watched, event)
        if watched is self.gallery or watched is self.image_view.view:
            return self._handle_key(event, in_gallery=watched is self.gallery)
        in_bar = any(watched is control for control in self._bar)
        in_classes = watched is self._class_list
        if (in_bar or in_classes) and is_label_key(event, digits_only=in_classes):
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
        elif key == Qt.Key.Key_Space:
            self.accept_prediction()
        elif key == Qt.Key.Key_X:
            self.toggle_excluded()
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

    # -- gallery and chooser events -----------------------------------------------------------------
    def _on_gallery_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self.updating or not current.isValid():
            return
        self.session.set_current(self.model.sample_id(current.row()))

    def _on_gallery_context_menu_requested(self, position: QPoint) -> None:
        project = self.session.project
        if project is None or not self.targets():
            return
        menu = QMenu(self._widget)
        for i, name in enumerate(project.classes):
            action = menu.addAction(f"Label as {name}", functools.partial(self.label_as, name))
            if i < 9:
                action.setShortcut(QKeySequence(str(i + 1)))
        menu.addSeparator()
        menu.addAction("Accept the model's prediction", self.accept_prediction).setShortcut(
            QKeySequence("Space")
        )
        menu.addAction("Exclude from training / include", self.toggle_excluded).setShortcut(QKeySequence("X"))
        menu.addAction("Remove label", self.remove_label).setShortcut(QKeySequence("0"))
        menu.popup(self.gallery.viewport().mapToGlobal(position))

    def _on_gallery_double_clicked(self, _index: QModelIndex) -> None:
        self.image_view.view.setFocus()  # keys keep working there; the wheel zooms

    def _on_class_chooser_chosen(self, name: str) -> None:
        self.label_as(name)

    def _on_session_project_closing(self, _project: object) -> None:
        self.batches.wait_for_job()  # a batch being written is committed (or rolled back) whole first

    def _on_class_chooser_finished(self, _result: int) -> None:
        self.gallery.setFocus(Qt.FocusReason.PopupFocusReason)  # labeling goes on with the keys
