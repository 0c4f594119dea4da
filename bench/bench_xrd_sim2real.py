"""Does fine-tuning on measured patterns help? The weighed dara mixtures, split by mixture, 2-fold.

1. A library from the shipped dara CIFs (``labeltune/resources/xrd/dara``) and the least-squares fit of
   each 8-min scan's weighed phases (Rwp, fractions against the weighed ones): are the structures right?
2. A model trained on simulated patterns only (``--base RUN`` reuses one; otherwise it is trained here,
   ``--epochs`` x ``--patterns``).
3. For each seed: the 20 mixtures are shuffled and halved (both scans of a mixture on the same side); the
   base model is fine-tuned on one half's 20 labeled scans (``labels.csv`` with phases and weighed
   fractions, ``--init``) and both models are scored on the other half's 20 scans, then the halves swap.
   Scores: exact phase sets, phase recall and precision, mean absolute fraction error over the true
   phases in weight-% points (a missed phase counts its whole fraction), for the network alone and for
   network + fit (what ``labeltune predict`` reports).
4. Minor phases: each 8-min scan is spiked with the calculated pattern of an absent dara phase at 1 and
   2 wt% (the fit's own widths, zero shift and scale, plus its Poisson noise) and predicted: recall of
   the spiked phase, and the false phases called on the unspiked scans.

Run: ``PYTHONPATH=desktop python bench/bench_xrd_sim2real.py --base RUN --seeds 0 --out /tmp/s2r``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np

from labeltune.core.xrd.dara import dara_cifs, parse_dara_name
from labeltune.core.xrd.inference import XrdModel
from labeltune.core.xrd.library import Library, build_library
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.peak_profile import calculated_profile
from labeltune.core.xrd.quantify import VOLUME_POWER, FitResult, fit_phases
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd

DARA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd" / "dara_mixtures" / "labeled"


def check_structures(library: Library, scans: list[Path]) -> None:
    """Fit the weighed phases of every 8-min scan; print Rwp and fitted / weighed fractions."""
    print("\n## The true phases fitted to each 8-min scan (fitted ± esd / weighed wt%)\n")
    print("| mixture | Rwp % | phases |\n|---|---|---|")
    errors, covered = [], []
    for path in scans:
        if not path.name.endswith("--8min.xrdml"):
            continue
        name = parse_dara_name(path.name)
        result = fit_phases(read_pattern(path), library, list(name.phases))
        fitted = {p.name: p.weight_fraction for p in result.phases}
        esd = {p.name: p.fraction_esd for p in result.phases}
        cells = []
        for phase, weighed in zip(name.phases, name.fractions, strict=True):
            errors.append(abs(fitted[phase] - weighed) * 100)
            covered.append(abs(fitted[phase] - weighed) < 2 * esd[phase])
            cells.append(f"{phase} {fitted[phase] * 100:.1f}±{esd[phase] * 100:.1f} / {weighed * 100:.1f}")
        print(f"| {name.mixture} | {result.rwp * 100:.1f} | {'; '.join(cells)} |")
    print(f"\nmean |fitted - weighed| = {np.mean(errors):.2f} points over {len(errors)} phases")
    print(f"esd coverage (|fitted - weighed| < 2 esd): {np.mean(covered):.2f} of {len(covered)} phases")


def score(model: XrdModel, patterns: list[Pattern], fit: bool) -> dict[str, float]:
    """Exact sets, recall, precision and mean fraction error (points) of ``model`` on labeled patterns."""
    exact, tp, fp, fn, frac_err = 0, 0, 0, 0, []
    for pattern, prediction in zip(patterns, model.predict_many(patterns, fit=fit), strict=True):
        truth = parse_dara_name(pattern.source.name)
        called = {c.name: (c.fraction if fit and c.fraction is not None else c.fraction_network or 0.0)
                  for c in prediction.phases}  # fmt: skip
        exact += set(called) == set(truth.phases)
        tp += len(set(called) & set(truth.phases))
        fp += len(set(called) - set(truth.phases))
        fn += len(set(truth.phases) - set(called))
        frac_err += [
            abs(called.get(p, 0.0) - f) * 100 for p, f in zip(truth.phases, truth.fractions, strict=True)
        ]
    return {
        "exact": exact / len(patterns),
        "recall": tp / max(tp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "fraction_error": float(np.mean(frac_err)),
    }


def labeled_folder(scans: list[Path], folder: Path) -> Path:
    """Copy ``scans`` into ``folder`` with a ``labels.csv`` of their weighed phases and fractions."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "phases", "fractions"])
        for path in scans:
            shutil.copy(path, folder / path.name)
            name = parse_dara_name(path.name)
            writer.writerow([path.name, ";".join(name.phases), ";".join(f"{f:.4f}" for f in name.fractions)])
    return folder


