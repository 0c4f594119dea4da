"""The `Pattern` every XRD reader returns, and the checks that build one from raw arrays."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.xrd.bragg import d_of_two_theta, two_theta_of_d

MIN_POINTS = 10
"""A pattern with fewer points than this is refused: it cannot hold a usable diffractogram."""

WAVELENGTH_SOURCES = ("file", "setting", "unknown")
RADIATIONS = ("xray", "neutron", "unknown")
"""What a pattern was measured with: the reference library is computed with X-ray form factors."""


class PatternReadError(UnusableInputError):
    """A file could not be read as a powder pattern; the message (one line) says why."""


class MissingWavelengthError(UnusableInputError):
    """An operation needs the X-ray wavelength, and the pattern does not know it."""


class NeutronDataError(UnusableInputError):
    """A neutron pattern met an X-ray library or model (computed with X-ray form factors)."""


def require_xray(pattern: Pattern) -> None:
    """Refuse a neutron pattern for X-ray use (predict, project import), naming the file (ADR 0045).

    Neutron and X-ray patterns of one phase differ in their peak intensities (nuclear scattering
    lengths, not X-ray form factors), so an X-ray library would fit them wrongly without saying so.
    """
    if getattr(pattern, "radiation", None) == "neutron":
        why = pattern.metadata.get("radiation_from", "the file is marked as neutron data")
        raise NeutronDataError(
            f"{pattern.source.name}: neutron diffraction data ({why}); the reference library and the "
            "models are computed for X-rays, so it cannot be identified or imported here"
        )


def valid_wavelength(value: float | None) -> float | None:
    """Return `value` as a float when it is a plausible X-ray wavelength in Å (0.01-10), else None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or not 0.01 <= number <= 10.0:
        return None
    return number


TUBE_LINES: dict[str, float] = {
    "Cu Kα1": 1.54056, "Cu Kα": 1.54184, "Co Kα1": 1.78897, "Co Kα": 1.79026, "Mo Kα1": 0.70930,
    "Mo Kα": 0.71073, "Cr Kα1": 2.28970, "Fe Kα1": 1.93604, "Ag Kα1": 0.55941,
}  # fmt: skip
"""Laboratory X-ray lines (Å)."""


def tube_line_in_nm(value: float | None) -> str | None:
    """The tube line ``value`` is in nanometres (0.154056 → "Cu Kα1"), or None.

    Only a value within 0.05 % of a line divided by ten counts: a synchrotron tuned to exactly a tenth
    of a tube line is far less likely than a wavelength written in nm.
    """
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return next((n for n, a in TUBE_LINES.items() if abs(value * 10 - a) <= 5e-4 * a), None)


