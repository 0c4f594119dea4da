"""Labels read from pattern file names: ``Li2CO3_0p9001-ZrO2_0p1000--8min.xrdml`` → Li2CO3 90.01 %, ZrO2 10 %.

Labs name the scans of weighed mixtures after what they weighed in. A :class:`NamePattern` says how:
what separates the phases (``-``), what separates a phase from its amount (``_``), the decimal mark used
in names (``p``, since a dot would start the extension), what ends the mixture part (``--``; the rest is a
note such as the scan time) and whether amounts are fractions (0..1) or percent. :func:`parse_name` turns
one file name into a :class:`NameLabel`; :func:`match_phases` says which of its phases a library knows
(as a phase name or as the formula of some of its phases). Nothing here writes labels: the app previews
them and applies them through the project's batch API (one undo step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labeltune.core.xrd.library import Library
from labeltune.core.xrd.metrics import FormulaError, parse_formula, resolve_label

__all__ = ["NameLabel", "NamePattern", "PhaseMatch", "formula_problem", "match_phases", "parse_name"]

SUM_TOLERANCE = 0.02
"""Amounts that add up to 1 within this are kept as weight fractions, as stated (the app saves fractions
only when they add up to 100 % within 2 points)."""


@dataclass(frozen=True)
class NamePattern:
    """How a file name spells a mixture (the defaults read the dara names, ``A_0p9001-B_0p1000--8min``)."""

    phase_separator: str = "-"
    amount_separator: str = "_"
    decimal_mark: str = "p"
    end_marker: str = "--"
    percent: bool = False
    """Amounts are weight percent (``A_90-B_10``) rather than fractions (``A_0p90-B_0p10``)."""

    def __post_init__(self) -> None:
        """Refuse a pattern that cannot split a name (empty or equal separators)."""
        if not self.phase_separator or not self.amount_separator:
            raise ValueError("the phase and amount separators must not be empty")
        if self.phase_separator == self.amount_separator:
            raise ValueError("the phase and amount separators must differ")


@dataclass(frozen=True)
class NameLabel:
    """What one file name says: phases, their weight fractions (or ``None``) and any problem."""

    name: str
    phases: tuple[str, ...] = ()
    fractions: tuple[float, ...] | None = None
    problem: str = ""
    """Why the name gives no label ("" when it gives one)."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Whether the name gives a label."""
        return bool(self.phases) and not self.problem

    def summary(self) -> str:
        """``Li2CO3 90.01 % + ZrO2 10.00 %`` (phases alone without amounts)."""
        if self.fractions is None:
            return " + ".join(self.phases)
        return " + ".join(f"{p} {f * 100:.2f} %" for p, f in zip(self.phases, self.fractions, strict=True))


def formula_problem(text: str) -> str | None:
    """Why ``text`` is not a chemical formula of real elements (``In2O3``, ``La(OH)3``), or ``None``."""
    try:
        counts = parse_formula(text)
    except FormulaError:
        return f"{text!r} is not a chemical formula"
    import gemmi

    unknown = [el for el in counts if gemmi.Element(el).atomic_number == 0]
    if unknown:
        return f"{text!r} names no element {', '.join(unknown)}"
    return None


def _amount(text: str, pattern: NamePattern) -> float:
    """``0p9001`` → 0.9001 (``90`` → 0.90 with percent); raises ValueError."""
    value = float(text.replace(pattern.decimal_mark, ".") if pattern.decimal_mark else text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value / 100.0 if pattern.percent else value


def parse_name(file_name: str, pattern: NamePattern | None = None) -> NameLabel:
    """The label a file name states (see the module docstring); never raises for a bad name."""
    pattern = pattern or NamePattern()
    stem = Path(file_name).name
    while Path(stem).suffix[1:].isalpha():
        stem = Path(stem).stem  # .xrdml, .xy.gz...; not the ".5" of an amount
    if pattern.end_marker and pattern.end_marker in stem:
        stem = stem.split(pattern.end_marker, 1)[0]
    phases: list[str] = []
    amounts: list[float | None] = []
    for part in [p for p in stem.split(pattern.phase_separator) if p.strip()]:
        phase, sep, amount = part.rpartition(pattern.amount_separator)
        if not sep:
            phase, amount = part, ""
        phase = phase.strip()
        problem = formula_problem(phase)
        if problem is not None:
            return NameLabel(file_name, problem=problem)
        try:
            amounts.append(_amount(amount, pattern) if amount else None)
        except ValueError:
            return NameLabel(file_name, problem=f"{amount!r} is not an amount (in {part!r})")
        if phase in phases:
            return NameLabel(file_name, problem=f"{phase} is named twice")
        phases.append(phase)
    if not phases:
        return NameLabel(file_name, problem="the name states no phase")
    return _with_fractions(file_name, phases, amounts)


def _with_fractions(file_name: str, phases: list[str], amounts: Sequence[float | None]) -> NameLabel:
    if all(a is None for a in amounts):
        return NameLabel(file_name, tuple(phases))
    if any(a is None for a in amounts):
        return NameLabel(
            file_name, tuple(phases), None, notes=("amounts given for some phases only: none kept",)
        )
    values = [float(a) for a in amounts if a is not None]
    total = sum(values)
    if abs(total - 1.0) > SUM_TOLERANCE:
        note = f"the amounts add up to {total * 100:.1f} %, not 100 %: kept without fractions"
        return NameLabel(file_name, tuple(phases), None, notes=(note,))
    return NameLabel(file_name, tuple(phases), tuple(values))


@dataclass(frozen=True)
class PhaseMatch:
    """How one labeled phase relates to a library: itself, a formula of some of its phases, or unknown."""

    phase: str
    library_phases: tuple[str, ...]

    @property
    def known(self) -> bool:
        """Whether the library has the phase (by name or formula)."""
        return bool(self.library_phases)

    def text(self) -> str:
        """``TiO2 → TiO2 (anatase), TiO2_136`` or ``In2O3: not in the library``."""
        if not self.library_phases:
            return f"{self.phase}: not in the library"
        if self.library_phases == (self.phase,):
            return self.phase
        return f"{self.phase} → {', '.join(self.library_phases)}"


def match_phases(phases: Sequence[str], library: Library | None) -> list[PhaseMatch]:
    """For each phase, the library phases it stands for (none without a library or a match)."""
    out: list[PhaseMatch] = []
    for phase in phases:
        found: tuple[str, ...] = ()
        if library is not None:
            try:
                found = tuple(library.names[i] for i in resolve_label(phase, library))
            except FormulaError:
                found = ()
        out.append(PhaseMatch(phase, found))
    return out
