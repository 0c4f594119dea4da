"""What to draw over a pattern: phase sticks (model calls, the label, a preview) and the class activation.

Plain functions from project data to :class:`StickSet` records and arrays; no widgets.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from labeltune.core.xrd.bragg import d_of_two_theta, two_theta_of_d
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.metrics import FormulaError, resolve_label
from labeltune.core.xrd.results import PhaseCall, XrdPrediction
from labeltune.core.xrd.xrd_project import XrdLabel
from labeltune.ui.xrd_plot import StickSet, phase_colour


def bragg_two_theta(d: np.ndarray, wavelength: float) -> np.ndarray:
    """2θ (degrees) of reflections with spacings ``d`` (Å) at ``wavelength``; NaN where none exists."""
    two_theta, diffracts = two_theta_of_d(d, wavelength)
    return np.where(diffracts, two_theta, np.nan)


def convert_two_theta(two_theta: np.ndarray, source: float, target: float) -> np.ndarray:
    """Angles measured at wavelength ``source`` expressed at ``target`` (same d-spacings)."""
    if abs(source - target) < 1e-6:
        return np.asarray(two_theta, dtype=np.float64)
    return bragg_two_theta(d_of_two_theta(two_theta, source), target)


def polymorphs(formula: str, library: Library) -> list[str]:
    """The library phases a formula label stands for (none when it is not a formula of the library)."""
    try:
        return [library.names[i] for i in resolve_label(formula, library)]
    except FormulaError:
        return []


def prediction_of_alternative(
    prediction: XrdPrediction,
    row: int,
    library: Library | None,
    profile: tuple[np.ndarray, np.ndarray] | None = None,
) -> XrdPrediction:
    """``prediction`` as if competing phase set ``row`` had been chosen: its phases, fractions and fit.

    What the overlay draws when a hypothesis is clicked. Probabilities are the network's for those
    phases; the fitted curve is the chosen set's own, else ``profile`` (2θ at the library's wavelength,
    intensity; ``None``: not fitted yet, no curve), and the chosen fit's unexplained peaks do not apply.
    """
    if not 0 <= row < len(prediction.alternatives):
        return prediction
    alternative = prediction.alternatives[row]
    if alternative.chosen:
        return prediction
    calls = {c.name: c for c in [*prediction.candidates, *prediction.phases]}
    phases = []
    for name, fraction in zip(alternative.phases, alternative.fractions, strict=False):
        call = calls.get(name)
        formula = call.formula if call is not None else ""
        if not formula and library is not None and name in library.peaks:
            formula = library.phase(name).formula
        probability = call.probability if call is not None else 0.0
        phases.append(PhaseCall(name, formula, probability, fraction))
    return replace(
        prediction,
        phases=phases,
        residual=alternative.rwp,
        unexplained_peaks=[],
        fit_two_theta=None if profile is None else profile[0],
        calculated=None if profile is None else profile[1],
    )


def build_stick_sets(
    pattern_wavelength: float | None,
    label: XrdLabel,
    prediction: XrdPrediction | None,
    model_library: Library | None,
    project_library: Library | None,
    preview: str = "",
) -> list[StickSet]:
    """Sticks for the model's phases, then the labeled phases, then a previewed one (each phase once).

    A model call's sticks are moved by its fitted lattice scale; the peaks are placed by their d-spacing
    at the pattern's wavelength (the library's 2θ when the pattern's wavelength is unknown).
    """
    sticks: list[StickSet] = []
    shown: set[str] = set()

    def add(name: str, library: Library | None, note: str, call: PhaseCall | None = None) -> None:
        if name in shown or library is None or name not in library.peaks:
            return
        shown.add(name)
        peaks = library.peaks[name]
        scale = (call.lattice_scale if call is not None else None) or 1.0
        if pattern_wavelength is not None:
            two_theta = bragg_two_theta(peaks.d * scale, pattern_wavelength)
        else:
            two_theta = peaks.two_theta
        fraction = None if call is None else call.fraction
        if call is None and label.fractions is not None and name in label.phases:
            fraction = label.fractions[label.phases.index(name)]
        probability = None if call is None else call.probability
        formula = library.phase(name).formula
        colour = phase_colour(len(sticks))
        sticks.append(
            StickSet(
                name,
                formula,
                colour,
                two_theta,
                peaks.intensity,
                probability,
                fraction,
                note,
                thin=note == "preview",
            )
        )

    if prediction is not None:
        library = model_library or project_library
        for call in prediction.phases:
            labeled = library is not None and any(
                call.name == token or call.name in polymorphs(token, library) for token in label.phases
            )
            add(call.name, library, "in your label" if labeled else "", call)
    library = project_library or model_library
    for name in label.phases:
        if library is not None and name not in library.peaks:  # a formula: draw each polymorph,
            candidates = polymorphs(name, library)
            if not shown.intersection(candidates):  # unless the model already drew one of them
                for phase in candidates:
                    add(phase, library, f"{name} in your label")
        add(name, library, "your label")
    if preview:
        add(preview, project_library or model_library, "preview")
    return sticks


def _on_pattern_axis(
    two_theta: np.ndarray | None,
    values: np.ndarray | None,
    model_wavelength: float | None,
    pattern_wavelength: float | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``values`` over the model's 2θ axis, moved to the pattern's axis (same d-spacings)."""
    if two_theta is None or values is None:
        return None
    x = np.asarray(two_theta, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if model_wavelength is not None and pattern_wavelength is not None:
        x = convert_two_theta(x, model_wavelength, pattern_wavelength)
    keep = np.isfinite(x)
    if keep.sum() < 2 or y.shape != x.shape:
        return None
    return x[keep], y[keep]


def activation_on_pattern(
    prediction: XrdPrediction | None,
    name: str,
    model_wavelength: float | None,
    pattern_wavelength: float | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The activation of phase ``name`` over the pattern's 2θ axis, or ``None`` when there is none.

    The model saw the pattern converted to its library's wavelength; its grid is converted back.
    """
    if prediction is None or name not in prediction.activation:
        return None
    return _on_pattern_axis(
        prediction.two_theta, prediction.activation[name], model_wavelength, pattern_wavelength
    )


def fitted_curve_on_pattern(
    prediction: XrdPrediction | None, model_wavelength: float | None, pattern_wavelength: float | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The fitted profile on the pattern's 2θ axis, or ``None`` when the prediction has no fit."""
    if prediction is None:
        return None
    return _on_pattern_axis(
        prediction.fit_two_theta, prediction.calculated, model_wavelength, pattern_wavelength
    )


def unexplained_on_pattern(
    prediction: XrdPrediction | None, model_wavelength: float | None, pattern_wavelength: float | None
) -> list[float]:
    """The 2θ (on the pattern's axis) of the significant peaks the identified phases leave unexplained."""
    if prediction is None or not prediction.unexplained_peaks:
        return []
    two_theta = np.array([p.two_theta for p in prediction.unexplained_peaks], dtype=np.float64)
    if model_wavelength is not None and pattern_wavelength is not None:
        two_theta = convert_two_theta(two_theta, model_wavelength, pattern_wavelength)
    return [float(v) for v in two_theta if np.isfinite(v)]
