"""Absolute weight fractions and amorphous content by an internal standard (ADR 0046).

A known weight fraction ``W`` of a crystalline standard (a library phase) is mixed into the sample. The
fit gives weight fractions relative to the crystalline phases it sees; the standard's relative fraction
``r`` says how much of the sample they are: every phase's absolute fraction is ``relative × W / r`` and
what is left, ``1 − W / r``, is amorphous or unidentified (reported as ``amorphous``, in the spiked
sample; divide by ``1 − W`` for the original sample). The esds follow from the fitted fractions' esds.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from labeltune.core.errors import UnusableInputError
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.metrics import canonical_formula
from labeltune.core.xrd.results import PhaseCall, XrdPrediction

__all__ = ["apply_internal_standard", "parse_internal_standard", "resolve_standard"]

_SPEC = re.compile(r"^\s*(?P<name>[^=]+?)\s*=\s*(?P<value>[0-9]*[.,]?[0-9]+)\s*%?\s*$")


def parse_internal_standard(spec: str) -> tuple[str, float]:
    """``"NAME=WT%"`` -> (name, weight fraction 0..1); ``UnusableInputError`` when malformed."""
    match = _SPEC.match(spec)
    if match is None:
        raise UnusableInputError(f"--internal-standard {spec!r}: expected NAME=WT%, e.g. Al2O3=20")
    value = float(match["value"].replace(",", ".")) / 100.0
    if not 0.0 < value < 1.0:
        raise UnusableInputError(f"--internal-standard {spec!r}: the weight % must be between 0 and 100")
    return match["name"], value


def resolve_standard(library: Library, name: str) -> str:
    """The library phase meant by ``name``: its exact name, else the one phase of that formula."""
    if name in library.peaks:
        return name
    try:
        key = canonical_formula(name)
    except ValueError:
        key = None
    matches = [p.name for p in library.phases if key is not None and canonical_formula(p.formula) == key]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnusableInputError(
            f"internal standard {name!r}: several library phases have that formula ({', '.join(matches)}); "
            "give the phase name"
        )
    raise UnusableInputError(
        f"internal standard {name!r} is not a phase of the model's library; "
        "the standard must be a library phase (name or formula)"
    )


def apply_internal_standard(prediction: XrdPrediction, standard: str, weight_fraction: float) -> None:
    """Set absolute fractions and ``amorphous`` (with esds) on ``prediction`` in place.

    When the standard is not among the fitted phases (or has no weight) the prediction gets a warning and
    no amorphous value: the standard cannot have been missed in a sample it was spiked into.
    """
    prediction.internal_standard = (standard, weight_fraction)
    std = next((p for p in prediction.phases if p.name == standard), None)
    if std is None or not std.fraction or std.fraction <= 0:
        prediction.warnings.append(
            f"the internal standard {standard} was not found in the pattern: no absolute fractions"
        )
        return
    r = float(std.fraction)
    r_esd = float(std.fraction_esd or 0.0)
    factor = weight_fraction / r
    out: list[PhaseCall] = []
    total = 0.0
    for p in prediction.phases:
        rel = float(p.fraction or 0.0)
        absolute = weight_fraction if p.name == standard else rel * factor
        if p.name == standard:
            esd = 0.0
        else:
            rel_esd = float(p.fraction_esd or 0.0)
            esd = absolute * math.hypot(rel_esd / rel if rel > 0 else 0.0, r_esd / r)
        total += absolute
        out.append(_with(p, absolute, esd))
    prediction.phases = out
    prediction.amorphous = 1.0 - total
    prediction.amorphous_esd = factor * r_esd / r  # d(1 - W / r) / dr = W / r²
    if prediction.amorphous < -3.0 * max(prediction.amorphous_esd, 0.01):
        prediction.warnings.append(
            f"the internal standard reads {100 * r:.1f} % of the crystalline phases, more than a sample "
            f"with {100 * weight_fraction:.1f} % of it can hold: check the weighed amount, or microabsorption"
        )


def _with(p: PhaseCall, absolute: float, esd: float) -> PhaseCall:
    return replace(p, absolute_fraction=absolute, absolute_fraction_esd=esd)
