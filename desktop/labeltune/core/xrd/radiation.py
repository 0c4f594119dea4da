"""The X-ray radiation a user states for files that do not say theirs (``--radiation CoKa``, ADR 0058).

A ``.xy`` file holds 2θ and counts and nothing else: read with the model's Cu Kα, a Co Kα pattern puts
every reflection at the wrong d-spacing and the fit calls wrong phases without a word. The user names
the anode (``CuKa``, ``CoKa1``...) or gives a wavelength in Å; a file that states its own wavelength must
agree with it, else the pattern is refused (:class:`RadiationConflictError`): one of the two is wrong and
only the user can say which.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from labeltune.core.errors import LabelTuneError
from labeltune.core.xrd.pattern import TUBE_LINES, Pattern, tube_line_in_nm
from labeltune.core.xrd.peak_profile import KA_PAIRS

ANODES = ("Cu", "Mo", "Co", "Fe", "Cr", "Ag")
"""The laboratory anodes ``--radiation`` names, in the order of ``peak_profile.KA_PAIRS``."""

AGREEMENT = 3e-3
"""Å: a stated wavelength this close to the given one is the same radiation (Cu Kα1 1.54056 and the
Kα mean 1.54184 agree; the nearest two anodes, Co and Fe, differ by 0.15 Å)."""

KA2_RATIO = 0.5
"""Kα2/Kα1 intensity ratio of an unmonochromated tube."""

_NAME = re.compile(r"^\s*([A-Za-z]{2})[\s_-]*K(?:a|α|alpha)(1?)\s*$", re.IGNORECASE)


class RadiationError(LabelTuneError):
    """A ``--radiation`` value that names no known line and is no wavelength in Å."""


class RadiationConflictError(LabelTuneError):
    """A file states a wavelength that is not the radiation the user gave (one line naming both)."""


@dataclass(frozen=True)
class Radiation:
    """A stated radiation: ``wavelength`` is Kα1 (Å); ``wavelength2`` Kα2 and its intensity ratio.

    ``ka2_ratio`` 0 says monochromated Kα1 (no Kα2 in the fit); None with ``wavelength2`` None lets the
    fit decide, as for a file that says nothing.
    """

    name: str
    wavelength: float
    wavelength2: float | None = None
    ka2_ratio: float | None = None


def parse_radiation(text: str) -> Radiation:
    """``CuKa``, ``Co Kα1``, ``mo-ka``... or a wavelength in Å (``1.78897``); `RadiationError` otherwise."""
    match = _NAME.match(text)
    if match:
        anode = match.group(1).capitalize()
        if anode not in ANODES:
            raise RadiationError(_usage(text))
        ka1, ka2 = KA_PAIRS[ANODES.index(anode)]
        if match.group(2):
            return Radiation(f"{anode}Ka1", ka1, ka2, 0.0)
        return Radiation(f"{anode}Ka", ka1, ka2, KA2_RATIO)
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise RadiationError(_usage(text)) from None
    line = tube_line_in_nm(value)
    if line is not None:
        raise RadiationError(f"--radiation {value:g} is {line} in nm; give it in ångström: {value * 10:g}")
    if not 0.1 <= value <= 5.0:
        raise RadiationError(_usage(text))
    named = next((n for n, a in TUBE_LINES.items() if abs(value - a) <= 5e-4 * a), None)
    return Radiation(f"{value:g} Å" + (f" ({named})" if named else ""), value)


def _usage(text: str) -> str:
    names = ", ".join(f"{a}Ka" for a in ANODES)
    return (
        f"--radiation {text!r}: give an anode ({names}; add 1 for monochromated Kα1, e.g. CuKa1) "
        "or a wavelength in Å (0.1-5, e.g. 0.7093)"
    )


def with_radiation(pattern: Pattern, radiation: Radiation) -> Pattern:
    """``pattern`` measured with ``radiation``; raises `RadiationConflictError` when the file says otherwise.

    A file that states a wavelength keeps its own values (its Kα2 too) once they agree; one that does not
    takes the radiation's, with ``wavelength_source="setting"`` and ``metadata["radiation"]`` naming it.
    """
    stated = pattern.wavelength if pattern.wavelength_source == "file" else None
    if stated is not None:
        if abs(stated - radiation.wavelength) > AGREEMENT:
            line = next((f" ({n})" for n, a in TUBE_LINES.items() if abs(stated - a) <= 5e-4 * a), "")
            raise RadiationConflictError(
                f"{pattern.source.name}: the file states {stated:g} Å{line}, not {radiation.name} "
                f"({radiation.wavelength:g} Å) as given with --radiation; leave --radiation out or correct it"
            )
        return dataclasses.replace(pattern, metadata={**pattern.metadata, "radiation": radiation.name})
    return dataclasses.replace(
        pattern,
        wavelength=radiation.wavelength,
        wavelength2=radiation.wavelength2,
        ka2_ratio=radiation.ka2_ratio,
        wavelength_source="setting",
        metadata={**pattern.metadata, "radiation": radiation.name},
        radiation="xray" if pattern.radiation == "unknown" else pattern.radiation,
    )


def radiation_used(pattern: Pattern) -> dict[str, Any] | None:
    """What the prediction of ``pattern`` used: ``{name?, wavelength, wavelength2?, source}``.

    ``source`` is ``"file"`` (the file states it), ``"given"`` (``--radiation``) or ``"setting"`` (the
    caller's default wavelength, e.g. the model's); None when the wavelength is unknown.
    """
    if pattern.wavelength is None:
        return None
    out: dict[str, Any] = {}
    given = pattern.metadata.get("radiation")
    if given:
        out["name"] = given
    out["wavelength"] = round(float(pattern.wavelength), 5)
    if pattern.wavelength2 is not None and pattern.ka2_ratio != 0.0:
        out["wavelength2"] = round(float(pattern.wavelength2), 5)
    source = pattern.wavelength_source
    out["source"] = "given" if given and source == "setting" else source
    return out
