"""Preferred orientation (March–Dollase, ADR 0063) on the weighed dara mixtures: fit with and without it.

For every 8-min scan of ``dara_mixtures/labeled`` the weighed phases are fitted (``fit_phases``) once
with ``texture=False`` and once with ``texture=True`` (refined where significant): Rwp, each phase's
fitted ± esd / weighed wt% and the refined direction and r, then the mean |fitted − weighed|, the esd
coverage (share with |error| < 2 esd), mean Rwp and seconds per fit. Not a test: prints tables only.

Run: ``PYTHONPATH=desktop python bench/bench_xrd_texture.py [--out /tmp/dara_texture]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from labeltune.core.xrd.dara import dara_cifs, parse_dara_name
from labeltune.core.xrd.library import build_library
from labeltune.core.xrd.quantify import FitResult, fit_phases
from labeltune.core.xrd.readers import read_pattern

DARA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd" / "dara_mixtures" / "labeled"


def _row(fit: FitResult, truth: dict[str, float]) -> str:
    cells = []
    for p in fit.phases:
        text = f"{p.name} {p.weight_fraction * 100:.1f}±{p.fraction_esd * 100:.1f}/{truth[p.name] * 100:.1f}"
        if p.preferred_orientation is not None:
            direction, r = p.preferred_orientation
            text += f" r={r:.2f}[{''.join(map(str, direction))}]"
        cells.append(text)
    return f"{fit.rwp * 100:.1f} | " + "; ".join(cells)


def main() -> None:
    """Fit every 8-min scan without and with texture and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/dara_texture"))
    args = parser.parse_args()
    library = build_library(dara_cifs(), args.out / "library")
    scans = sorted(DARA.glob("*--8min.xrdml"))
    errors: dict[bool, list[float]] = {False: [], True: []}
    covered: dict[bool, list[bool]] = {False: [], True: []}
    rwp: dict[bool, list[float]] = {False: [], True: []}
    seconds = {False: 0.0, True: 0.0}
    print("| mixture | Rwp % no texture | phases | Rwp % texture | phases |\n|---|---|---|---|---|")
    for path in scans:
        name = parse_dara_name(path.name)
        truth = dict(zip(name.phases, name.fractions, strict=True))
        pattern = read_pattern(path)
        row = [name.mixture]
        for texture in (False, True):
            start = time.perf_counter()
            fit = fit_phases(pattern, library, list(name.phases), texture=texture)
            seconds[texture] += time.perf_counter() - start
            rwp[texture].append(fit.rwp)
            for p in fit.phases:
                error = abs(p.weight_fraction - truth[p.name])
                errors[texture].append(error)
                covered[texture].append(error < 2 * p.fraction_esd)
            row.append(_row(fit, truth))
        print("| " + " | ".join(row) + " |", flush=True)
    print()
    for texture in (False, True):
        per_fit = seconds[texture] / max(len(scans), 1)
        print(
            f"texture {'on ' if texture else 'off'}: mean |fitted - weighed| "
            f"{np.mean(errors[texture]) * 100:.2f} points, esd coverage {np.mean(covered[texture]):.2f}, "
            f"mean Rwp {np.mean(rwp[texture]) * 100:.2f} %, {per_fit:.2f} s per fit"
        )


if __name__ == "__main__":
    main()