def spiked(
    pattern: Pattern,
    result: FitResult,
    library: Library,
    phase: str,
    fraction: float,
    rng: np.random.Generator,
) -> Pattern:
    """``pattern`` plus ``phase`` at weight ``fraction`` of the whole, drawn as the fit ``result`` draws."""
    power = {p.name: p.scattering_power for p in library.phases}
    k = sum(p.scale * p.lattice_scale**VOLUME_POWER / power[p.name] for p in result.phases)
    scale = fraction / (1.0 - fraction) * k * power[phase]
    fwhm = float(np.median([p.fwhm_deg for p in result.phases]))
    profile = calculated_profile(
        library, phase, pattern.two_theta, zero_shift=result.zero_shift, fwhm_deg=fwhm,
        ka2_ratio=0.5 if result.ka2 else 0.0,
    )  # fmt: skip
    added = rng.poisson(np.clip(scale * profile, 0, None)).astype(np.float64)
    return dataclasses.replace(pattern, intensity=pattern.intensity + added)


def minor_phases(
    model: XrdModel,
    library: Library,
    scans: list[Path],
    seed: int,
    per_scan: int,
    levels: tuple[float, ...] = (0.01, 0.02),
) -> None:
    """Recall of a 1 and 2 wt% spiked absent phase (``per_scan`` random ones a scan); false phases."""
    rng = np.random.default_rng(seed)
    slow = [read_pattern(p) for p in scans if p.name.endswith("--8min.xrdml")]
    fits = [fit_phases(p, library, list(parse_dara_name(p.source.name).phases)) for p in slow]
    absent = {
        p.source.name: list(
            rng.permutation([n for n in library.names if n not in parse_dara_name(p.source.name).phases])
        )[:per_scan]
        for p in slow
    }
    false_phases = 0
    for pattern, prediction in zip(slow, model.predict_many(slow), strict=True):
        weighed = set(parse_dara_name(pattern.source.name).phases)
        extra = [c for c in prediction.phases if c.name not in weighed]
        false_phases += len(extra)
        for c in extra:
            print(
                f"  {pattern.source.name}: {c.name} {100 * c.fraction:.1f}",
                f"± {100 * (c.fraction_esd or 0):.1f} %",
            )
    print(f"\nunspiked 8-min scans: {false_phases} false phases called on {len(slow)} scans")
    print("\n| spike | found | recall | false phases besides the spike |\n|---|---|---|---|")
    for fraction in levels:
        found, extra, total, missed = 0, 0, 0, []
        for pattern, result in zip(slow, fits, strict=True):
            truth = parse_dara_name(pattern.source.name)
            for phase in absent[pattern.source.name]:
                test = spiked(pattern, result, library, phase, fraction, rng)
                called = {c.name for c in model.predict(test).phases}
                total += 1
                found += phase in called
                extra += len(called - set(truth.phases) - {phase})
                if phase not in called:
                    missed.append(str(phase))
        missed_by = {p: missed.count(p) for p in sorted(set(missed))}
        print(
            f"| {fraction * 100:.0f} wt% | {found}/{total} | {found / total:.2f} | {extra} |",
            f"missed: {missed_by}",
        )


def simulated_minor(model: XrdModel, library: Library, n: int, seed: int) -> None:
    """Recall of a 1 or 2 wt% phase in simulated 3-phase mixtures at 8-min-scan counts (10-20 k max)."""
    rng = np.random.default_rng(seed)
    grid = model.grid
    config = SimulationConfig(
        two_theta_min=float(grid[0]), two_theta_max=float(grid[-1]), points=len(grid), max_phases=3,
        max_counts=(10_000.0, 20_000.0), monochromatic=True,
    )  # fmt: skip
    print("\n| minor phase | found | recall | false phases | missed |\n|---|---|---|---|---|")
    for fraction in (0.01, 0.02):
        found, false_phases, missed = 0, 0, []
        for i in range(n):
            major_a, major_b, minor = (str(p) for p in rng.choice(library.names, 3, replace=False))
            share = float(rng.uniform(0.2, 0.8))
            composition = {
                major_a: share * (1 - fraction),
                major_b: (1 - share) * (1 - fraction),
                minor: fraction,
            }
            batch = simulate(library, 1, config, seed=seed * 1000 + i, composition=composition)
            counts = batch.x[0].astype(np.float64) * float(batch.max_counts[0])
            pattern = Pattern(
                two_theta=batch.two_theta, intensity=counts, wavelength=library.wavelength,
                source=Path(f"simulated-{i}.xy"), format="simulated",
            )  # fmt: skip
            called = {c.name for c in model.predict(pattern).phases}
            found += minor in called
            false_phases += len(called - set(composition))
            if minor not in called:
                missed.append(minor)
        missed_by = {p: missed.count(p) for p in sorted(set(missed))}
        print(f"| {fraction * 100:.0f} wt% | {found}/{n} | {found / n:.2f} | {false_phases} | {missed_by} |")


