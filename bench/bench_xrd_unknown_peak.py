"""A 1 wt % phase beside a phase the library lacks: is it found, or pulled onto the unknown's peak? (ADR 0078)

The round robin's first mixture (``bench_xrd_round_robin.py``: corundum 1.15, fluorite 94.81, zincite
4.04 wt %, scanned 15-145° 2θ) with ``--share`` of periclase in the sample taken from the fluorite, and a
library without periclase: a lab's library that lacks a phase of its sample. The decision
(``phase_decision``) runs on probabilities given in place of a network's (fluorite 0.95, zincite 0.2,
every other phase 0.002, as in ``tests/xrd_quant/test_xrd_round_robin.py``), so no model is trained and
the corundum must come from the residual screen. Per draw: the corundum found or missed (with its
detection limit when it was tried), absent phases called, the 2θ range left out (ADR 0078), the time.

Run: ``PYTHONPATH=desktop python bench/bench_xrd_unknown_peak.py [--draws 24] [--misfit 0.10]``. Not a test.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench_xrd_round_robin import CORUNDUM, FLUORITE, MIXTURES, ZINCITE, cifs
from labeltune.core.xrd.alternatives import PhaseSetFits
from labeltune.core.xrd.library import Library, build_library, load_library
from labeltune.core.xrd.metrics import canonical_formula
from labeltune.core.xrd.pattern import make_pattern
from labeltune.core.xrd.phase_decision import PhaseDecision
from labeltune.core.xrd.simulate import SimulationConfig, simulate

PERICLASE = "9006758"
RANGE = (15.0, 145.0)


def _library(folder: Path, paths: list[Path]) -> Library:
    if (folder / "library.json").is_file():
        return load_library(folder)
    return build_library(paths, folder, naming="cif", two_theta_range=RANGE)


def main(argv: Sequence[str] | None = None) -> int:
    """One line per draw, then how many corundums were found and how many absent phases called."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-unknown-peak"))
    parser.add_argument("--draws", type=int, default=24)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--misfit", type=float, default=0.10)
    parser.add_argument("--share", type=float, default=0.03, help="periclase in the sample (0: none)")
    args = parser.parse_args(argv)
    paths = cifs()
    if not any(p.stem == PERICLASE for p in paths):
        print("needs the shared COD CIFs (periclase 9006758 among them)")
        return 0
    sample = _library(args.out / "sample", paths)
    lab = _library(args.out / "lab", [p for p in paths if p.stem != PERICLASE])
    names = {Path(p.source).stem: p.name for p in sample.phases}
    corundum, fluorite, zincite = names[CORUNDUM], names[FLUORITE], names[ZINCITE.stem]
    index = {name: j for j, name in enumerate(lab.names)}
    probs = np.full(len(lab.names), 0.002)
    probs[index[fluorite]], probs[index[zincite]] = 0.95, 0.2
    keys = [canonical_formula(p.formula) for p in lab.phases]
    mix = dict(zip((corundum, fluorite, zincite), (w / 100 for w in MIXTURES[0]), strict=True))
    mix[fluorite] -= args.share
    if args.share > 0:
        mix[names[PERICLASE]] = args.share
    config = SimulationConfig(
        texture_sigma=args.misfit, impurity_probability=0.0, crystallite_nm=(80.0, 400.0),
        max_counts=(2e4, 2e4), background=(0.02, 0.1), ka2_probability=1.0,
    )  # fmt: skip
    found, absent = 0, 0
    for seed in range(args.first, args.first + args.draws):
        batch = simulate(sample, 1, config, seed, composition=mix)
        source = Path(f"rr{seed}.xy")
        scan = make_pattern(batch.two_theta, batch.x[0] * 2e4, source=source, format="xy", wavelength=1.5406)
        start = time.perf_counter()
        fits = PhaseSetFits(scan, lab)
        decided = PhaseDecision(fits, lab.names, keys, probs).decide([index[fluorite]])
        fractions = {p.name: p.weight_fraction for p in decided.fit.phases}
        extra = sorted(set(fractions) - {corundum, fluorite, zincite})
        found += corundum in fractions
        absent += len(extra)
        limit = decided.detection_limits.get(corundum)
        shown = f"{100 * fractions[corundum]:.2f} %" if corundum in fractions else "missed"
        shown += f" (limit {100 * limit:.2f} %)" if limit is not None else ""
        left = "; ".join(f"{lo:.2f}-{hi:.2f}° left out" for lo, hi in fits.excluded)
        print(f"draw {seed:3d}: corundum {shown:22s} absent called {extra or '-'}  {left}  "
              f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    print(f"\ncorundum (1.15 wt %) found in {found} of {args.draws} draws; absent phases called {absent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
