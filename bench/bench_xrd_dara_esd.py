"""Do `predict`'s fraction esds cover the weighing? The 40 dara scans, with and without the grain-size term.

For every weighed phase `predict` calls: |fraction − weighed| against 2 esd, with the esd as reported
(the fit's misfit-aware esd joined by what 5 µm grains would change, ADR 0068) and with the fit's alone.
The model must know the dara phases (``bench_xrd_sim2real.py`` trains one; a library named by mineral
works too).

Run: ``PYTHONPATH=desktop python bench/bench_xrd_dara_esd.py --model RUN_DIR``. Not a test.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np

from bench_xrd_dara_false_phases import DARA, dara_model, weighed_names
from labeltune.core.xrd.absorption import TYPICAL_PARTICLE_UM, brindley_correction
from labeltune.core.xrd.dara import parse_dara_name
from labeltune.core.xrd.readers import read_pattern


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per weighed phase called, then the coverage both ways."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", metavar="RUN_DIR", help="an XRD run over the dara library")
    args = parser.parse_args(argv)
    model = dara_model(args.model)
    if model is None:
        return 0
    scans = [read_pattern(p) for p in sorted(DARA.glob("*.xrdml"))]
    errors, fit_only, reported = [], [], []
    for pattern, prediction in zip(scans, model.predict_many(scans), strict=True):
        names = weighed_names(model.library, pattern.source.name)
        weighed = dict(zip(names, parse_dara_name(pattern.source.name).fractions, strict=True))
        shown = {c.name: float(c.fraction or 0.0) for c in prediction.phases}
        moved = brindley_correction(shown, model.library, TYPICAL_PARTICLE_UM).fractions
        total = sum(shown.values())
        for call in prediction.phases:
            if call.name not in weighed or call.fraction is None or call.fraction_esd is None:
                continue
            change = moved[call.name] - shown[call.name] / total
            esd_fit = math.sqrt(max(call.fraction_esd**2 - change**2, 0.0))
            error = abs(call.fraction - weighed[call.name])
            errors.append(error)
            fit_only.append(esd_fit)
            reported.append(call.fraction_esd)
            print(
                f"  {pattern.source.name[:46]:46s} {call.name[:12]:12s} {100 * call.fraction:5.1f} / "
                f"{100 * weighed[call.name]:5.1f} wt %  esd {100 * esd_fit:4.1f} -> "
                f"{100 * call.fraction_esd:4.1f}"
            )
    err = np.array(errors)
    for label, esd in (("the fit's esd alone", fit_only), ("as reported (+ grain size)", reported)):
        e = np.array(esd)
        print(
            f"{label:28s}: |error| < 2 esd {np.mean(err < 2 * e):.2f}, < 1 esd {np.mean(err < e):.2f}, "
            f"median esd {100 * np.median(e):.2f} points ({len(err)} phases, mean |error| "
            f"{100 * err.mean():.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
