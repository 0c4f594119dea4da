"""Labeled XRD measurements for training: what a source folder holds, ``labels.csv``, patterns on the grid.

No torch: the GUI and the CLI read labels with it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labeltune.core.errors import UnusableInputError
from labeltune.core.untrusted import inside
from labeltune.core.xrd.library import LIBRARY_FILE, Library
from labeltune.core.xrd.metrics import FormulaError, label_key, resolve_label
from labeltune.core.xrd.pattern import require_xray

LABELS_FILE = "labels.csv"


@dataclass
class Measured:
    """Labeled measurements on the library grid: x (n, points), groups of library indices per pattern."""

    x: np.ndarray
    groups: list[list[list[int]]]
    fractions: list[list[float] | None]
    paths: list[str]
    keys: list[set[str]] = field(default_factory=list)
    """Each pattern's labeled phases as formula keys (:func:`~labeltune.core.xrd.metrics.label_key`)."""

    def subset(self, rows: Sequence[int]) -> Measured:
        """The patterns at ``rows``."""
        idx = list(rows)
        return Measured(
            self.x[idx],
            [self.groups[i] for i in idx],
            [self.fractions[i] for i in idx],
            [self.paths[i] for i in idx],
            [self.keys[i] for i in idx] if self.keys else [],
        )


def source_kind(source: Path) -> str:
    """``"library"``, ``"simulated"`` or ``"measured"`` (raises UnusableInputError otherwise)."""
    if (source / LIBRARY_FILE).is_file():
        return "library"
    if (source / "patterns.npy").is_file() and (source / "meta.json").is_file():
        return "simulated"
    if (source / LABELS_FILE).is_file():
        return "measured"
    raise UnusableInputError(
        f"{source} is not an XRD library (library.json), simulated set (patterns.npy + meta.json) "
        "or labeled folder (labels.csv with path,phases[,fractions])"
    )


def read_labels_csv(folder: Path) -> list[tuple[Path, list[str], list[float] | None]]:
    """Rows of ``labels.csv``: (pattern path, phase tokens, fractions or None). Raises UnusableInputError."""
    path = folder / LABELS_FILE
    in_project = (folder / "xrd_project.json").is_file()  # its rows must stay inside it (ADR 0043)
    rows: list[tuple[Path, list[str], list[float] | None]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "path" not in reader.fieldnames or "phases" not in reader.fieldnames:
            raise UnusableInputError(f"{path}: needs a header with the columns path,phases[,fractions]")
        for line, row in enumerate(reader, start=2):
            rel = (row.get("path") or "").strip()
            if not rel:
                continue
            tokens = [t.strip() for t in (row.get("phases") or "").split(";") if t.strip()]
            raw = (row.get("fractions") or "").strip()
            fractions: list[float] | None = None
            if raw:
                try:
                    fractions = [float(v) for v in raw.split(";")]
                except ValueError:
                    raise UnusableInputError(
                        f"{path}:{line}: fractions must be numbers joined by ';'"
                    ) from None
                if len(fractions) != len(tokens):
                    raise UnusableInputError(
                        f"{path}:{line}: {len(tokens)} phases but {len(fractions)} fractions"
                    )
                total = sum(fractions)
                if total > 1.5:  # percent
                    fractions = [v / 100.0 for v in fractions]
                    total /= 100.0
                if abs(total - 1.0) > 0.02 or min(fractions) < 0:
                    raise UnusableInputError(
                        f"{path}:{line}: weight fractions must be >= 0 and sum to 1 (or 100 %), not {total:g}"
                    )
            p = Path(rel)
            p = p if p.is_absolute() else folder / p
            if in_project and not inside(os.path.realpath(p), os.path.realpath(folder)):
                raise UnusableInputError(  # ADR 0043: a project reads its own patterns only
                    f"{path}:{line}: {rel} lies outside the project folder; an XRD project's patterns are "
                    "in its patterns/ folder (import the file to use it)"
                )
            rows.append((p, tokens, fractions))
    if not rows:
        raise UnusableInputError(f"{path} lists no patterns")
    return rows


def grid_of(library: Library, points: int | None = None) -> np.ndarray:
    """The model's 2θ grid for a library (0.02° steps by default)."""
    lo, hi = library.two_theta_range
    n = points if points is not None else round((hi - lo) / 0.02) + 1
    return np.linspace(lo, hi, n)


def pattern_on_grid(pattern: Any, library: Library, grid: np.ndarray) -> np.ndarray:
    """A measured :class:`Pattern` at the library wavelength, interpolated onto ``grid`` (zeros outside).

    A neutron pattern is refused here (`require_xray`), the one door every model input goes through.
    """
    require_xray(pattern)
    if pattern.wavelength is not None and abs(pattern.wavelength - library.wavelength) > 1e-3:
        pattern = pattern.converted(library.wavelength)
    values = np.interp(grid, pattern.two_theta, pattern.intensity, left=0.0, right=0.0)
    values = np.maximum(values, 0.0)
    top = values.max()
    return (values / top if top > 0 else values).astype(np.float32)  # type: ignore[no-any-return]


def load_measured(
    folder: Path, library: Library, grid: np.ndarray, default_wavelength: float | None = None
) -> Measured:
    """Read a labeled measurement folder onto ``grid`` (raises UnusableInputError with every problem)."""
    from labeltune.core.xrd.readers import read_pattern

    xs: list[np.ndarray] = []
    groups: list[list[list[int]]] = []
    fractions: list[list[float] | None] = []
    paths: list[str] = []
    keys: list[set[str]] = []
    problems: list[str] = []
    for path, tokens, fracs in read_labels_csv(folder):
        try:
            pattern = read_pattern(path, default_wavelength=default_wavelength)
            group = [resolve_label(t, library) for t in tokens]
            key = {label_key(t, library) for t in tokens}
        except (UnusableInputError, FormulaError, OSError) as exc:
            reason = str(exc)  # a reader's reason names the file already
            problems.append(reason if reason.startswith(f"{path.name}: ") else f"{path.name}: {reason}")
            continue
        xs.append(pattern_on_grid(pattern, library, grid))
        groups.append(group)
        fractions.append(fracs)
        paths.append(str(Path(path).resolve()))
        keys.append(key)
    if problems and not xs:
        raise UnusableInputError("no usable labeled pattern: " + "; ".join(problems[:5]))
    if problems:
        raise UnusableInputError(
            f"{len(problems)} labeled pattern(s) cannot be used (fix or remove them from labels.csv): "
            + "; ".join(problems[:5])
        )
    return Measured(np.stack(xs), groups, fractions, paths, keys)
