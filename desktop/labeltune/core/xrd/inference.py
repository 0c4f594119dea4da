"""Identify and quantify the phases of measured patterns with a trained XRD run.

The network proposes (probability per phase); physics decides the details. With ``fit=True`` the phases
called present are refined by a least-squares fit of their calculated patterns (zero shift, lattice
scale, widths free; :mod:`labeltune.core.xrd.quantify`), which gives the weight fractions, the residual
and the significant peaks nothing explains. The fit also checks the network's call:

* a called phase stays only with evidence (``significance``, ADR 0046): its scale at least ``Z_MIN``
  esds above zero and an F-test of the fit without it significant at 99.9 %;
* a same-formula polymorph the network also considered replaces a called phase when it fits better;
* the two most likely uncalled phases (and, while strong peaks stay unexplained, up to six) are tried
  and added on the same evidence: minor phases the network was unsure of;
* the fit proposes too: the two library phases the residual holds most of (``screening``) are fitted
  and added on the same evidence at a level corrected for searching the whole library;
* an added phase gives way to a look-alike (the screen's best phases for its peaks) that fits better;
* the phases tried and not found get a detection limit (``detection_limits``).

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
from labeltune.core.xrd.alternatives import PhaseSetFits, competing_sets
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.measured import pattern_on_grid
from labeltune.core.xrd.metrics import canonical_formula
from labeltune.core.xrd.misfit import misfit_test
from labeltune.core.xrd.model import class_activation, network_fractions
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.radiation import Radiation, radiation_used, with_radiation
from labeltune.core.xrd.results import Alternative, PhaseCall, XrdPrediction
from labeltune.core.xrd.run_files import load_xrd_net
from labeltune.core.xrd.screening import screen_residual
from labeltune.core.xrd.significance import (
    SIGNIFICANCE,
    Z_MIN,
    noise_scale,
    normal_quantile,
    phase_test,
)

SURE = 0.8
"""The network is sure of a phase at this probability (only for ordering the checks)."""
CANDIDATE_FLOOR = 0.005
"""Uncalled phases above this probability are tried (the ``ALWAYS_TRIED`` most likely ones always)."""
ALWAYS_TRIED = 2
"""The most likely uncalled phases tried on every pattern: minor phases the network is unsure of."""
MAX_TRIES = 6
"""Most uncalled phases tried while strong peaks stay unexplained (``STRONG_PEAK``)."""
STRONG_PEAK = 0.04
"""An unexplained peak this high (of the strongest) widens the search to ``MAX_TRIES`` phases. Weaker
ones are reported but leave the search to the residual screen: tried greedily in the network's order,
a phase sharing some of a 0.5 % minor's reflections was taken in its place (ADR 0069)."""
SCREENED_TRIES = 2
"""Most phases the residual screen (``screening``) proposes that are then fitted in full."""
LOOKALIKE_TRIES = 2
"""Phases fitted in an added phase's place (``XrdModel._lookalike``)."""


def _gain(fit: Any, better: Any) -> float:
    """How much lower ``better``'s χ² is than ``fit``'s (two fits of one pattern, not nested).

    In units of ``better``'s reduced χ² × its serial-correlation factor.
    """
    return (float(fit.chi2_sum) - float(better.chi2_sum)) / max(noise_scale(better), 1e-300)