def main() -> None:
    """Run the experiment and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_xrd_sim2real"))
    parser.add_argument(
        "--base", type=Path, help="a simulated-only XRD run on the dara library (else train one)"
    )
    parser.add_argument("--epochs", type=int, default=20, help="base model epochs (when no --base)")
    parser.add_argument("--patterns", type=int, default=2048, help="simulated patterns per base epoch")
    parser.add_argument("--ft-epochs", type=int, default=6)
    parser.add_argument("--ft-patterns", type=int, default=512, help="patterns per fine-tuning epoch")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--spikes", type=int, default=3, help="absent phases spiked into each 8-min scan")
    parser.add_argument("--spike-levels", type=float, nargs="+", default=[0.01, 0.02])
    parser.add_argument("--simulated", type=int, default=30, help="simulated mixtures per minor fraction")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["structures", "finetune", "minor", "simulated"]
    )
    args = parser.parse_args()
    scans = sorted(DARA.glob("*.xrdml"))
    mixtures = sorted({parse_dara_name(p.name).mixture for p in scans})
    print(f"{len(scans)} scans of {len(mixtures)} weighed mixtures")
    library = build_library(dara_cifs(), args.out / "library")
    if "structures" not in args.skip:
        check_structures(library, scans)
    base = args.base
    if base is None:
        base = args.out / "base"
        start = time.perf_counter()
        config = XrdTrainConfig(epochs=args.epochs, patterns_per_epoch=args.patterns, threads=args.threads)
        train_xrd(library.path, config, base)  # type: ignore[arg-type]
        print(
            f"\nbase model: {args.epochs} x {args.patterns} simulated patterns, "
            f"{time.perf_counter() - start:.0f} s"
        )
    base_model = XrdModel(base)
    patterns = {p: read_pattern(p) for p in scans}
    if "finetune" not in args.skip:
        rows = []
        for seed in args.seeds:
            order = list(np.random.default_rng(seed).permutation(mixtures))
            halves = [set(order[: len(order) // 2]), set(order[len(order) // 2 :])]
            for fold, (train_half, test_half) in enumerate([(halves[0], halves[1]), (halves[1], halves[0])]):
                train_scans = [p for p in scans if parse_dara_name(p.name).mixture in train_half]
                test = [patterns[p] for p in scans if parse_dara_name(p.name).mixture in test_half]
                assert not {parse_dara_name(p.name).mixture for p in train_scans} & test_half
                folder = labeled_folder(train_scans, args.out / f"labeled-s{seed}-f{fold}")
                run = args.out / f"ft-s{seed}-f{fold}"
                if run.exists():
                    shutil.rmtree(run)
                start = time.perf_counter()
                config = XrdTrainConfig(
                    epochs=args.ft_epochs, patterns_per_epoch=args.ft_patterns, init=base, seed=seed,
                    threads=args.threads, check_folds=0,
                )  # fmt: skip
                train_xrd(folder, config, run)
                seconds = time.perf_counter() - start
                tuned = XrdModel(run)
                for label, model in (("simulated only", base_model), ("fine-tuned", tuned)):
                    for fit in (False, True):
                        row = {
                            "seed": seed,
                            "fold": fold,
                            "model": label,
                            "fit": fit,
                            **score(model, test, fit),
                        }
                        rows.append(row)
                        print(json.dumps(row), f"(fine-tuning {seconds:.0f} s)", flush=True)
        print("\n## Held-out halves (mean over folds and seeds; 20 scans each)\n")
        print("| model | decision | exact sets | recall | precision | fraction error (points) |")
        print("|---|---|---|---|---|---|")
        for label in ("simulated only", "fine-tuned"):
            for fit in (False, True):
                sel = [r for r in rows if r["model"] == label and r["fit"] == fit]
                mean = {
                    k: np.mean([r[k] for r in sel])
                    for k in ("exact", "recall", "precision", "fraction_error")
                }
                print(
                    f"| {label} | {'network + fit' if fit else 'network'} | {mean['exact']:.2f} | "
                    f"{mean['recall']:.2f} | {mean['precision']:.2f} | {mean['fraction_error']:.1f} |"
                )
        (args.out / "rows.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    if "minor" not in args.skip:
        print("\n## 1 and 2 wt% of an absent dara phase spiked into each 8-min scan (simulated-only model)")
        minor_phases(
            base_model, library, scans, seed=0, per_scan=args.spikes, levels=tuple(args.spike_levels)
        )
    if "simulated" not in args.skip:
        print("\n## Simulated 3-phase mixtures with one phase at 1 or 2 wt% (simulated-only model)")
        simulated_minor(base_model, library, args.simulated, seed=0)


if __name__ == "__main__":
    main()
