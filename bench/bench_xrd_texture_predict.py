"""``predict --texture off`` against ``--texture auto`` on the weighed dara mixtures (ADR 0065).

Every 8-min scan of ``dara_mixtures/labeled`` (weighed phases and fractions in the file name) is predicted
by an XRD run over the dara library (the network proposes, the fit decides) once with texture off and once
with ``auto`` (phases decided without texture, texture refined in a last refit of the decided set). Per
mode: phase sets (exact / weighed phases found / absent phases called), mean |fitted − weighed| over the
weighed phases found (wt % points), esd coverage (share of those within 2 esd), mean Rwp, the textures kept
and seconds per scan; and whether the two modes called identical phase sets on every scan. Optionally the
same on the 2-min scans. ``--simulated N``: the same on N simulated mixtures of the run's library (2-3
phases, 10-80 wt %) with the simulator's random per-peak intensity errors (``--texture-sigma``, 0.15 as in
training) and no real texture: what texture ``auto`` does where there is none to find (ADR 0063's
addendum). Not a test: prints tables only.

Run: ``PYTHONPATH=desktop python bench/bench_xrd_texture_predict.py --model RUN_DIR`` (an XRD run trained
on the dara library, e.g. ``bench/bench_xrd_sim2real.py``'s simulated run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench_xrd_dara_false_phases import dara_model
from labeltune.core.xrd.dara import parse_dara_name
from labeltune.core.xrd.inference import XrdModel
from labeltune.core.xrd.metrics import canonical_formula
from labeltune.core.xrd.pattern import Pattern, make_pattern
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.simulate import SimulationConfig, simulate

DARA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd" / "dara_mixtures" / "labeled"
MODES = ("off", "auto")


def _cell(prediction: XrdPrediction, truth: dict[str, float]) -> str:
    parts = []
    for p in sorted(prediction.phases, key=lambda c: -(c.fraction or 0.0)):
        weighed = f"/{truth[p.name] * 100:.1f}" if p.name in truth else "/absent"
        text = f"{p.name} {(p.fraction or 0) * 100:.1f}±{(p.fraction_esd or 0) * 100:.1f}{weighed}"
        if p.preferred_orientation is not None:
            direction, r = p.preferred_orientation
            text += f" r={r:.2f}[{''.join(map(str, direction))}]"
        parts.append(text)
    return f"{(prediction.residual or 0) * 100:.1f} | " + "; ".join(parts)


def _dara(scans: str) -> list[tuple[str, Pattern, dict[str, float]]]:
    pattern_glob = "*.xrdml" if scans == "all" else f"*--{scans}.xrdml"
    out = []
    for path in sorted(DARA.glob(pattern_glob)):
        name = parse_dara_name(path.name)
        out.append(
            (
                path.name.removesuffix(".xrdml"),
                read_pattern(path),
                dict(zip(name.phases, name.fractions, strict=True)),
            )
        )
    return out


def _simulated(model: XrdModel, n: int, sigma: float) -> list[tuple[str, Pattern, dict[str, float]]]:
    rng = np.random.default_rng(0)
    config = SimulationConfig(
        texture_sigma=sigma, impurity_probability=0.0, crystallite_nm=(60.0, 400.0), max_counts=(2e4, 2e4),
        background=(0.02, 0.1), ka2_probability=1.0,
    )  # fmt: skip
    out = []
    for i in range(n):
        k = int(rng.integers(2, 4))
        names: list[str] = []
        keys: set[str] = set()
        for j in rng.permutation(len(model.names)):
            key = canonical_formula(model.formulas[int(j)])
            if key not in keys:
                names.append(model.names[int(j)])
                keys.add(key)
            if len(names) == k:
                break
        while True:
            fractions = rng.dirichlet(np.ones(k))
            if fractions.min() >= 0.1 and fractions.max() <= 0.8:
                break
        truth = dict(zip(names, (float(f) for f in fractions), strict=True))
        batch = simulate(model.library, 1, config, 100 + i, composition=truth)
        pattern = make_pattern(
            batch.two_theta, batch.x[0] * 2e4, source=Path(f"sim{i}.xy"), format="xy", wavelength=1.5406
        )
        out.append((f"sim{i} " + "+".join(names), pattern, truth))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Predict every scan in both modes and print the per-scan table and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", metavar="RUN_DIR", help="an XRD run over the dara library")
    parser.add_argument("--scans", default="8min", choices=("8min", "2min", "all", "none"))
    parser.add_argument("--simulated", type=int, default=0, metavar="N", help="N simulated mixtures too")
    parser.add_argument("--texture-sigma", type=float, default=0.15)
    args = parser.parse_args(argv)
    model = dara_model(args.model)
    if model is None:
        return 0
    if args.scans != "none":
        print(f"## dara {args.scans} scans\n")
        _compare(model, _dara(args.scans))
    if args.simulated:
        print(
            f"\n## {args.simulated} simulated mixtures, random peak-intensity errors {args.texture_sigma}\n"
        )
        _compare(model, _simulated(model, args.simulated, args.texture_sigma))
    return 0


def _compare(model: XrdModel, scans: list[tuple[str, Pattern, dict[str, float]]]) -> None:
    errors: dict[str, list[float]] = {m: [] for m in MODES}
    covered: dict[str, list[bool]] = {m: [] for m in MODES}
    rwp: dict[str, list[float]] = {m: [] for m in MODES}
    found = dict.fromkeys(MODES, 0)
    false = dict.fromkeys(MODES, 0)
    exact = dict.fromkeys(MODES, 0)
    seconds = dict.fromkeys(MODES, 0.0)
    weighed_total = 0
    same_sets = 0
    textures: list[str] = []
    print("| scan | Rwp % off | phases off | Rwp % auto | phases auto |\n|---|---|---|---|---|")
    for label, pattern, truth in scans:
        weighed_total += len(truth)
        row = [label]
        sets = []
        for mode in MODES:
            start = time.perf_counter()
            (prediction,) = model.predict_many([pattern], texture=mode == "auto")
            seconds[mode] += time.perf_counter() - start
            called = {p.name for p in prediction.phases}
            sets.append(called)
            exact[mode] += called == set(truth)
            found[mode] += len(called & set(truth))
            false[mode] += len(called - set(truth))
            rwp[mode].append(prediction.residual or 0.0)
            for p in prediction.phases:
                if p.name in truth:
                    error = abs((p.fraction or 0.0) - truth[p.name])
                    errors[mode].append(error)
                    covered[mode].append(error < 2 * (p.fraction_esd or 0.0))
                if mode == "auto" and p.preferred_orientation is not None:
                    direction, r = p.preferred_orientation
                    textures.append(f"{row[0]}: {p.name} r = {r:.2f} [{''.join(map(str, direction))}]")
            row.append(_cell(prediction, truth))
        same_sets += sets[0] == sets[1]
        print("| " + " | ".join(row) + " |", flush=True)
    print()
    print("| | off | auto |\n|---|---|---|")
    print(f"| scans with identical phase sets off/auto | {same_sets}/{len(scans)} | |")
    print(f"| exact phase sets | {exact['off']}/{len(scans)} | {exact['auto']}/{len(scans)} |")
    print(f"| weighed phases found | {found['off']}/{weighed_total} | {found['auto']}/{weighed_total} |")
    print(f"| absent phases called | {false['off']} | {false['auto']} |")
    for label, values, fmt in (
        ("mean \\|fitted − weighed\\| (wt % points)", errors, "{:.2f}"),
        ("esd coverage (\\|error\\| < 2 esd)", covered, "{:.3f}"),
        ("mean Rwp %", rwp, "{:.2f}"),
    ):
        scale = 1.0 if values is covered else 100.0
        cells = [fmt.format(float(np.mean(values[m])) * scale) if values[m] else "-" for m in MODES]
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    within = [f"{sum(covered[m])}/{len(covered[m])}" for m in MODES]
    print(f"| within 2 esd | {within[0]} | {within[1]} |")
    per_scan = [seconds[m] / max(len(scans), 1) for m in MODES]
    print(f"| seconds per scan (predict) | {per_scan[0]:.2f} | {per_scan[1]:.2f} |")
    print("\ntextures kept (auto):")
    for line in textures or ["none"]:
        print(f"  {line}")


if __name__ == "__main__":
    raise SystemExit(main())
