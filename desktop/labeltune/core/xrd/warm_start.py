"""A fit of more phases started where a fit of fewer ended (ADR 0079).

The presence tests compare nested fits: the phases already there, and the same with a candidate. Each is
fitted from scratch (grid search of every lattice, then Levenberg-Marquardt), and the fit with the
candidate can end in a poorer local minimum than the fit without it: the grid search places a major
phase's lattice differently once a weak phase's broad peaks share its range. A fit with more phases that
fits worse than one with fewer is wrong by construction (the candidate at zero scale gives the smaller
fit back), and its F-test reads 0: on the weighed dara scans 21 of 270 such nested fits were worse, two
of them with a 1 or 2 wt % phase present. :class:`Refined` keeps a fit's non-linear parameters by
phase name; :func:`warm_params` starts a superset's fit from them, the new phases at their CIF lattice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from labeltune.core.xrd.fit_engine import INDEX_ASYMMETRY, Model

SHARED = INDEX_ASYMMETRY + 1
"""The global parameters come first: zero shift, widths a and b, asymmetry."""


@dataclass(frozen=True)
class Refined:
    """A fit's non-linear parameters: the global ones and, by phase name, that phase's own."""

    shared: np.ndarray
    """Zero shift, instrument widths a and b, asymmetry."""
    phases: dict[str, np.ndarray] = field(default_factory=dict)
    """Lattice scale, size width c, Lorentzian fraction, then the axis-ratio terms (by axis group)."""
    ka2_ratio: float = 0.0


def _indices(model: Model, j: int) -> list[int]:
    axes = sorted({k for k in model.axis_param[j] if k is not None})
    return [model.index_s(j), model.index_c(j), model.index_eta(j), *axes]


def refined_of(model: Model, params: np.ndarray, names: Sequence[str], ratio: float) -> Refined:
    """The non-linear parameters ``params`` of ``model`` (phases ``names``) kept by name."""
    return Refined(
        shared=np.array(params[:SHARED], dtype=np.float64),
        phases={name: np.array(params[_indices(model, j)], dtype=np.float64) for j, name in enumerate(names)},
        ka2_ratio=ratio,
    )


def warm_params(
    model: Model, names: Sequence[str], params: np.ndarray, start: Refined
) -> tuple[np.ndarray, list[int]]:
    """``params`` (``model``'s start values) with what ``start`` refined; the phases it did not hold.

    Returned with the indices of the phases ``start`` does not know, whose lattices still need a search.
    """
    out = params.copy()
    out[:SHARED] = start.shared
    new = []
    for j, name in enumerate(names):
        kept = start.phases.get(name)
        where = _indices(model, j)
        if kept is None or len(kept) != len(where):
            new.append(j)
            continue
        out[where] = kept
    return out, new
