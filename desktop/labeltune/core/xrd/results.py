"""Plain result records of XRD phase identification, shared by the fit, the model, the CLI and the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labeltune.core.uncertainty import hypothesis_doubt, presence_doubt


@dataclass(frozen=True)
class UnexplainedPeak:
    """A significant peak of the measurement that no identified phase accounts for.

    ``height`` is the residual peak height relative to the measurement's strongest peak (0..1);
    ``significance`` its amplitude over its standard deviation (``residual_peaks``; 0 when not known).
    """

    two_theta: float
    d: float
    height: float
    significance: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UnexplainedPeak:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            float(data["two_theta"]), float(data["d"]), float(data["height"]), float(data.get("z", 0.0))
        )

    def to_json(self) -> dict[str, float]:
        """The peak as a JSON-ready dict (rounded)."""
        out = {"two_theta": round(self.two_theta, 3), "d": round(self.d, 4), "height": round(self.height, 4)}
        if self.significance:
            out["z"] = round(self.significance, 1)
        return out


_OPTIONAL = (
    "fraction",
    "fraction_esd",
    "fraction_network",
    "lattice_scale",
    "shift_deg",
    "absolute_fraction",
    "absolute_fraction_esd",
)
"""The optional numbers of a :class:`PhaseCall`, in their JSON order."""


@dataclass(frozen=True)
class PhaseCall:
    """One phase the model considers: network probability, and the fitted weight fraction when present.

    ``fraction`` is the least-squares weight fraction (0..1) when the fit ran, else the network's;
    ``fraction_network`` is always the network's fraction head. ``lattice_scale`` is the fitted d-spacing
    scale (1.0 = the CIF's lattice), ``shift_deg`` the resulting shift of the phase's strongest peak.
    ``fraction_esd`` is the fitted fraction's standard uncertainty; with an internal standard,
    ``absolute_fraction`` (and its esd) is the weight fraction of the whole (spiked) sample.
    """

    name: str
    formula: str
    probability: float
    fraction: float | None = None
    fraction_network: float | None = None
    lattice_scale: float | None = None
    shift_deg: float | None = None
    fraction_esd: float | None = None
    absolute_fraction: float | None = None
    absolute_fraction_esd: float | None = None
    preferred_orientation: tuple[tuple[int, int, int], float] | None = None
    """(direction [hkl], March–Dollase r) when the fit refined texture (ADR 0063); JSON
    ``{"direction": [h, k, l], "r": r}``."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseCall:
        """Rebuild from :meth:`to_json` output."""
        optional = _OPTIONAL
        po = data.get("preferred_orientation")
        orientation = None
        if isinstance(po, dict) and po.get("direction") is not None and po.get("r") is not None:
            h, k, l_ = (int(v) for v in po["direction"])
            orientation = ((h, k, l_), float(po["r"]))
        return cls(
            str(data["name"]),
            str(data["formula"]),
            float(data["probability"]),
            **{k: float(data[k]) for k in optional if data.get(k) is not None},
            preferred_orientation=orientation,
        )

    def to_json(self) -> dict[str, Any]:
        """The call as a JSON-ready dict; ``None`` values are left out."""
        out: dict[str, Any] = {
            "name": self.name,
            "formula": self.formula,
            "probability": round(self.probability, 4),
        }
        for key in _OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                out[key] = round(float(value), 5 if key == "lattice_scale" else 4)
        if self.preferred_orientation is not None:
            direction, r = self.preferred_orientation
            out["preferred_orientation"] = {"direction": [int(v) for v in direction], "r": round(float(r), 3)}
        return out


PHASE_PENALTY = 0.10
"""In the doubt between phase sets, each phase multiplies a set's Rwp by 1 + this: a further phase must
lower Rwp by about 10 % to count as a better explanation (the decision asks as much of a minor phase)."""


@dataclass(frozen=True)
class Alternative:
    """One competing hypothesis for a pattern: a whole phase set, its fitted weight fractions and fit quality.

    ``rwp`` is the fit's weighted-profile R factor (0..1, lower is better); ``chi2`` the reduced χ² (about 1
    for a fit within counting noise when the intensities are raw counts); ``chosen`` marks the set the
    model reports as ``phases``.
    """

    phases: tuple[str, ...]
    fractions: tuple[float, ...]
    rwp: float
    chi2: float | None = None
    chosen: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alternative:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            tuple(str(p) for p in data["phases"]),
            tuple(float(f) for f in data.get("fractions") or ()),
            float(data["rwp"]),
            None if data.get("chi2") is None else float(data["chi2"]),
            bool(data.get("chosen", False)),
        )

    def to_json(self) -> dict[str, Any]:
        """``{phases, fractions, rwp, chi2?, chosen}`` (rounded)."""
        out: dict[str, Any] = {
            "phases": list(self.phases),
            "fractions": [round(f, 4) for f in self.fractions],
            "rwp": round(self.rwp, 5),
        }
        if self.chi2 is not None:
            out["chi2"] = round(self.chi2, 4)
        out["chosen"] = self.chosen
        return out