def prior_alpha(probability: float) -> float:
    """The significance level a phase the network gave ``probability`` must reach to be added by the fit.

    The network's probability is a prior: the level is ``1 - SIGNIFICANCE`` times the prior odds against
    even odds (``p / (1 - p)``, at most 1), so an unlikely phase needs stronger evidence — a phase at
    p = 0.02 must pass at about 2e-5 (4.1 esd) instead of 1e-3 (3.1 esd). On measured weighed mixtures
    (dara) fixed-level tests added weak scatterers (Li2CO3, 7-13 wt %) to absorb systematic misfit
    (ADR 0046).
    """
    p = min(max(probability, 1e-6), 0.5)
    return (1.0 - SIGNIFICANCE) * p / (1.0 - p)


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
        )

    def _fit(self, pattern: PhaseSetFits, called: list[int]) -> Any:
        return pattern([self.names[j] for j in called])

    def _refine(
        self,
        measured: Pattern,
        called: list[int],
        probs: np.ndarray,
        stop_event: threading.Event | None = None,
        keep: Sequence[int] = (),
        texture: bool = False,
    ) -> tuple[list[int], Any, list[str], list[Alternative], dict[str, float]]:
        """The decision of ADR 0009 on the evidence of ADR 0046, then the competing phase sets around it.

        Phases in ``keep`` (an internal standard) are never dropped. Returns the phases, the fit, notes,
        the alternatives and the detection limits of the phases tried and not found. ``stop_event`` is
        checked inside every fit (``StoppedError``). Every decision is made without texture; with
        ``texture`` the returned fit is a last refit of the decided phases with preferred orientation
        (ADR 0065), while the alternatives and detection limits stay those of the decision's fits.
        """
        notes: list[str] = []
        # with an internal standard (in ``keep``) amorphous content is measured: humps go to the background
        pattern = PhaseSetFits(self._at_library_wavelength(measured), self.library, stop_event, bool(keep))
        result = self._fit(pattern, called)
        called, result = self._prune(pattern, called, result, probs, notes, keep=keep)
        # 2. polymorphs: same formula, considered by the network, fits better
        for pos, j in enumerate(list(called)):
            if j in keep:
                continue
            rivals = [
                k
                for k in np.argsort(-probs)
                if k != j
                and k not in called
                and self._keys[k] == self._keys[j]
                and probs[k] >= CANDIDATE_FLOOR
            ][:2]
            for k in rivals:
                trial = called.copy()
                trial[pos] = int(k)
                other = self._fit(pattern, trial)
                if other.rwp < result.rwp * 0.97:
                    notes.append(f"{self.names[k]} fits better than {self.names[j]} (same formula)")
                    called, result = trial, other
                    j = int(k)
        # 3. uncalled phases: the most likely ones always, more while strong peaks stay unexplained
        tries = 0
        added: list[int] = []
        tried_phases: list[int] = []
        for k in np.argsort(-probs):
            k = int(k)
            if k in called or probs[k] < CANDIDATE_FLOOR:
                continue
            strong = any(p.height >= STRONG_PEAK for p in result.unexplained_peaks)
            if tries >= MAX_TRIES or (tries >= ALWAYS_TRIED and not strong):
                break
            tries += 1
            tried_phases.append(k)
            trial = [*called, k]
            other = self._fit(pattern, trial)
            found, why = self._evidence(other, result, self.names[k], prior_alpha(float(probs[k])))
            if found:
                notes.append(f"{self.names[k]} added by the fit ({why}; probability {probs[k]:.2f})")
                called, result = trial, other
                added.append(k)
        # 4. the residual screen: minor phases the network gave (almost) no probability
        tried = {self.names[j] for j in called} | {self.names[k] for k in tried_phases}
        screened = screen_residual(self.library, result, tried) if called else []
        alpha = (1.0 - SIGNIFICANCE) / max(len(screened), 1)
        z = normal_quantile(alpha)
        for name, t in screened[:SCREENED_TRIES]:
            if t < z:
                break
            k = self.names.index(name)
            trial = [*called, k]
            other = self._fit(pattern, trial)
            found, why = self._evidence(other, result, name, alpha)
            if found:
                notes.append(
                    f"{name} added by the fit, found in the residual ({why}; probability {probs[k]:.2f})"
                )
                called, result = trial, other
                added.append(k)
        # 5. an added phase may stand in for a look-alike with nearly the same peaks (ADR 0070)
        for k in added:
            if k in called:
                called, result = self._lookalike(pattern, called, result, k, notes)
        if added:  # a phase called (or added) only to cover a later addition's peaks is no longer needed
            called, result = self._prune(pattern, called, result, probs, notes, keep=keep)
        ranked = [self.names[int(k)] for k in np.argsort(-probs)]
        alternatives = competing_sets(pattern, [self.names[j] for j in called], ranked)
        limits = self._detection_limits(pattern, called, probs)
        if texture and called:  # ADR 0065: after every decision, so texture cannot add or drop a phase
            result = pattern.textured([self.names[j] for j in called], result.ka2)
        return called, result, notes, alternatives, limits

    def _lookalike(
        self, pattern: PhaseSetFits, called: list[int], result: Any, k: int, notes: list[str]
    ) -> tuple[list[int], Any]:
        """``called`` with added phase ``k`` replaced by the library phase that fits its peaks best.

        The residual of the fit without ``k`` is screened (``screening``) and the ``LOOKALIKE_TRIES``
        best-scoring other phases are fitted in ``k``'s place. One replaces ``k`` when it passes the
        evidence and lowers χ² by at least ``Z_MIN``² in units of its reduced χ² × serial-correlation
        factor (``_gain``): a 2 % LiTi2O4 was called LiMn2O4 (the network's candidate, its spinel lattice
        stretched 2 % onto LiTi2O4's; gain 25), a 2 % Ti2MnO4 TiMn2O4 (gain 70), while a true 1 % Li2O
        would have given way to Mn2O3 at a gain of 3.8.
        """
        rest = [j for j in called if j != k]
        if not rest:
            return called, result
        without = self._fit(pattern, rest)
        exclude = {self.names[j] for j in called}
        best, best_gain = None, Z_MIN * Z_MIN
        for name, _t in screen_residual(self.library, without, exclude)[:LOOKALIKE_TRIES]:
            trial = [*rest, self.names.index(name)]
            other = self._fit(pattern, trial)
            gain = _gain(result, other)
            if gain >= best_gain and self._evidence(other, without, name)[0]:
                best, best_gain = (trial, other, name), gain
        if best is None:
            return called, result
        trial, other, name = best
        notes.append(
            f"{name} fits better than {self.names[k]} (the same peaks; χ² lower by {best_gain:.0f} σ²)"
        )
        return trial, other

    def _evidence(
        self, with_phase: Any, without: Any, name: str, alpha: float = 1.0 - SIGNIFICANCE
    ) -> tuple[bool, str]:
        """Whether ``with_phase`` needs ``name`` (scale test, F-test against ``without``), and why."""
        fit = next((p for p in with_phase.phases if p.name == name), None)
        if fit is None or fit.scale <= 0:
            return False, "no weight in the pattern"
        t = fit.scale / fit.scale_esd if fit.scale_esd > 0 else float("inf")
        test = phase_test(with_phase, without, alpha)
        why = f"scale {t:.1f} esd, F {test.f:.1f}, p {test.p:.2g}"
        z = Z_MIN if alpha == 1.0 - SIGNIFICANCE else normal_quantile(alpha)
        if not (t >= z and test.significant):
            return False, why
        misfit = misfit_test(with_phase, without, name, alpha)  # ADR 0056: beyond the others' misfit?
        why += f"; beyond misfit {misfit.t:.1f} esd, F {misfit.test.f:.1f}"
        if not (misfit.t >= z and misfit.test.significant):
            return False, why
        why += f"; {misfit.t_rest:.1f} esd without its peak at {misfit.best_peak:.2f}°"  # ADR 0067
        return misfit.t_rest >= z, why

    def _detection_limits(
        self, pattern: PhaseSetFits, called: list[int], probs: np.ndarray
    ) -> dict[str, float]:
        """For uncalled phases fitted together with the final set: the weight fraction they would need."""
        chosen = frozenset(self.names[j] for j in called)
        out: dict[str, float] = {}
        for names, fit in pattern.fitted().items():
            extra = names - chosen
            if len(extra) == 1 and chosen <= names:
                (name,) = extra
                phase = next((p for p in fit.phases if p.name == name), None)
                if phase is not None:
                    out[name] = phase.detection_limit
        order = {n: -probs[self.names.index(n)] for n in out}
        return dict(sorted(out.items(), key=lambda item: order[item[0]]))

    def _prune(
        self,
        pattern: PhaseSetFits,
        called: list[int],
        result: Any,
        probs: np.ndarray,
        notes: list[str],
        keep: Sequence[int] = (),
    ) -> tuple[list[int], Any]:
        """Drop the phases the fit has no evidence for (never those in ``keep``), least evident first."""
        tested: set[int] = set()
        while len(called) >= 2:
            scales = {f.name: (f.scale / f.scale_esd if f.scale_esd > 0 else 0.0) for f in result.phases}
            todo = [j for j in called if j not in keep and j not in tested]
            if not todo:
                break
            j = min(todo, key=lambda k: (scales.get(self.names[k], 0.0), probs[k] >= SURE))
            tested.add(j)
            rest = [k for k in called if k != j]
            without = self._fit(pattern, rest)
            found, why = self._evidence(result, without, self.names[j])
            if not found:
                notes.append(
                    f"{self.names[j]} dropped by the fit: no evidence ({why}; probability {probs[j]:.2f})"
                )
                called, result = rest, without
        return called, result

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