@dataclass(frozen=True, eq=False)
class Pattern:
    """One measured powder pattern: 2θ in degrees (ascending) and the intensity at each angle.

    ``wavelength`` is Kα1 (Å) when known, ``wavelength2`` Kα2 when the file gives it and
    ``ka2_ratio`` the Kα2/Kα1 intensity ratio. ``wavelength_source`` says where the wavelength
    came from: ``"file"``, ``"setting"`` (the caller's project setting) or ``"unknown"``.
    ``esd`` holds each intensity's standard uncertainty when the file gives one (``.xye``, GSAS, RIET7),
    else None; ``radiation`` is ``"xray"``, ``"neutron"`` or ``"unknown"`` (see `require_xray`).
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: float | None
    source: Path
    format: str
    wavelength2: float | None = None
    ka2_ratio: float | None = None
    wavelength_source: str = "unknown"
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """What was odd about the file but did not stop it being used (one line each, without the file name)."""
    esd: np.ndarray | None = None
    radiation: str = "unknown"

    def __len__(self) -> int:
        """Number of points."""
        return int(self.two_theta.shape[0])

    def _require_wavelength(self) -> float:
        if self.wavelength is None:
            raise MissingWavelengthError(
                f"{self.source.name}: the X-ray wavelength is not known; set it in the project settings"
            )
        return self.wavelength

    def d_spacing(self) -> np.ndarray:
        """The d-spacing (Å) of every point by Bragg's law, d = λ / (2 sin θ); needs the wavelength."""
        return d_of_two_theta(self.two_theta, self._require_wavelength())

    def converted(self, wavelength: float) -> Pattern:
        """The pattern re-expressed in 2θ for another wavelength (same d-spacings).

        Points that have no solution at the new wavelength (λ' > 2d) are dropped; Kα2 and its
        ratio are cleared, as they belong to the original source.
        """
        target = valid_wavelength(wavelength)
        if target is None:
            raise ValueError(f"not a usable wavelength: {wavelength!r} (Å, expected 0.01-10)")
        all_two_theta, keep = two_theta_of_d(self.d_spacing(), target)
        two_theta = all_two_theta[keep]
        order = np.argsort(two_theta, kind="stable")
        metadata = dict(self.metadata)
        metadata["converted_from_wavelength"] = repr(self.wavelength)
        return dataclasses.replace(
            self,
            two_theta=two_theta[order].astype(np.float64),
            intensity=self.intensity[keep][order].copy(),
            esd=None if self.esd is None else self.esd[keep][order].copy(),
            wavelength=target,
            wavelength2=None,
            ka2_ratio=None,
            metadata=metadata,
        )

    def resampled(self, grid: np.ndarray, fill: float = 0.0) -> Pattern:
        """The pattern linearly interpolated onto `grid` (2θ, ascending); `fill` outside the data."""
        target = np.asarray(grid, dtype=np.float64)
        if target.ndim != 1 or target.size == 0:
            raise ValueError("the resampling grid must be a non-empty 1-D array of 2θ values")
        if not np.all(np.isfinite(target)):
            raise ValueError("the resampling grid holds NaN or infinite values")
        if target.size > 1 and np.any(np.diff(target) <= 0):
            raise ValueError("the resampling grid must be strictly ascending")
        values = np.interp(target, self.two_theta, self.intensity, left=fill, right=fill)
        esd = None if self.esd is None else np.interp(target, self.two_theta, self.esd, left=0.0, right=0.0)
        return dataclasses.replace(
            self, two_theta=target.copy(), intensity=values.astype(np.float64), esd=esd
        )

    def normalised(self) -> Pattern:
        """The pattern scaled so that its largest intensity is 1 (unchanged when nothing is positive)."""
        peak = float(np.max(self.intensity)) if len(self) else 0.0
        if not peak > 0:
            return dataclasses.replace(self, intensity=self.intensity.copy())
        esd = None if self.esd is None else self.esd / peak
        return dataclasses.replace(self, intensity=self.intensity / peak, esd=esd)


