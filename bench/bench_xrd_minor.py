"""Minor phases, fraction esds and amorphous content with the shipped XRD model (issue 14).

Run: ``PYTHONPATH=desktop .venv/bin/python bench/bench_xrd_minor.py [--n 8] [--counts 20000] [--model RUN]``.
Not a test: prints tables only.

* Simulated mixtures from the shipped library (``models/xrd-li-mn-ti-o-f``): two major phases and one
  minor phase at 0.5, 1 and 2 wt % (random phases, distinct formulas, good data: ``--counts`` at the
  strongest peak, no impurity peaks or texture). Per level: recall of the minor phase, false phases
  called, mean |fraction error| of the phases found and esd coverage (share of |error| < 2 esd).
* Internal standard: a fully crystalline simulated mixture spiked with 20 wt % of a library phase,
  then the same with 20 wt % amorphous content (a broad hump at 2θ ≈ 25°): the reported amorphous share.
* The 8 measured Li-Mn-Ti-O-F demo patterns: exact phase sets.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np

from labeltune.core.xrd.inference import XrdModel, load_xrd_model
from labeltune.core.xrd.metrics import canonical_formula
from labeltune.core.xrd.pattern import Pattern, make_pattern
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.simulate import SimulationConfig, simulate

LEVELS = (0.005, 0.01, 0.02)
STANDARD = "LiF_225"
STANDARD_WT = 0.20


def _settings(counts: float, seed: int) -> SimulationConfig:
    return SimulationConfig(
        texture_sigma=0.0,
        impurity_probability=0.0,
        crystallite_nm=(60.0, 400.0),
        max_counts=(counts, counts),
        background=(0.02, 0.1),
        ka2_probability=1.0,
    )


def _simulated(model: XrdModel, composition: dict[str, float], seed: int, counts: float) -> Pattern:
    batch = simulate(model.library, 1, _settings(counts, seed), seed, composition=composition)
    return make_pattern(
        batch.two_theta, batch.x[0] * counts, source=Path(f"sim{seed}.xy"), format="xy", wavelength=1.5406
    )


def _pick(model: XrdModel, rng: np.random.Generator, k: int, exclude: Sequence[str] = ()) -> list[str]:
    keys = {canonical_formula(model.library.phase(n).formula) for n in exclude}
    out: list[str] = []
    for j in rng.permutation(len(model.names)):
        name = model.names[int(j)]
        key = canonical_formula(model.formulas[int(j)])
        if key not in keys:
            out.append(name)
            keys.add(key)
        if len(out) == k:
            break
    return out


def _minor_table(
    model: XrdModel, n: int, counts: float, only_level: float | None = None, verbose: bool = False
) -> None:
    print(
        f"\nSimulated mixtures, two majors + one minor phase, {counts:g} counts at the strongest peak, n={n}"
    )
    print(f"{'minor wt %':>10} {'recall':>7} {'false':>6} {'|err| pts':>10} {'<2 esd':>7} {'limit %':>8}")
    for level in LEVELS if only_level is None else (only_level,):
        rng = np.random.default_rng(int(level * 10_000))
        found = false = 0
        errors: list[float] = []
        covered: list[bool] = []
        limits: list[float] = []
        for i in range(n):
            major = _pick(model, rng, 2)
            minor = _pick(model, rng, 1, exclude=major)[0]
            split = rng.uniform(0.3, 0.7)
            truth = {major[0]: split * (1 - level), major[1]: (1 - split) * (1 - level), minor: level}
            pred = model.predict(_simulated(model, truth, 1000 * i + int(level * 1000), counts))
            called = {p.name: p for p in pred.phases}
            if verbose:
                said = ", ".join(
                    f"{n} {100 * (p.fraction or 0):.2f}±{100 * (p.fraction_esd or 0):.2f}"
                    for n, p in called.items()
                )
                print(f"   truth {', '.join(f'{n} {100 * v:.2f}' for n, v in truth.items())} -> {said}")
            found += minor in called
            false += sum(1 for name in called if name not in truth)
            if minor not in called and minor in pred.detection_limits:
                limits.append(pred.detection_limits[minor])
            for name, p in called.items():
                if name in truth and p.fraction is not None:
                    err = abs(p.fraction - truth[name])
                    errors.append(err)
                    if p.fraction_esd:
                        covered.append(err < 2 * p.fraction_esd)
        print(
            f"{100 * level:10.1f} {found / n:7.2f} {false:6d} {100 * float(np.mean(errors)):10.2f} "
            f"{float(np.mean(covered)) if covered else math.nan:7.2f} "
            f"{100 * float(np.median(limits)) if limits else math.nan:8.2f}"
        )


def _standard_table(model: XrdModel, counts: float) -> None:
    print(f"\nInternal standard {STANDARD} at {100 * STANDARD_WT:.0f} wt %")
    print(f"{'sample':>28} {'true amorph %':>14} {'amorphous %':>12} {'esd':>6}")
    rng = np.random.default_rng(7)
    for i in range(3):
        others = _pick(model, rng, 2, exclude=[STANDARD])
        for amorphous in (0.0, 0.2):
            crystalline = 1.0 - STANDARD_WT - amorphous
            truth = {STANDARD: STANDARD_WT, others[0]: 0.6 * crystalline, others[1]: 0.4 * crystalline}
            pattern = _simulated(model, truth, 50 + i, counts)
            if amorphous:
                x = pattern.two_theta
                hump = 0.08 * counts * np.exp(-0.5 * ((x - 25.0) / 4.0) ** 2)
                pattern = make_pattern(
                    x, pattern.intensity + hump, source=pattern.source, format="xy", wavelength=1.5406
                )
            pred = model.predict(pattern, internal_standard=(STANDARD, STANDARD_WT))
            label = "+".join(others)
            print(
                f"{label:>28} {100 * amorphous:14.1f} {100 * (pred.amorphous or 0):12.1f} "
                f"{100 * (pred.amorphous_esd or 0):6.1f}"
            )


def _measured(model: XrdModel) -> None:
    folder = Path(str(files("labeltune") / "resources" / "demos" / "xrd" / "patterns"))
    exact = 0
    print("\nMeasured Li-Mn-Ti-O-F demo patterns")
    for path in sorted(folder.glob("*.xy")):
        pred: XrdPrediction = model.predict(read_pattern(path, default_wavelength=1.5406))
        truth = {canonical_formula(f) for f in path.stem.split("+")}
        called = {canonical_formula(p.formula) for p in pred.phases}
        exact += truth == called
        text = ", ".join(
            f"{p.name} {100 * (p.fraction or 0):.1f}±{100 * (p.fraction_esd or 0):.1f}" for p in pred.phases
        )
        print(f"  {path.stem:20s} {'ok ' if truth == called else 'NO '} {text}")
    print(f"exact phase sets: {exact}/8")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the three tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8, help="mixtures per minor-phase level")
    parser.add_argument("--counts", type=float, default=20000.0)
    parser.add_argument("--only", choices=("minor", "standard", "measured"), default=None)
    parser.add_argument("--verbose", action="store_true", help="one line per simulated mixture")
    parser.add_argument("--level", type=float, default=None, help="one minor-phase level only (wt fraction)")
    parser.add_argument("--model", default=None, metavar="RUN_DIR", help="another XRD run (default: shipped)")
    args = parser.parse_args(argv)
    folder = Path(args.model) if args.model else shipped_model_dir()
    if folder is None:
        raise SystemExit("the shipped XRD model is not in models/")
    print(f"model: {folder}")
    model = load_xrd_model(folder)
    if args.only in (None, "minor"):
        _minor_table(model, args.n, args.counts, args.level, args.verbose)
    if args.only in (None, "standard"):
        _standard_table(model, args.counts)
    if args.only in (None, "measured"):
        _measured(model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
