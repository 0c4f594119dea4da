"""False phases on the weighed dara 8-min scans: what the presence tests let through (ADR 0056, 0066).

Two figures with an XRD run over the dara library (e.g. ``bench/bench_xrd_sim2real.py``'s simulated run):

* the phases ``predict`` calls on the unspiked 8-min scans that the weighing does not list;
* every absent library phase fitted together with each scan's weighed phases and put to the fit's
  evidence (``phase_decision.evidence`` at the base level α = 0.001, no prior): how many pass.

Run: ``PYTHONPATH=desktop python bench/bench_xrd_dara_false_phases.py --model RUN_DIR``. Not a test.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from labeltune.core.xrd.dara import parse_dara_name
from labeltune.core.xrd.inference import XrdModel, load_xrd_model
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.metrics import resolve_label
from labeltune.core.xrd.phase_decision import evidence
from labeltune.core.xrd.quantify import fit_phases
from labeltune.core.xrd.readers import read_pattern

DARA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd" / "dara_mixtures" / "labeled"


def weighed_names(library: Library, file_name: str) -> list[str]:
    """The library names of a scan's weighed phases (``metrics.resolve_label``: a name, else its formula).

    ``bench_xrd_sim2real.py`` names its library by formula; a library built in the app by mineral name.
    """
    out = []
    for phase in parse_dara_name(file_name).phases:
        matches = resolve_label(phase, library)
        if len(matches) != 1:
            raise SystemExit(f"{phase} (weighed in {file_name}) is {len(matches)} phases of the library")
        out.append(library.names[matches[0]])
    return out


def dara_model(run_dir: str | None) -> XrdModel | None:
    """The XRD run at ``run_dir``; None, with a line saying what is needed, without one.

    ``make bench`` runs every script bare: the dara benches say what they need instead of failing.
    """
    if run_dir is None:
        print("needs --model RUN_DIR: an XRD run over the dara library (bench_xrd_sim2real.py trains one)")
        return None
    return load_xrd_model(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Print both figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", metavar="RUN_DIR", help="an XRD run over the dara library")
    args = parser.parse_args(argv)
    model = dara_model(args.model)
    if model is None:
        return 0
    scans = [read_pattern(p) for p in sorted(DARA.glob("*--8min.xrdml"))]
    unlisted = 0
    for pattern, prediction in zip(scans, model.predict_many(scans), strict=True):
        weighed = set(weighed_names(model.library, pattern.source.name))
        for call in prediction.phases:
            if call.name not in weighed:
                unlisted += 1
                share = 100 * (call.fraction or 0)
                print(f"  called, not weighed: {pattern.source.name}: {call.name} {share:.1f} %")
    print(f"unspiked 8-min scans: {unlisted} phases not weighed in, called on {len(scans)} scans")
    passing = total = 0
    for pattern in scans:
        weighed = weighed_names(model.library, pattern.source.name)
        without = fit_phases(pattern, model.library, weighed)
        for name in model.library.names:
            if name in weighed:
                continue
            total += 1
            found, why = evidence(fit_phases(pattern, model.library, [*weighed, name]), without, name)
            passing += found
            if found:
                print(f"  absent, passing: {pattern.source.name}: {name} ({why})")
    print(f"absent phases passing the evidence with the weighed set: {passing}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
