"""Competing hypotheses for one pattern: whole phase sets ranked by how well they fit (Rwp).

The model reports one phase set per pattern (``XrdPrediction.phases``), but a scientist deciding between,
say, "corundum + quartz" and "corundum + quartz + a little fluorite" wants to see both with their fit
quality. This module keeps every fit made for a pattern (:class:`PhaseSetFits`: the decision in
``inference`` already fits several sets, and none is fitted twice) and adds a bounded search around the
chosen set (:func:`competing_sets`):

* the chosen set without its weakest phase (the one with the least fitted weight);
* the chosen set with each of the ``NEXT_BEST`` most likely uncalled phases added, and the most likely one
  swapped in for the weakest phase.

That is at most four new fits per pattern (fewer when the decision already made them), each with the
chosen fit's Kα2 choice instead of trying both (measured in ADR 0032). A set in which
a phase gets (almost) no weight (``NEGLIGIBLE``) says the same as the set without it and is left out. The
rest are ranked by Rwp, best first, and the first ``LIMIT`` kept, the chosen set always among them.
Lower Rwp alone does not make a set right: a further phase always lowers it a little, which is why the
decision (ADR 0009) asks more of it, and why the chosen set is marked rather than put first.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.quantify import FitResult, fit_phases
from labeltune.core.xrd.results import Alternative
from labeltune.core.xrd.warm_start import Refined

NEXT_BEST = 2
"""How many of the most likely uncalled phases are tried with the chosen set."""
LIMIT = 5
"""Most alternatives kept per pattern."""
NEGLIGIBLE = 0.01
"""A set in which a phase is fitted below this weight fraction is not a hypothesis of its own."""


class PhaseSetFits:
    """The fits of phase sets to one pattern, each set fitted once (the order of the names is irrelevant)."""

    def __init__(
        self,
        pattern: Pattern,
        library: Library,
        stop_event: threading.Event | None = None,
        amorphous: bool = False,
    ) -> None:
        self.pattern = pattern
        self.library = library
        self.stop_event = stop_event
        self.amorphous = amorphous
        """Fit with the amorphous-hump background terms (an internal standard measures amorphous content)."""
        self._fits: dict[tuple[frozenset[str], tuple[tuple[float, float], ...]], FitResult] = {}
        self.ka2: bool | None = None
        """Kα2 in the pattern: the choice of its first fit of phases, kept for every later fit (ADR 0077)."""
        self.excluded: tuple[tuple[float, float], ...] = ()
        """2θ ranges every later fit leaves out: unknown peaks that pulled a phase (ADR 0078)."""

    def __call__(self, names: Sequence[str], ka2: bool | None = None) -> FitResult:
        """The fit of ``names`` (see :func:`~labeltune.core.xrd.quantify.fit_phases`, also for ``ka2``).

        Whether the pattern holds Kα2 is decided once, by the first fit of phases (the better of Kα2 and
        none, unless the file says or ``ka2`` forces it); every later fit uses that choice. The nested
        fits of a presence test then differ by the phase alone, and each fit refines one Kα2 model, not
        two (ADR 0077). A fit that comes out worse than a fitted subset's is refitted from that subset's
        parameters (``_no_worse``, ADR 0079).
        """
        key = (frozenset(names), self.excluded)
        if key not in self._fits:
            ka2 = self.ka2 if ka2 is None else ka2
            fit = self._no_worse(names, ka2, self._fit(names, ka2, texture=False))
            if self.ka2 is None and names:
                self.ka2 = fit.ka2
            self._fits[key] = fit
        return self._fits[key]

    def _no_worse(self, names: Sequence[str], ka2: bool | None, fit: FitResult) -> FitResult:
        """``fit``, or a refit started from a fitted subset of ``names`` that fits better (ADR 0079).

        A fit with more phases that fits worse than one with fewer ended in a poorer local minimum; the
        best such subset's parameters, the new phases' lattices searched, give it another start.
        """
        wanted = frozenset(names)
        subsets = [
            f
            for (s, excluded), f in self._fits.items()
            if s and s < wanted and excluded == self.excluded and f.chi2_sum is not None
        ]
        best = min(subsets, key=lambda f: float(f.chi2_sum or 0.0), default=None)
        if best is None or best.refined is None or fit.chi2_sum is None:
            return fit
        if float(best.chi2_sum or 0.0) >= fit.chi2_sum:
            return fit
        again = self._fit(names, ka2, texture=False, start=best.refined)
        return again if again.chi2_sum is not None and again.chi2_sum < fit.chi2_sum else fit

    def _fit(
        self, names: Sequence[str], ka2: bool | None, texture: bool, start: Refined | None = None
    ) -> FitResult:
        return fit_phases(
            self.pattern,
            self.library,
            list(names),
            ka2=ka2,
            stop_event=self.stop_event,
            amorphous=self.amorphous,
            texture=texture,
            exclude=self.excluded,
            start=start,
        )

    def textured(self, names: Sequence[str], ka2: bool | None = None) -> FitResult:
        """The fit of ``names`` with March–Dollase texture where significant (ADR 0065).

        Not cached with the others, which are all without texture (the decision's and the competing sets').
        Each fraction esd also holds the choice between the two models: half the change the texture made
        to the fraction, added in quadrature (two equally likely models; the texture's direction is picked
        by a scan the covariance does not see).
        """
        plain = self(names, ka2)
        fit = self._fit(names, ka2, texture=True)
        before = {p.name: p.weight_fraction for p in plain.phases}
        fit.phases = [
            replace(p, fraction_esd=math.hypot(p.fraction_esd, (p.weight_fraction - before[p.name]) / 2))
            for p in fit.phases
        ]
        return fit

    def fitted(self) -> dict[frozenset[str], FitResult]:
        """Every set fitted so far (with the ranges now ``excluded``) and its fit."""
        return {names: fit for (names, excluded), fit in self._fits.items() if excluded == self.excluded}


def _weakest(fit: FitResult) -> str | None:
    return min(fit.phases, key=lambda p: p.weight_fraction).name if fit.phases else None


def competing_sets(fits: PhaseSetFits, chosen: Sequence[str], ranked: Sequence[str]) -> list[Alternative]:
    """Whole phase sets for the pattern of ``fits``, best Rwp first, the ``chosen`` set marked.

    ``ranked`` lists the library's phases most likely first (the network's probabilities); its first
    ``NEXT_BEST`` phases outside ``chosen`` are the candidates added or swapped in.
    """
    chosen = list(chosen)
    trials: list[list[str]] = []
    ka2: bool | None = None
    if chosen:
        best = fits(chosen)
        ka2 = best.ka2
        weakest = _weakest(best)
        rest = [n for n in chosen if n != weakest]
        if rest:
            trials.append(rest)
        for i, name in enumerate([n for n in ranked if n not in chosen][:NEXT_BEST]):
            trials.append([*chosen, name])
            if i == 0:
                trials.append([*rest, name])
    else:
        trials.extend([name] for name in list(ranked)[:NEXT_BEST])
    for trial in trials:
        fits(trial, ka2)
    key = frozenset(chosen)
    out: list[Alternative] = []
    for names, fit in fits.fitted().items():
        if not names or (names != key and any(p.weight_fraction < NEGLIGIBLE for p in fit.phases)):
            continue
        phases = sorted(fit.phases, key=lambda p: -p.weight_fraction)
        out.append(
            Alternative(
                phases=tuple(p.name for p in phases),
                fractions=tuple(float(p.weight_fraction) for p in phases),
                rwp=float(fit.rwp),
                chi2=fit.chi2,
                chosen=names == key,
            )
        )
    out.sort(key=lambda a: a.rwp)
    kept = out[:LIMIT]
    if chosen and not any(a.chosen for a in kept):
        kept[-1:] = [a for a in out if a.chosen]
    return kept


def phase_set_profile(
    pattern: Pattern,
    library: Library,
    names: Sequence[str],
    stop_event: threading.Event | None = None,
    exclude: Sequence[tuple[float, float]] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """The fitted profile (2θ at the library's wavelength, intensity) of one phase set on ``pattern``.

    What the app draws when a competing set is clicked: one fit (about a second), made in a worker when
    asked for, rather than every set's profile kept in memory for every pattern identified (five float
    arrays of a few thousand points each, per pattern). Raises ``ValueError`` for a pattern without a
    wavelength or outside the library's range. ``exclude``: the prediction's left-out 2θ ranges (ADR 0078),
    so the set is fitted as the decision fitted it.
    """
    if pattern.wavelength is None:
        raise ValueError(f"{pattern.source.name}: the X-ray wavelength is not known")
    if abs(pattern.wavelength - library.wavelength) > 1e-3:
        pattern = pattern.converted(library.wavelength)
    fit = fit_phases(pattern, library, list(names), stop_event=stop_event, exclude=exclude)
    return np.asarray(fit.two_theta), np.asarray(fit.calculated)
