"""What a reported detection limit means on measured scans: how often a phase at it is then found.

``predict`` reports, for each phase it tried and did not find, a detection limit (the weight fraction
the phase would have needed: ``PhaseDecision._detection_limits``, ADR 72 and 75). On the weighed dara
8-min scans this bench takes every limit up to ``--max-limit`` and spikes that phase's calculated pattern
into the scan at 0.5, 1 and 1.5 times it (drawn as ``bench_xrd_sim2real.spiked`` draws, with counting
noise), then predicts again. A limit that means what it says finds about half the spikes at 1× (it is
the level at which the decision's tests would just pass), few at 0.5× and most at 1.5×.

Run: ``PYTHONPATH=desktop python bench/bench_xrd_dara_limits.py --model RUN_DIR`` with an XRD run over
the dara library (``bench/bench_xrd_sim2real.py`` trains one). Not a test.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from bench_xrd_dara_false_phases import DARA, dara_model, weighed_names
from bench_xrd_sim2real import spiked
from labeltune.core.xrd.quantify import fit_phases
from labeltune.core.xrd.readers import read_pattern

FACTORS = (0.5, 1.0, 1.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Print each limit's outcome and the share found at each multiple of the limit."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", metavar="RUN_DIR", help="an XRD run over the dara library")
    parser.add_argument("--max-limit", type=float, default=0.25, help="limits above this are left out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = dara_model(args.model)
    if model is None:
        return 0
    library = model.library
    rng = np.random.default_rng(args.seed)
    scans = [read_pattern(p) for p in sorted(DARA.glob("*--8min.xrdml"))]
    found = {f: 0 for f in FACTORS}
    total = 0
    for pattern, prediction in zip(scans, model.predict_many(scans), strict=True):
        base = fit_phases(pattern, library, weighed_names(library, pattern.source.name))
        for name, limit in prediction.detection_limits.items():
            if limit > args.max_limit:
                continue
            total += 1
            seen = []
            for factor in FACTORS:
                test = spiked(pattern, base, library, name, limit * factor, rng)
                hit = name in {c.name for c in model.predict(test).phases}
                found[factor] += hit
                seen.append("found" if hit else "missed")
            print(f"  {pattern.source.name}: {name} limit {100 * limit:.1f} %: {', '.join(seen)}", flush=True)
    print(f"\n{total} limits of at most {100 * args.max_limit:.0f} wt % on {len(scans)} scans")
    print("| spiked at | found |\n|---|---|")
    for factor in FACTORS:
        print(f"| {factor:g} × the limit | {found[factor]}/{total} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
