"""What the model says about the pattern shown on the XRD page: identification in a worker, overlays.

:class:`XrdIdentifyController` runs :class:`~labeltune.workers.xrd.XrdPredictWorker` for the current pattern
(or all of them), keeps the identifications (saved with the project, so they are there when it reopens),
fills the "Model says" tab and draws what they explain on the plot: the phases' sticks, the fitted curve,
the unexplained residue and the selected phase's activation. The page owns the pattern shown: the
controller asks it (``shown``), so the two never disagree about it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from labeltune.core.xrd.library import Library, LibraryError, load_library
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.errors import show_error
from labeltune.ui.xrd_overlay import (
    activation_on_pattern,
    build_stick_sets,
    fitted_curve_on_pattern,
    unexplained_on_pattern,
)
from labeltune.ui.xrd_plot import PatternPlot
from labeltune.ui.xrd_results import PredictionPanel
from labeltune.workers.tasks import TaskController
from labeltune.workers.xrd import XrdPredictOutcome, XrdPredictWorker

log = logging.getLogger(__name__)


class XrdIdentifyController(QObject):
    """Identifies phases with the project's model and shows the answers on ``panel`` and ``plot``."""

    identified = Signal()  # new identifications arrived (the pattern list shows them in its tooltips)

    def __init__(
        self,
        panel: PredictionPanel,
        plot: PatternPlot,
        shown: Callable[[], tuple[Path | None, Pattern | None]],
        parent: QWidget,
    ) -> None:
        """Show predictions on ``panel`` and overlays on ``plot``; errors appear over ``parent``.

        ``shown()`` is the pattern the page shows: its path and its data (``None`` when unreadable).
        """
        super().__init__(parent)
        self.panel = panel
        self.plot = plot
        self._shown = shown
        self._widget = parent
        self.project: XrdProject | None = None
        self._predictions: dict[str, XrdPrediction] = {}
        self._libraries: dict[Path, Library | None] = {}
        self._preview = ""
        self._predict_folder: Path | None = None
        self.controller = TaskController(self)
        panel.stop_requested.connect(self.controller.stop)
        panel.phase_selected.connect(self._on_panel_phase_selected)
        self.controller.progressed.connect(panel.set_progress)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)

    def set_project(self, project: XrdProject | None) -> None:
        """Follow ``project``: its saved identifications, no library phase previewed."""
        self.project = project
        self._preview = ""
        self._predictions.clear()
        self._libraries.clear()
        if project is not None:
            self._predictions.update(project.load_predictions())  # the last identifications, if any

    def forget(self) -> None:
        """Drop the identifications shown (the wavelength or the model changed: they no longer hold)."""
        self._predictions.clear()

    def stop(self) -> None:
        """Stop a running identification (its answers belong to a project being closed)."""
        self.controller.stop()

    def shutdown(self) -> None:
        """Stop a running identification and wait for it (the window is closing)."""
        self.controller.shutdown()

    # -- identification -----------------------------------------------------------------------------
    def identify(self, all_patterns: bool = False) -> None:
        """Identify the phases in the current pattern (or all) with the project's model, in the background."""
        project = self.project
        if project is None or project.model_dir is None or self.controller.is_running():
            return
        paths = project.patterns() if all_patterns else [p for p in [self._shown()[0]] if p is not None]
        if not paths:
            return
        standard = None
        text = self.panel.standard_edit.text().strip()
        if text:
            from labeltune.core.errors import UnusableInputError
            from labeltune.core.xrd.internal_standard import parse_internal_standard

            try:
                standard = parse_internal_standard(text)
            except UnusableInputError as error:
                show_error(self._widget, "Internal standard not understood", str(error))
                return
        self._predict_folder = project.folder
        worker = XrdPredictWorker(
            project.model_dir,
            paths,
            project.wavelength,
            fit=True,
            activation=True,
            internal_standard=standard,
        )
        self.controller.start(worker)

    def _on_controller_finished(self, result: XrdPredictOutcome) -> None:
        project = self.project
        if project is None or project.folder != self._predict_folder or project.model_dir != result.run_dir:
            return  # another project or model by now: the results do not belong to it
        self.remember(result.predictions)
        if result.skipped:
            lines = "\n".join(f"{Path(path).name}: {reason}" for path, reason in result.skipped)
            show_error(
                self._widget, "Some patterns were not identified", f"{len(result.skipped)} skipped.", lines
            )

    def remember(self, predictions: list[XrdPrediction]) -> None:
        """Keep (and save with the project) identifications of the project's model; show them."""
        project = self.project
        if project is None:
            return
        for prediction in predictions:
            self._predictions[project.key(prediction.path)] = prediction
        try:
            project.save_predictions(predictions)
        except OSError as error:  # shown now; only the next opening will lack them
            log.warning("cannot save the identifications: %s", error)
        self.identified.emit()
        self.show_prediction()

    def _on_controller_failed(self, message: str, details: str) -> None:
        show_error(self._widget, "Identifying phases failed", message, details)

    def _on_controller_running_changed(self, _running: bool) -> None:
        self.update_state()

    def update_state(self) -> None:
        """Enable Identify and Stop as the model, the pattern and a running identification allow."""
        project = self.project
        self.panel.set_state(
            has_model=project is not None and project.model_dir is not None,
            has_pattern=self._shown()[0] is not None,
            busy=self.controller.is_running(),
        )

    def prediction(self, path: Path | None = None) -> XrdPrediction | None:
        """The model's prediction for ``path`` (default: the current pattern), if it has one."""
        path = self._shown()[0] if path is None else path
        if self.project is None or path is None:
            return None
        return self._predictions.get(self.project.key(path))

    def show_prediction(self) -> None:
        """Show the current pattern's prediction (or how to get one) and draw it on the plot."""
        prediction = self.prediction()
        note = ""
        if self.project is not None and self.project.model_dir is not None and self._shown()[0] is not None:
            note = "Press Identify phases to let the model name the phases in this pattern."
        self.panel.show_prediction(prediction, note)
        self.update_state()
        self.update_overlay()

    # -- overlay ------------------------------------------------------------------------------------
    def _library_at(self, folder: Path) -> Library | None:
        if folder not in self._libraries:
            try:
                self._libraries[folder] = load_library(folder)
            except LibraryError:
                self._libraries[folder] = None
        return self._libraries[folder]

    def _model_library(self) -> Library | None:
        """The model run's own copy of its library (``<run>/library``), if it has one."""
        model = None if self.project is None else self.project.model_dir
        return None if model is None else self._library_at(model / "library")

    def update_overlay(self) -> None:
        """Redraw sticks (label, prediction, previewed phase), fitted curve, residue and activation."""
        pattern, project = self._shown()[1], self.project
        if pattern is None or project is None:
            return
        prediction, model_library = self.prediction(), self._model_library()
        sticks = build_stick_sets(
            pattern.wavelength,
            project.labels(pattern.source),
            prediction,
            model_library,
            self._library_at(project.library_dir),
            self._preview,
        )
        self.plot.set_unexplained(
            unexplained_on_pattern(
                prediction,
                None if model_library is None else model_library.wavelength,
                pattern.wavelength,
            )
        )
        model_wavelength = None if model_library is None else model_library.wavelength
        fitted = fitted_curve_on_pattern(prediction, model_wavelength, pattern.wavelength)
        self.plot.set_calculated(*(fitted if fitted is not None else (None, None)))
        self.plot.set_phases(sticks)
        self._update_activation()

    def _update_activation(self) -> None:
        pattern, name = self._shown()[1], self.panel.selected_phase()
        model_library = self._model_library()
        activation = activation_on_pattern(
            self.prediction(),
            name,
            None if model_library is None else model_library.wavelength,
            None if pattern is None else pattern.wavelength,
        )
        if activation is None:
            self.plot.set_activation(None)
        else:
            self.plot.set_activation(activation[0], activation[1], name)

    def _on_panel_phase_selected(self, _name: str) -> None:
        self._update_activation()

    def preview(self, name: str) -> None:
        """Show the sticks of library phase ``name`` too ('': none), as the phase list offers it."""
        self._preview = name
        self.update_overlay()
