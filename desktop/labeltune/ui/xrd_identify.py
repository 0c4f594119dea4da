"""What the model says about the pattern shown on the XRD page: identification in a worker, overlays.

:class:`XrdIdentifyController` runs :class:`~labeltune.workers.xrd.XrdPredictWorker` for the current pattern
(or all of them), keeps the identifications (saved with the project, so they are there when it reopens),
fills the "Model says" tab and draws what they explain on the plot: the phases' sticks, the fitted curve,
the unexplained residue and the selected phase's activation. The page owns the pattern shown: the
controller asks it (``shown``), so the two never disagree about it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from labeltune.core.xrd.alternatives import phase_set_profile
from labeltune.core.xrd.library import Library, LibraryError, load_library
from labeltune.core.xrd.library_match import model_library_problem
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.errors import show_error
from labeltune.ui.xrd_overlay import (
    activation_on_pattern,
    build_stick_sets,
    fitted_curve_on_pattern,
    prediction_of_alternative,
    unexplained_on_pattern,
)
from labeltune.ui.xrd_plot import PatternPlot
from labeltune.ui.xrd_results import PredictionPanel
from labeltune.workers.tasks import FunctionWorker, TaskController
from labeltune.workers.xrd import XrdPredictOutcome, XrdPredictWorker

log = logging.getLogger(__name__)

PROFILES_KEPT = 32
"""Fitted profiles of clicked hypotheses kept (a click back and forth is not fitted again)."""
ProfileKey = tuple[str, frozenset[str]]


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
        panel.alternative_selected.connect(self._on_panel_alternative_selected)
        # a clicked hypothesis's profile is fitted on demand, in a worker (core/xrd/alternatives.py)
        self.fit_controller = TaskController(self)
        self._profiles: OrderedDict[ProfileKey, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.fit_controller.finished.connect(self._on_fit_controller_finished)
        self.fit_controller.failed.connect(self._on_fit_controller_failed)
        self.controller.progressed.connect(panel.set_progress)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)
        self.controller.running_changed.connect(self._on_controller_running_changed)

    def set_project(self, project: XrdProject | None) -> None:
        """Follow ``project``: its saved identifications, no library phase previewed.

        Another project's samples are other samples: its standard and particle size are not carried over.
        """
        if project is None or self.project is None or project.folder != self.project.folder:
            self.panel.sample_fields.clear()
        self.project = project
        self._preview = ""
        self._predictions.clear()
        self._libraries.clear()
        self._profiles.clear()
        if project is not None:
            self._predictions.update(project.load_predictions())  # the last identifications, if any

    def forget(self) -> None:
        """Drop the identifications shown (the wavelength or the model changed: they no longer hold)."""
        self._predictions.clear()
        self._profiles.clear()

    def stop(self) -> None:
        """Stop a running identification (its answers belong to a project being closed)."""
        self.controller.stop()
        self.fit_controller.stop()

    def shutdown(self) -> None:
        """Stop a running identification and wait for it (the window is closing)."""
        self.controller.shutdown()
        self.fit_controller.shutdown()

    # -- identification -----------------------------------------------------------------------------
    def identify(self, all_patterns: bool = False) -> None:
        """Identify the phases in the current pattern (or all) with the project's model, in the background."""
        project = self.project
        if project is None or project.model_dir is None or self.controller.is_running():
            return
        paths = project.patterns() if all_patterns else [p for p in [self._shown()[0]] if p is not None]
        if not paths:
            return
        problem = self.library_problem()
        if problem is not None:  # it would answer from another phase list (ADR 0048)
            show_error(self._widget, "The model does not know this project's phases", problem)
            return
        from labeltune.core.errors import UnusableInputError

        try:
            standard = self.panel.sample_fields.internal_standard()
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
            particle_size=self.panel.sample_fields.particle_size(),  # as predict --particle-size
            texture=self.panel.sample_fields.texture(),  # as predict --texture
        )
        self.controller.start(worker)

    def library_problem(self) -> str | None:
        """Why the project's model cannot identify the project library's phases (``None``: it can)."""
        project = self.project
        if project is None or project.model_dir is None:
            return None
        model_library, library = self._model_library(), self._library_at(project.library_dir)
        if model_library is None or library is None:
            return None  # the worker says what is wrong with the model; the page, with the library
        return model_library_problem(model_library, library, f"The model {project.model_dir.name}")

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
        row = self.panel.selected_alternative()
        if prediction is not None and 0 <= row < len(prediction.alternatives):  # a clicked hypothesis
            library = model_library or self._library_at(project.library_dir)  # as the sticks are drawn
            profile = self._profile(prediction, row, pattern, library)
            prediction = prediction_of_alternative(prediction, row, library, profile)
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

    def _on_panel_alternative_selected(self, _row: int) -> None:
        self.update_overlay()

    def _profile(
        self, prediction: XrdPrediction, row: int, pattern: Pattern, library: Library | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The fitted profile of hypothesis ``row``, or ``None`` while a worker fits it (then redrawn)."""
        alternative = prediction.alternatives[row]
        key: ProfileKey = (prediction.path, frozenset(alternative.phases))
        if alternative.chosen or library is None:
            return None
        if key in self._profiles:
            self._profiles.move_to_end(key)
            return self._profiles[key]
        if not self.fit_controller.is_running():  # else: asked again when the running fit ends
            names, excluded = list(alternative.phases), list(prediction.excluded)

            def fit(_progress: Any, stop: Any) -> tuple[ProfileKey, tuple[np.ndarray, np.ndarray]]:
                return key, phase_set_profile(pattern, library, names, stop, excluded)

            self.fit_controller.start(FunctionWorker(fit))
        return None

    def _on_fit_controller_finished(self, result: tuple[ProfileKey, tuple[np.ndarray, np.ndarray]]) -> None:
        key, profile = result
        self._profiles[key] = profile
        while len(self._profiles) > PROFILES_KEPT:
            self._profiles.popitem(last=False)
        self.update_overlay()  # draws it if still selected, or starts the fit now wanted

    def _on_fit_controller_failed(self, message: str, details: str) -> None:
        show_error(self._widget, "Cannot fit this phase set", message, details)

    def _on_panel_phase_selected(self, _name: str) -> None:
        self._update_activation()

    def preview(self, name: str) -> None:
        """Show the sticks of library phase ``name`` too ('': none), as the phase list offers it."""
        self._preview = name
        self.update_overlay()