def make_pattern(
    two_theta: Any,
    intensity: Any,
    *,
    source: Path,
    format: str,
    wavelength: float | None = None,
    wavelength2: float | None = None,
    ka2_ratio: float | None = None,
    metadata: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    esd: Any = None,
    radiation: str = "unknown",
) -> Pattern:
    """Check raw arrays and build a `Pattern` (float64, sorted by ascending 2θ).

    Raises `PatternReadError` (one-line message) for mismatched lengths, fewer than `MIN_POINTS`
    points, NaN/infinite values, angles outside 0-180° or a scan that does not move.
    The wavelength is taken as given (None when the file does not state it, or states an implausible one).
    What is odd but usable becomes a warning (``Pattern.warnings``, after the reader's ``notes``):
    descending angles (sorted), repeated angles (their intensities averaged), negative intensities
    (kept: background-subtracted data has them) and an implausible stated wavelength (ignored).
    ``esd`` (one non-negative uncertainty per intensity, or None) follows the points through the sorting.
    """
    name = source.name
    try:
        x = np.asarray(two_theta, dtype=np.float64).reshape(-1)
        y = np.asarray(intensity, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PatternReadError(f"{name}: the values are not numbers ({exc})") from None
    if x.shape != y.shape:
        raise PatternReadError(f"{name}: {x.size} angles but {y.size} intensities")
    e = _checked_esd(esd, y, name)
    if radiation not in RADIATIONS:
        raise ValueError(f"radiation must be one of {RADIATIONS}, not {radiation!r}")
    if x.size < MIN_POINTS:
        raise PatternReadError(f"{name}: only {x.size} data points (at least {MIN_POINTS} are needed)")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise PatternReadError(f"{name}: the data hold NaN or infinite values")
    if np.any(x < 0) or np.any(x >= 180):
        raise PatternReadError(
            f"{name}: 2θ values run from {x.min():g} to {x.max():g}; expected degrees between 0 and 180"
        )
    if float(x.max() - x.min()) <= 0:
        raise PatternReadError(f"{name}: every point has the same angle ({x[0]:g}°)")
    warnings = list(notes)
    steps = np.diff(x)
    if np.any(steps < 0):
        if np.all(steps <= 0):
            warnings.append("the 2θ values descend (a downward scan): sorted into ascending order")
        else:
            warnings.append("the 2θ values are not in order: sorted")
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        e = None if e is None else e[order]
    if e is not None and x.size > 1 and not np.all(np.diff(x) > 0):
        _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)  # esd of a mean
        e = np.sqrt(np.bincount(inverse, weights=e**2) / counts**2)
    x, y, repeated = _merge_repeated_angles(x, y)
    if x.size < MIN_POINTS:
        raise PatternReadError(f"{name}: only {x.size} distinct angles (at least {MIN_POINTS} are needed)")
    if repeated:
        warnings.append(
            f"{repeated} duplicate 2θ value(s) (overlapping scans?): the intensities at each are averaged"
        )
    negative = int(np.count_nonzero(y < 0))
    if negative:
        warnings.append(
            f"{negative} point(s) have negative intensity (down to {float(y.min()):g}; background-subtracted "
            "data?): kept as measured"
        )
    line = tube_line_in_nm(wavelength)
    if line is not None and wavelength is not None:
        warnings.append(
            f"the stated wavelength {wavelength:g} is {line} in nm: read as {wavelength * 10:g} Å"
        )
        wavelength = wavelength * 10
        if isinstance(wavelength2, (int, float)) and abs(wavelength2 * 10 - wavelength) < 0.05 * wavelength:
            wavelength2 = wavelength2 * 10  # Kα2 beside it, in nm too
    w1 = valid_wavelength(wavelength)
    if w1 is None and isinstance(wavelength, (int, float)) and wavelength != 0:
        warnings.append(
            f"the stated wavelength {wavelength!r} is not a plausible value in Å (0.01-10): ignored"
        )
    return Pattern(
        two_theta=np.ascontiguousarray(x),
        intensity=np.ascontiguousarray(y),
        wavelength=w1,
        wavelength2=valid_wavelength(wavelength2) if w1 is not None else None,
        ka2_ratio=_valid_ratio(ka2_ratio),
        wavelength_source="file" if w1 is not None else "unknown",
        source=source,
        format=format,
        metadata={str(k): str(v) for k, v in (metadata or {}).items()},
        warnings=tuple(warnings),
        esd=None if e is None else np.ascontiguousarray(e),
        radiation=radiation,
    )


def _checked_esd(esd: Any, y: np.ndarray, name: str) -> np.ndarray | None:
    """The esd column as float64, or a refusal when it does not match the intensities or is negative."""
    if esd is None:
        return None
    try:
        e = np.asarray(esd, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PatternReadError(f"{name}: the esd values are not numbers ({exc})") from None
    if e.shape != y.shape:
        raise PatternReadError(f"{name}: {y.size} intensities but {e.size} esd values")
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise PatternReadError(f"{name}: an esd (standard uncertainty) is negative, NaN or infinite")
    return e


def _merge_repeated_angles(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Average the intensities of points at the same angle (``x`` ascending); return how many repeats."""
    if x.size < 2 or np.all(np.diff(x) > 0):
        return x, y, 0
    unique, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    mean = np.bincount(inverse, weights=y, minlength=unique.size) / counts
    return unique, mean.astype(np.float64), int(x.size - unique.size)


def _valid_ratio(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None
