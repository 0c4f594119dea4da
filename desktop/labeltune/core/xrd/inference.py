"""Identify and quantify the phases of measured patterns with a trained XRD run.

The network proposes (probability per phase); physics decides the details. With ``fit=True`` the phases
called present are refined by a least-squares fit of their calculated patterns (zero shift, lattice
scale, widths free; :mod:`labeltune.core.xrd.quantify`), which gives the weight fractions, the residual
and the significant peaks nothing explains. The fit also checks the network's call and adds what the
network was unsure of or missed (:mod:`labeltune.core.xrd.phase_decision`: evidence for each phase,
polymorphs, likely uncalled phases, the residual screen, look-alikes); the phases tried and not found get
a detection limit (``detection_limits``).

What remains unexplained is reported (``unexplained_peaks`` and a warning): a closed-set model otherwise
reports confident nonsense for phases outside its library. Around the chosen set, the competing whole
phase sets and their Rwp are reported as ``alternatives`` (:mod:`labeltune.core.xrd.alternatives`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.xrd.alternatives import PhaseSetFits
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.measured import pattern_on_grid
from labeltune.core.xrd.metrics import canonical_formula
from labeltune.core.xrd.model import class_activation, network_fractions
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.phase_decision import PhaseDecision
from labeltune.core.xrd.radiation import Radiation, radiation_used, with_radiation
from labeltune.core.xrd.results import Alternative, PhaseCall, XrdPrediction
from labeltune.core.xrd.run_files import load_xrd_net


class XrdModel:
    """A loaded XRD run: network, library, grid and decision threshold."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        net, config, library = load_xrd_net(self.run_dir)
        self.net = net
        self.config = config
        self.library: Library = library
        grid = config["grid"]
        self.grid = np.linspace(grid["two_theta_min"], grid["two_theta_max"], int(grid["points"]))
        self.threshold = float(config.get("threshold", 0.5))
        self.names: list[str] = library.names
        self.formulas: list[str] = [p.formula for p in library.phases]
        self._keys = [canonical_formula(f) for f in self.formulas]

    # -- network ------------------------------------------------------------------------------------
    def network(self, patterns: Sequence[Pattern]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inputs on the grid, probabilities, fraction logits), one row per pattern."""
        x = np.stack([pattern_on_grid(p, self.library, self.grid) for p in patterns])
        with torch.no_grad():
            logits, frac = self.net(torch.from_numpy(x))
        return x, torch.sigmoid(logits).numpy(), frac.numpy()

    def predict(
        self,
        pattern: Pattern,
        *,
        fit: bool = True,
        activation: bool = False,
        stop_event: threading.Event | None = None,
        internal_standard: tuple[str, float] | None = None,
        particle_size: float | None = None,
        texture: bool = False,
    ) -> XrdPrediction:
        """Phases of one pattern (see the module docstring and :meth:`predict_many`)."""
        return self.predict_many(
            [pattern],
            fit=fit,
            activation=activation,
            stop_event=stop_event,
            internal_standard=internal_standard,
            particle_size=particle_size,
            texture=texture,
        )[0]

    def predict_many(
        self,
        patterns: Sequence[Pattern],
        *,
        fit: bool = True,
        activation: bool = False,
        stop_event: threading.Event | None = None,
        progress: ProgressCallback | None = None,
        internal_standard: tuple[str, float] | None = None,
        particle_size: float | None = None,
        texture: bool = False,
    ) -> list[XrdPrediction]:
        """Phases of several patterns (one network pass for all of them).

        ``texture`` (``predict --texture auto``): the phases are decided without preferred orientation,
        then the decided set is refitted once with a March–Dollase texture where significant, for the
        fractions, esds and Rwp reported; texture can neither add nor drop a phase (ADR 0065).

        Fitted fractions are corrected for microabsorption with a ``particle_size`` (µm, Brindley);
        without one a warning says where the absorption contrast is large enough to matter
        (:mod:`~labeltune.core.xrd.absorption`). ``internal_standard`` (library phase name or formula,
        weight fraction spiked): the standard is always fitted and each result gets absolute fractions and
        ``amorphous`` (:mod:`~labeltune.core.xrd.internal_standard`), from the corrected fractions; an
        unknown standard raises ``UnusableInputError``.
        """
        from labeltune.core.xrd.absorption import correct_prediction
        from labeltune.core.xrd.internal_standard import apply_internal_standard, resolve_standard

        report = progress or no_progress
        if not patterns:
            return []
        standard = resolve_standard(self.library, internal_standard[0]) if internal_standard else None
        x, probs, frac_logits = self.network(patterns)
        out: list[XrdPrediction] = []
        for i, pattern in enumerate(patterns):
            check_stop(stop_event)
            report(Progress("Identifying phases", i, len(patterns), pattern.source.name))
            made = self._decide(
                pattern,
                x[i],
                probs[i],
                frac_logits[i],
                fit,
                activation,
                stop_event=stop_event,
                standard=standard,
                texture=texture,
            )
            correct_prediction(made, self.library, particle_size)  # before the standard scales them
            if standard is not None and internal_standard is not None:
                apply_internal_standard(made, standard, internal_standard[1])
            out.append(made)
        report(Progress("Identifying phases", len(patterns), len(patterns)))
        return out

    # -- decision ---------------------------------------------------------------------------------------
    def _decide(
        self,
        pattern: Pattern,
        x: np.ndarray,
        probs: np.ndarray,
        frac_logits: np.ndarray,
        fit: bool,
        activation: bool,
        stop_event: threading.Event | None = None,
        standard: str | None = None,
        texture: bool = False,
    ) -> XrdPrediction:
        called = [int(j) for j in np.flatnonzero(probs >= self.threshold)]
        std = self.names.index(standard) if standard is not None else None
        if std is not None and std not in called:
            called.append(std)
        warnings: list[str] = []
        if not called:
            top = int(np.argmax(probs))
            if probs[top] >= 0.1:
                called = [top]
                warnings.append(
                    f"no phase reached probability {self.threshold:.2f}; showing the most likely one"
                )
            else:
                warnings.append("no library phase recognised in this pattern")
        result: Any = None
        alternatives: list[Alternative] = []
        limits: dict[str, float] = {}
        if fit:
            keep = [std] if std is not None else []
            called, result, fit_notes, alternatives, limits = self._refine(
                pattern, called, probs, stop_event, keep, texture
            )
            warnings.extend(fit_notes)
        called.sort(key=lambda j: -probs[j])
        net_frac = network_fractions(
            torch.from_numpy(frac_logits[None]),
            torch.from_numpy(np.isin(np.arange(len(probs)), called)[None]),
        )[0].numpy()
        fits = {f.name: f for f in result.phases} if result is not None else {}
        phases = []
        for j in called:
            name = self.names[j]
            pf = fits.get(name)
            phases.append(
                PhaseCall(
                    name=name,
                    formula=self.formulas[j],
                    probability=float(probs[j]),
                    fraction=float(pf.weight_fraction) if pf is not None else float(net_frac[j]),
                    fraction_network=float(net_frac[j]),
                    fraction_esd=float(pf.fraction_esd) if pf is not None else None,
                    lattice_scale=float(pf.lattice_scale) if pf is not None else None,
                    shift_deg=float(pf.shift_deg) if pf is not None else None,
                    preferred_orientation=pf.preferred_orientation if pf is not None else None,
                )
            )
        others = [int(j) for j in np.argsort(-probs) if int(j) not in called][:5]
        candidates = [PhaseCall(self.names[j], self.formulas[j], float(probs[j])) for j in others]
        maps: dict[str, np.ndarray] = {}
        if activation:
            wanted = called + others[:1]
            cams = class_activation(self.net, torch.from_numpy(x), wanted).numpy()
            maps = {self.names[j]: cams[k] for k, j in enumerate(wanted)}
        if result is not None:
            warnings.extend(w for w in result.warnings if w not in warnings)
        return XrdPrediction(
            path=str(pattern.source),
            phases=phases,
            candidates=candidates,
            unexplained_peaks=list(result.unexplained_peaks) if result is not None else [],
            warnings=warnings,
            residual=float(result.rwp) if result is not None else None,
            zero_shift=float(result.zero_shift) if result is not None else None,
            two_theta=self.grid,
            activation=maps,
            fit_two_theta=np.asarray(result.two_theta) if result is not None else None,
            calculated=np.asarray(result.calculated) if result is not None else None,
            alternatives=alternatives,
            detection_limits=limits,
            texture=("auto" if texture else "off") if fit else None,
            excluded=list(result.excluded) if result is not None else [],
        )

    def _refine(
        self,
        measured: Pattern,
        called: list[int],
        probs: np.ndarray,
        stop_event: threading.Event | None = None,
        keep: Sequence[int] = (),
        texture: bool = False,
    ) -> tuple[list[int], Any, list[str], list[Alternative], dict[str, float]]:
        """The fit's decision (``phase_decision``): phases, fit, notes, alternatives, detection limits.

        Phases in ``keep`` (an internal standard) are never dropped; ``stop_event`` is checked inside every
        fit (``StoppedError``); ``texture``: a last refit of the decided set with preferred orientation.
        """
        # with an internal standard (in ``keep``) amorphous content is measured: humps go to the background
        pattern = PhaseSetFits(self._at_library_wavelength(measured), self.library, stop_event, bool(keep))
        decided = PhaseDecision(pattern, self.names, self._keys, probs, keep).decide(called, texture)
        return decided.phases, decided.fit, decided.notes, decided.alternatives, decided.detection_limits

    def _at_library_wavelength(self, pattern: Pattern) -> Pattern:
        if pattern.wavelength is None:
            raise UnusableInputError(f"{pattern.source.name}: the X-ray wavelength is not known")
        if abs(pattern.wavelength - self.library.wavelength) > 1e-3:
            return pattern.converted(self.library.wavelength)
        return pattern


def load_xrd_model(run_dir: str | Path) -> XrdModel:
    """Load a finished XRD run (raises UnusableInputError)."""
    return XrdModel(run_dir)


def is_xrd_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds an XRD run (its config.json says ``"domain": "xrd"``)."""
    import json

    if (Path(run_dir) / "library.json").is_file():
        return True  # a library given where a run belongs: the XRD path explains the mix-up
    try:
        data = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("domain") == "xrd"