@dataclass
class XrdPrediction:
    """Phases identified in one pattern.

    ``phases`` are the phases called present, sorted by probability; ``candidates`` the next most likely
    absent ones (for the app's "also considered" list). ``residual`` is the fit's weighted-profile
    R factor (Rwp, 0..1) or ``None`` without a fit; ``calculated`` is the fitted profile on
    ``fit_two_theta``. ``activation`` maps a phase name to its class activation over ``two_theta``
    (0..1; which parts of the pattern drove that phase's probability). ``alternatives`` are whole phase
    sets the fit tried, best Rwp first (the chosen one among them; see ``core/xrd/alternatives.py``).
    """

    path: str
    phases: list[PhaseCall]
    candidates: list[PhaseCall] = field(default_factory=list)
    unexplained_peaks: list[UnexplainedPeak] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    residual: float | None = None
    zero_shift: float | None = None
    two_theta: np.ndarray | None = None
    activation: dict[str, np.ndarray] = field(default_factory=dict)
    fit_two_theta: np.ndarray | None = None
    """2θ of the fitted profile (the library's wavelength), when the fit ran."""
    calculated: np.ndarray | None = None
    """The fitted profile (phases + background) in the measurement's intensity units."""
    alternatives: list[Alternative] = field(default_factory=list)
    detection_limits: dict[str, float] = field(default_factory=dict)
    """Library phases not found that the fit tried: the weight fraction each would need to be seen."""
    amorphous: float | None = None
    """With an internal standard: the weight fraction of the sample no crystalline phase explains."""
    amorphous_esd: float | None = None
    internal_standard: tuple[str, float] | None = None
    """(phase name, weight fraction spiked) when the prediction used an internal standard."""
    radiation: dict[str, Any] | None = None
    """The radiation the pattern was read with (``core/xrd/radiation.radiation_used``; ADR 0058)."""
    texture: str | None = None
    """``"auto"`` or ``"off"`` when the fit ran: whether the final refit of the decided phases could refine a
    March–Dollase preferred orientation (``predict --texture``; ADR 0065)."""
    excluded: list[tuple[float, float]] = field(default_factory=list)
    """2θ ranges the fit left out: peaks outside the library that pulled a phase onto them (ADR 0078)."""

    def limits_text(self, count: int = 3) -> str:
        """The ``count`` most likely phases tried and not found with their detection limits, as text.

        ``"LiF_225 0.4, Mn2O3_206 1.2"`` (wt %); a phase the decision could not accept at any fraction
        (no reflection of its own left in the range, ADR 0067) reads "no peak of its own". Empty when
        none was tried.
        """
        return ", ".join(
            f"{name} {value * 100:.1f}" if value < 1.0 else f"{name} no peak of its own"
            for name, value in list(self.detection_limits.items())[:count]
        )

    @property
    def uncertainty(self) -> float:
        """How unsure the model is about this pattern, 0 (sure) .. 1 (a coin toss).

        With competing phase sets (the fit ran), how close the second best set comes to the best in Rwp,
        each phase costing ``PHASE_PENALTY`` (the fit decides: ADR 0009); without them, the network's
        smallest margin of a phase probability from 0.5 (``core/uncertainty.py``; ADR 0032).
        """
        if self.alternatives:
            return hypothesis_doubt(
                [a.rwp for a in self.alternatives], [len(a.phases) for a in self.alternatives], PHASE_PENALTY
            )
        probs = np.array([c.probability for c in [*self.phases, *self.candidates]], dtype=np.float64)
        return float(presence_doubt(probs[None])[0]) if len(probs) else 1.0

    def to_json(self) -> dict[str, Any]:
        """The prediction as JSON: ``{path, phases, unexplained_peaks, warnings?, residual?, ...}``.

        Then ``zero_shift?``, ``candidates``, ``alternatives`` (competing phase sets), ``uncertainty``,
        ``detection_limits`` (phase -> weight fraction) and, with an internal standard,
        ``internal_standard {name, weight_fraction}``, ``amorphous`` and ``amorphous_esd``; ``radiation``
        (``{name?, wavelength, wavelength2?, source}``) when it is known; ``texture`` (``auto``/``off``)
        when the fit ran; ``excluded`` (``[[lo, hi], ...]`` 2θ left out of the fit, ADR 0078) when any.
        """
        out: dict[str, Any] = {"path": self.path, "phases": [p.to_json() for p in self.phases]}
        out["unexplained_peaks"] = [p.to_json() for p in self.unexplained_peaks]
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.residual is not None:
            out["residual"] = round(self.residual, 4)
        if self.zero_shift is not None:
            out["zero_shift"] = round(self.zero_shift, 4)
        out["candidates"] = [p.to_json() for p in self.candidates]
        out["alternatives"] = [a.to_json() for a in self.alternatives]
        out["uncertainty"] = round(self.uncertainty, 4)
        out["detection_limits"] = {k: round(v, 4) for k, v in self.detection_limits.items()}
        if self.internal_standard is not None:
            out["internal_standard"] = {
                "name": self.internal_standard[0],
                "weight_fraction": round(self.internal_standard[1], 4),
            }
        if self.amorphous is not None:
            out["amorphous"] = round(self.amorphous, 4)
            out["amorphous_esd"] = round(self.amorphous_esd or 0.0, 4)
        if self.radiation is not None:
            out["radiation"] = dict(self.radiation)
        if self.texture is not None:
            out["texture"] = self.texture
        if self.excluded:
            out["excluded"] = [[round(lo, 3), round(hi, 3)] for lo, hi in self.excluded]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> XrdPrediction:
        """Rebuild from :meth:`to_json` output (without the arrays: activation and fitted profile)."""
        return cls(
            path=str(data["path"]),
            phases=[PhaseCall.from_json(p) for p in data.get("phases", [])],
            candidates=[PhaseCall.from_json(p) for p in data.get("candidates", [])],
            unexplained_peaks=[UnexplainedPeak.from_json(p) for p in data.get("unexplained_peaks", [])],
            warnings=[str(w) for w in data.get("warnings", [])],
            residual=None if data.get("residual") is None else float(data["residual"]),
            zero_shift=None if data.get("zero_shift") is None else float(data["zero_shift"]),
            alternatives=[Alternative.from_json(a) for a in data.get("alternatives") or []],
            detection_limits={str(k): float(v) for k, v in (data.get("detection_limits") or {}).items()},
            amorphous=None if data.get("amorphous") is None else float(data["amorphous"]),
            amorphous_esd=None if data.get("amorphous_esd") is None else float(data["amorphous_esd"]),
            internal_standard=(
                (str(data["internal_standard"]["name"]), float(data["internal_standard"]["weight_fraction"]))
                if data.get("internal_standard")
                else None
            ),
            radiation=dict(data["radiation"]) if isinstance(data.get("radiation"), dict) else None,
            texture=str(data["texture"]) if data.get("texture") else None,
            excluded=[(float(lo), float(hi)) for lo, hi in data.get("excluded") or []],
        )
