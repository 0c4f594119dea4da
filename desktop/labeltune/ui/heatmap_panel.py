"""The Label tab's "Why" controls: a Grad-CAM heatmap over the large image, computed off the GUI thread.

The heatmap is the evidence for the predicted class, or for a class picked in the combo, according to the
run whose predictions the gallery shows (the newest checked run). It is computed by
:func:`labeltune.core.explain.explain_image` in a :class:`FunctionWorker`; one job at a time, and a new
image or class asked for meanwhile is computed when the running one ends (only the newest request).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QToolButton, QWidget

from labeltune.ui.image_view import ImageView
from labeltune.workers.tasks import FunctionWorker, TaskController

PREDICTED = "predicted class"
#: The heatmap is computed at most this wide or high; the view stretches it over the image.
MAX_SIDE = 1024
NO_RUN_TIP = "Check a run's predictions (Results tab) to see why its model says what it says"
WHY_TIP = "Show where the model sees the class: a Grad-CAM heatmap over the image (red: strong evidence)"


def run_classes(run_dir: Path) -> list[str]:
    """The classes in an image run's ``config.json`` (``[]`` if it cannot be read)."""
    try:
        data = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        return [str(c) for c in data["model"]["classes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def predicted_run_dir(project: Any, run_id: str | None) -> Path | None:
    """The folder of the project's run ``run_id`` (the one whose predictions are shown), if recorded."""
    if project is None or run_id is None:
        return None
    return next((Path(run["path"]) for run in project.runs() if run["id"] == run_id), None)


def heat_image(heatmap: Any) -> QImage:
    """An RGBA QImage of a 0..1 heatmap, in the colours ``labeltune explain`` uses."""
    from labeltune.core.explain_render import heat_colours

    rgba = heat_colours(heatmap)
    height, width = rgba.shape[:2]
    image = QImage(rgba.tobytes(), width, height, 4 * width, QImage.Format.Format_RGBA8888)
    return image.copy()  # own the pixels: the bytes above are temporary


class HeatmapPanel(QWidget):
    """The "Why" toggle, class combo and opacity slider for ``view``'s image."""

    def __init__(
        self, view: ImageView, run_source: Callable[[], Path | None], parent: QWidget | None = None
    ) -> None:
        """Controls for ``view``; they add themselves to its control row.

        ``run_source`` names the run whose model explains (asked again for each image: the gallery's
        predicted run changes when a check finishes).
        """
        super().__init__(parent)
        self.view = view
        self._run_source = run_source
        self.why_button = QToolButton()
        self.why_button.setText("Why")
        self.why_button.setCheckable(True)
        self.why_button.setToolTip(WHY_TIP)
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class whose evidence is shown")
        # as wide as "predicted class" from the start: it is filled only once a run is checked (it was
        # sized empty and read "predicte"); longer class names are elided, their list is wider
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.class_combo.setMinimumContentsLength(len(PREDICTED) - 4)  # average letters are wider
        self.class_combo.view().setTextElideMode(Qt.TextElideMode.ElideNone)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(100 * view.view.overlay_opacity()))
        self.opacity_slider.setMaximumWidth(120)
        self.opacity_slider.setToolTip("Heatmap opacity")
        self.note_label = QLabel("")
        self.note_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.why_button, self.class_combo, self.opacity_slider):
            layout.addWidget(widget)
        layout.addWidget(self.note_label, 1)
        view.add_controls(self)

        self.controller = TaskController(self)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.stopped.connect(self._start_pending)
        self.why_button.toggled.connect(self._on_why_button_toggled)
        self.class_combo.activated.connect(self._on_class_combo_activated)
        self.opacity_slider.valueChanged.connect(self._on_opacity_slider_value_changed)
        view.image_loaded.connect(self._on_view_image_loaded)
        self._path: str | None = None
        self._run_dir: Path | None = None
        self._pending: tuple[str, Path, str] | None = None  # asked for while a job ran
        self._shown: tuple[str, Path, str] | None = None  # what the overlay shows
        self._update_enabled()

    # -- what to explain ------------------------------------------------------------------------------
    def set_target(self, path: str | None) -> None:
        """The image shown (``None``: none)."""
        self._path = path
        self._refresh_run()
        self._request()

    def _refresh_run(self) -> None:
        run_dir = self._run_source()
        if run_dir != self._run_dir:
            self._run_dir = run_dir
            self._fill_classes(run_classes(run_dir) if run_dir is not None else [])
        self._update_enabled()

    def class_name(self) -> str | None:
        """The class asked for (``None``: the predicted one)."""
        text = self.class_combo.currentText()
        return None if text in ("", PREDICTED) else text

    def shutdown(self) -> None:
        """Stop and wait for a running job (the window is closing)."""
        self.controller.shutdown()

    # -- jobs -----------------------------------------------------------------------------------------
    def _request(self) -> None:
        """Compute the heatmap for what is asked, if Why is on and the image is shown."""
        if not self.why_button.isChecked() or self._path is None or self._run_dir is None:
            self.view.view.set_overlay(None)
            self._shown = None
            return
        if self.view.path() != self._path or self.view.state() != "ready":
            return  # computed when the image has been decoded (image_loaded)
        wanted = (self._path, self._run_dir, self.class_combo.currentText())
        if wanted == self._shown:
            return
        self.view.view.set_overlay(None)
        self._pending = wanted
        self._start_pending()

    def _start_pending(self) -> None:
        if self._pending is None or self.controller.is_running():
            return
        path, run_dir, _text = job = self._pending
        self._pending = None
        class_name = self.class_name()
        self.note_label.setText("computing the heatmap…")

        def work(
            _progress: Callable[[Any], None], _stop: threading.Event
        ) -> tuple[tuple[str, Path, str], Any]:
            from labeltune.core import explain

            return job, explain.explain_image(run_dir, path, class_name, max_side=MAX_SIDE)

        self.controller.start(FunctionWorker(work))

    def _on_controller_finished(self, result: tuple[tuple[str, Path, str], Any]) -> None:
        job, explanation = result
        if self._pending is not None:  # the user moved on meanwhile: this one is stale
            self._start_pending()
            return
        if (
            job != (self._path, self._run_dir, self.class_combo.currentText())
            or not self.why_button.isChecked()
        ):
            return
        self.view.view.set_overlay(heat_image(explanation.heatmap))
        self._shown = job
        self.note_label.setText(f"{explanation.class_name}: {100 * explanation.probability:.0f} %")
        self.note_label.setToolTip(
            f"Grad-CAM on the {explanation.layer} layer of the model; red: what raised the score of "
            f"{explanation.class_name} the most"
        )

    def _on_controller_failed(self, message: str, _details: str) -> None:
        self.note_label.setText(f"no heatmap: {message}")
        self._start_pending()

    # -- controls -------------------------------------------------------------------------------------
    def _fill_classes(self, classes: list[str]) -> None:
        current = self.class_combo.currentText()
        self.class_combo.clear()
        self.class_combo.addItems([PREDICTED, *classes])
        if current in classes:
            self.class_combo.setCurrentText(current)
        self._shown = None

    def _update_enabled(self) -> None:
        usable = self._run_dir is not None
        self.why_button.setEnabled(usable)
        self.why_button.setToolTip(WHY_TIP if usable else NO_RUN_TIP)
        on = usable and self.why_button.isChecked()
        self.class_combo.setEnabled(on)
        self.opacity_slider.setEnabled(on)
        if not on:
            self.note_label.clear()

    def _on_why_button_toggled(self, _checked: bool) -> None:
        self._update_enabled()
        self._request()

    def _on_class_combo_activated(self, _index: int) -> None:
        self._request()

    def _on_opacity_slider_value_changed(self, value: int) -> None:
        self.view.view.set_overlay_opacity(value / 100.0)

    def _on_view_image_loaded(self, path: str) -> None:
        if path == self._path:
            self._shown = None  # set_image removed the overlay
            self._refresh_run()
            self._request()
