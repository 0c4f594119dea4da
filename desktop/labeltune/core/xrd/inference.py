"""Identify and quantify the phases of measured patterns with a trained XRD run.

The network proposes (probability per phase); physics decides the details. With ``fit=True`` the phases
called present are refined by a least-squares fit of their calculated patterns (zero shift, lattice
scale, widths free; :mod:`labeltune.core.xrd.quantify`), which gives the weight fractions, the residual
and the strong peaks nothing explains. The fit also checks the network's call:

* a called phase the fit gives (almost) no weight is dropped;
* a same-formula polymorph the network also considered replaces a called phase when it fits better;
* while strong peaks stay unexplained, the most likely uncalled phases are tried and kept only when they
  explain those peaks and lower the residual clearly.

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
from labeltune.core.xrd.model import class_activation, network_fractions
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.results import Alternative, PhaseCall, XrdPrediction
from labeltune.core.xrd.run_files import load_xrd_net

MIN_FRACTION = 0.005
"""A called phase whose fitted weight fraction is below this is dropped."""
WEAK_FRACTION = 0.02
"""...and below this when the network was not sure (probability < ``SURE``)."""
SURE = 0.8
CANDIDATE_FLOOR = 0.005
"""Uncalled phases above this probability are tried when peaks stay unexplained."""
MAX_TRIES = 6
GAIN = 0.85
NEEDED = 1.02
"""An unsure phase is dropped when the fit without it has an Rwp at most this factor of the fit with it."""
MINOR = 0.05
MINOR_NEEDED = 1.10
"""A phase fitted below ``MINOR`` weight fraction must lower Rwp by 10 % to stay: small, shifted fits of a
wrong phase to a few stray peaks (impurities, phases outside the library) are the usual false positives."""
"""An added phase must bring the residual (Rwp) below this share of the previous one."""


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
    ) -> XrdPrediction:
        """Phases of one pattern (see the module docstring)."""
        return self.predict_many([pattern], fit=fit, activation=activation, stop_event=stop_event)[0]

    def predict_many(
        self,
        patterns: Sequence[Pattern],
        *,
        fit: bool = True,
        activation: bool = False,
        stop_event: threading.Event | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[XrdPrediction]:
        """Phases of several patterns (one network pass for all of them)."""
        report = progress or no_progress
        if not patterns:
            return []
        x, probs, frac_logits = self.network(patterns)
        out: list[XrdPrediction] = []
        for i, pattern in enumerate(patterns):
            check_stop(stop_event)
            report(Progress("Identifying phases", i, len(patterns), pattern.source.name))
            out.append(
                self._decide(pattern, x[i], probs[i], frac_logits[i], fit, activation, stop_event=stop_event)
            )
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
    ) -> XrdPrediction:
        called = [int(j) for j in np.flatnonzero(probs >= self.threshold)]
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
        if fit:
            called, result, fit_notes, alternatives = self._refine(pattern, called, probs, stop_event)
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
                    lattice_scale=float(pf.lattice_scale) if pf is not None else None,
                    shift_deg=float(pf.shift_deg) if pf is not None else None,
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
        )

    def _fit(self, pattern: PhaseSetFits, called: list[int]) -> Any:
        return pattern([self.names[j] for j in called])

    def _refine(
        self,
        measured: Pattern,
        called: list[int],
        probs: np.ndarray,
        stop_event: threading.Event | None = None,
    ) -> tuple[list[int], Any, list[str], list[Alternative]]:
        """The decision of ADR 0009, then the competing phase sets around it (every set fitted once).

        ``stop_event`` is checked inside every fit (``StoppedError``).
        """
        notes: list[str] = []
        pattern = PhaseSetFits(self._at_library_wavelength(measured), self.library, stop_event)
        result = self._fit(pattern, called)
        called, result = self._prune(pattern, called, result, probs, notes)
        # 2. polymorphs: same formula, considered by the network, fits better
        for pos, j in enumerate(list(called)):
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
        # 3. unexplained peaks: try likely uncalled phases
        tries = 0
        added: list[int] = []
        for k in np.argsort(-probs):
            if not result.unexplained_peaks or tries >= MAX_TRIES:
                break
            k = int(k)
            if k in called or probs[k] < CANDIDATE_FLOOR:
                continue
            tries += 1
            trial = [*called, k]
            other = self._fit(pattern, trial)
            weight = {f.name: f.weight_fraction for f in other.phases}.get(self.names[k], 0.0)
            if (
                other.rwp < result.rwp * GAIN
                and len(other.unexplained_peaks) < len(result.unexplained_peaks)
                and weight >= WEAK_FRACTION
            ):
                notes.append(
                    f"{self.names[k]} added by the fit: it explains peaks the network's phases leave "
                    f"(probability {probs[k]:.2f})"
                )
                called, result = trial, other
                added.append(k)
        if added:  # a phase called only to cover the added one's peaks is no longer needed
            called, result = self._prune(pattern, called, result, probs, notes, keep=added)
        ranked = [self.names[int(k)] for k in np.argsort(-probs)]
        alternatives = competing_sets(pattern, [self.names[j] for j in called], ranked)
        return called, result, notes, alternatives

    def _prune(
        self,
        pattern: PhaseSetFits,
        called: list[int],
        result: Any,
        probs: np.ndarray,
        notes: list[str],
        keep: Sequence[int] = (),
    ) -> tuple[list[int], Any]:
        """Drop the phases the fit does not need (never those in ``keep``)."""
        # 1. no weight in the pattern
        weights = {f.name: f.weight_fraction for f in result.phases}
        kept = [
            j
            for j in called
            if j in keep
            or weights.get(self.names[j], 0.0) >= (MIN_FRACTION if probs[j] >= SURE else WEAK_FRACTION)
        ]
        if kept and len(kept) < len(called):
            dropped = [self.names[j] for j in called if j not in kept]
            notes.append(f"dropped by the fit (no weight in the pattern): {', '.join(dropped)}")
            called = kept
            result = self._fit(pattern, called)
        # 2. an unsure or minor phase must earn its place: without it the fit must be clearly worse
        weights = {f.name: f.weight_fraction for f in result.phases}
        doubtful = [
            j
            for j in called
            if j not in keep and (probs[j] < SURE or weights.get(self.names[j], 0.0) < MINOR)
        ]
        for j in doubtful:
            if len(called) < 2:
                break
            rest = [k for k in called if k != j]
            without = self._fit(pattern, rest)
            minor = {f.name: f.weight_fraction for f in result.phases}.get(self.names[j], 0.0) < MINOR
            needed = MINOR_NEEDED if minor else NEEDED
            if without.rwp <= result.rwp * needed:
                why = (
                    "a minor phase that barely improves the fit" if minor else "the fit is as good without it"
                )
                notes.append(f"{self.names[j]} dropped: {why} (probability {probs[j]:.2f})")
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
) -> tuple[list[XrdPrediction], list[tuple[str, str]]]:
    """Read and predict pattern files; unreadable ones come back as (path, reason), never fatal."""
    from labeltune.core.xrd.readers import read_pattern

    report = progress or no_progress
    model = run_dir if isinstance(run_dir, XrdModel) else load_xrd_model(run_dir)
    patterns: list[Pattern] = []
    skipped: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        check_stop(stop_event)
        report(Progress("Reading patterns", i, len(paths), Path(path).name))
        try:
            pattern = read_pattern(path, default_wavelength=default_wavelength)
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
            made = model.predict_many([pattern], fit=fit, activation=activation, stop_event=stop_event)
        except (UnusableInputError, ValueError) as exc:  # e.g. no overlap with the library's 2θ range
            skipped.append((str(pattern.source), str(exc)))
            continue
        for prediction in made:  # what the reader found odd comes first (sorted, averaged, converted...)
            prediction.warnings[:0] = [w for w in pattern.warnings if w not in prediction.warnings]
        predictions.extend(made)
    report(Progress("Identifying phases", len(patterns), len(patterns)))
    return predictions, skipped
