"""How well do the shipped dara structures fit the measured weighed mixtures, peak by peak? (ADR 0055).

For every 8-min scan of ``dara_mixtures/labeled`` the weighed phases are fitted (the app's least-squares
fit, ``fit_phases``): Rwp, zero shift, each phase's fitted / weighed wt% and lattice scale. Then, with
``labeltune.core.xrd.structure_check``, for each phase weighed at ``--major`` or more in a scan, its
strongest free peaks are compared with the measurement (position misfit, measured / calculated
integral), and the cell those measured peaks imply over all such scans is refined and set beside the
CIF's cell.

Run: ``PYTHONPATH=desktop python bench/bench_dara_structures.py [--cifs DIR] [--out /tmp/dara_structures]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from labeltune.core.xrd.dara import dara_cifs, parse_dara_name
from labeltune.core.xrd.library import build_library
from labeltune.core.xrd.quantify import fit_phases
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.structure_check import PeakMisfit, peak_misfits, refine_cell

DARA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd" / "dara_mixtures" / "labeled"


def main() -> None:
    """Fit every 8-min scan and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifs", type=Path, help="a folder of the ten CIFs (default: the shipped ones)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/dara_structures"))
    parser.add_argument("--major", type=float, default=0.2, help="smallest weighed fraction to check peaks")
    parser.add_argument("--peaks", type=int, default=12, help="strongest free peaks checked per phase")
    args = parser.parse_args()
    cifs = sorted(args.cifs.glob("*.cif")) if args.cifs else dara_cifs()
    library = build_library(cifs, args.out / "library")
    scans = sorted(DARA.glob("*--8min.xrdml"))
    print("| mixture | Rwp % | zero ° | phase: fitted / weighed wt%, lattice scale |\n|---|---|---|---|")
    worst: list[str] = []
    measured: dict[str, list[PeakMisfit]] = {name: [] for name in library.names}
    rwps = []
    for path in scans:
        name = parse_dara_name(path.name)
        result = fit_phases(read_pattern(path), library, list(name.phases))
        rwps.append(result.rwp)
        fits = {p.name: p for p in result.phases}
        cells = [
            f"{p} {fits[p].weight_fraction * 100:.1f} / {f * 100:.1f}, {fits[p].lattice_scale:.4f}"
            for p, f in zip(name.phases, name.fractions, strict=True)
        ]
        print(f"| {name.mixture} | {result.rwp * 100:.1f} | {result.zero_shift:+.3f} | {'; '.join(cells)} |")
        for phase, fraction in zip(name.phases, name.fractions, strict=True):
            if fraction < args.major:
                continue
            rows = peak_misfits(result, library, phase, n=args.peaks)
            if not rows:
                continue
            measured[phase] += rows
            shift = max(rows, key=lambda r: abs(r.shift))
            ratio = max(rows, key=lambda r: abs(np.log(max(r.ratio, 1e-3))))
            worst.append(
                f"| {phase} | {name.mixture} | {len(rows)} | {shift.shift:+.3f} at {shift.two_theta:.2f} | "
                f"{ratio.ratio:.2f} at {ratio.two_theta:.2f} {ratio.hkl} | "
                f"{np.median([abs(np.log(max(r.ratio, 1e-3))) for r in rows]):.2f} |"
            )
    print(f"\nmean Rwp {np.mean(rwps) * 100:.2f} %, max {np.max(rwps) * 100:.2f} % over {len(rwps)} scans")
    print(
        f"\n## Free peaks of the phases weighed at >= {args.major * 100:.0f} %\n\n"
        "| phase | mixture | peaks | worst position misfit ° | worst measured/calculated | "
        "median abs log ratio |\n|---|---|---|---|---|---|"
    )
    print("\n".join(sorted(worst)))
    print("\n## Cells the measured peaks imply (all those scans) against the CIF\n")
    print("| phase | peaks | measured a b c β | CIF a b c β | measured / CIF |\n|---|---|---|---|---|")
    for phase in library.names:
        rows = measured[phase]
        cif = library.phase(phase).cell
        try:
            cell = refine_cell(cif, [(r.hkl, r.d) for r in rows])
        except ValueError as error:
            print(f"| {phase} | {len(rows)} | {error} | | |")
            continue
        picks = (0, 1, 2, 4)
        print(
            f"| {phase} | {len(rows)} | {' '.join(f'{cell[i]:.4f}' for i in picks)} | "
            f"{' '.join(f'{cif[i]:.4f}' for i in picks)} | "
            f"{' '.join(f'{cell[i] / cif[i]:.4f}' for i in picks)} |"
        )


if __name__ == "__main__":
    main()