def predict_patterns(
    run_dir: str | Path | XrdModel,
    paths: Sequence[str | Path],
    *,
    default_wavelength: float | None = None,
    fit: bool = True,
    activation: bool = False,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    internal_standard: tuple[str, float] | None = None,
    particle_size: float | None = None,
    radiation: Radiation | None = None,
    texture: bool = False,
) -> tuple[list[XrdPrediction], list[tuple[str, str]]]:
    """Read and predict pattern files; unreadable ones come back as (path, reason), never fatal.

    ``internal_standard``: see :meth:`XrdModel.predict_many`; an unknown standard raises
    ``UnusableInputError`` before any file is read. ``radiation`` (instead of ``default_wavelength``): what
    the files were measured with; one that states another wavelength raises ``RadiationConflictError``
    before any fit (``core/xrd/radiation.py``). Each prediction says the radiation it used. ``texture``:
    see :meth:`XrdModel.predict_many`.
    """
    from labeltune.core.xrd.readers import read_pattern

    report = progress or no_progress
    model = run_dir if isinstance(run_dir, XrdModel) else load_xrd_model(run_dir)
    if internal_standard is not None:
        from labeltune.core.xrd.internal_standard import resolve_standard

        resolve_standard(model.library, internal_standard[0])
    patterns: list[Pattern] = []
    skipped: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        check_stop(stop_event)
        report(Progress("Reading patterns", i, len(paths), Path(path).name))
        try:
            pattern = read_pattern(path, default_wavelength=None if radiation else default_wavelength)
            if radiation is not None:
                pattern = with_radiation(pattern, radiation)
            if pattern.wavelength is None:
                raise UnusableInputError(f"{Path(path).name}: the file does not state its X-ray wavelength")
        except (UnusableInputError, OSError) as exc:
            skipped.append((str(path), str(exc)))
            continue
        patterns.append(pattern)
    predictions: list[XrdPrediction] = []
    for i, pattern in enumerate(patterns):  # one at a time: progress and Stop between the fits
        check_stop(stop_event)
        report(Progress("Identifying phases", i, len(patterns), pattern.source.name))
        try:
            made = model.predict_many(
                [pattern],
                fit=fit,
                activation=activation,
                stop_event=stop_event,
                internal_standard=internal_standard,
                particle_size=particle_size,
                texture=texture,
            )
        except (UnusableInputError, ValueError) as exc:  # e.g. no overlap with the library's 2θ range
            skipped.append((str(pattern.source), str(exc)))
            continue
        for prediction in made:  # what the reader found odd comes first (sorted, averaged, converted...)
            prediction.warnings[:0] = [w for w in pattern.warnings if w not in prediction.warnings]
            prediction.radiation = radiation_used(pattern)
        predictions.extend(made)
    report(Progress("Identifying phases", len(patterns), len(patterns)))
    return predictions, skipped
