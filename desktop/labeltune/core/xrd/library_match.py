"""Does a model know the phases of a library? Refuse to identify with one that does not.

A model can only call the phases it was trained on (its run's own copy of the library). A project built
on another library — a lab's own CIFs — and given the demo's model got answers from the wrong phase list
("TiO2_136" for a La(OH)3 mixture, Rwp 39 %) with no word of warning. A phase is the same in both when its
name is, or — another CIF of it, a library rebuilt with readable names (ADR 0048) — when its reduced formula
is and its ``STRONGEST`` strongest peaks lie within ``D_TOLERANCE`` (relative d-spacing) of peaks of the
model's phase. Not the space group: CIFs rewritten in P 1 (as the shipped library's are) all say 1; nor
the cell volume alone: COD's anatase has 32.6 Å^3 per TiO2, the shipped (computed) one 34.3 and rutile
31.5. The strongest peaks tell polymorphs apart (anatase 3.52 Å, rutile 3.25 Å: 8 %) while two
determinations of one structure differ by 1-2 %. Every phase of the library the patterns are labeled
with must be known to the model; a model that knows more phases is fine.
"""

from __future__ import annotations

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.xrd.library import Library, Phase
from labeltune.core.xrd.metrics import FormulaError, canonical_formula

__all__ = ["LibraryMismatchError", "check_model_knows", "model_library_problem", "unknown_to_model"]

SHOWN = 6
"""Most unknown phases named in the message."""
STRONGEST = 3
"""How many of a phase's strongest peaks must be found in the model's phase."""
D_TOLERANCE = 0.03
"""Relative d-spacing within which two peaks are the same reflection (lattices differ by 1-2 % between
determinations of one structure, polymorphs' strongest peaks by far more)."""
COMPARED = 10
"""How many of the model phase's strongest peaks are searched."""


class LibraryMismatchError(UnusableInputError):
    """The model was trained on other phases than the library's."""


def _formula_key(phase: Phase) -> str:
    try:
        return canonical_formula(phase.formula)
    except FormulaError:
        return phase.formula


def _same_phase(a: Phase, library_a: Library, b: Phase, library_b: Library) -> bool:
    if _formula_key(a) != _formula_key(b):
        return False
    peaks_a, peaks_b = library_a.peaks.get(a.name), library_b.peaks.get(b.name)
    if peaks_a is None or peaks_b is None or not len(peaks_a) or not len(peaks_b):
        return False
    wanted = peaks_a.strongest(STRONGEST).d
    offered = peaks_b.strongest(COMPARED).d
    return all(bool(np.any(np.abs(offered - d) <= D_TOLERANCE * d)) for d in wanted)


def unknown_to_model(model_library: Library, library: Library) -> list[str]:
    """The phases of ``library`` that ``model_library`` has neither by name nor as the same structure.

    A phase's d-spacings do not depend on the wavelength, so libraries of different sources compare.
    """
    names = set(model_library.names)
    return [
        p.name
        for p in library.phases
        if p.name not in names
        and not any(_same_phase(p, library, known, model_library) for known in model_library.phases)
    ]


def model_library_problem(
    model_library: Library, library: Library, model_name: str = "the model"
) -> str | None:
    """Why ``model_library``'s model cannot identify ``library``'s phases, or ``None`` when it can."""
    unknown = unknown_to_model(model_library, library)
    if not unknown:
        return None
    shown = ", ".join(unknown[:SHOWN]) + (f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else "")
    return (
        f"{model_name} was trained on another phase library: it does not know {len(unknown)} of the "
        f"{len(library.phases)} phases of this one ({shown}), so it can never find them. Train a model "
        "for this library, or choose one trained on it."
    )


def check_model_knows(model_library: Library, library: Library, model_name: str = "the model") -> None:
    """Raise :class:`LibraryMismatchError` when the model does not know every phase of ``library``."""
    problem = model_library_problem(model_library, library, model_name)
    if problem is not None:
        raise LibraryMismatchError(problem)
