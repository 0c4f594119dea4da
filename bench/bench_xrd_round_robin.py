"""Three-phase weighed mixtures from 1 to 95 wt %, as a round robin on quantitative phase analysis holds.

The IUCr CPD round robin on quantitative phase analysis (Madsen et al., J. Appl. Cryst. 34 (2001) 409)
gave laboratories eight mixtures of corundum, fluorite and zincite: each phase near 1, 5 and 95 wt % in
turn, then mid-range mixtures. Labs report the 1 wt % phases beside a 95 wt % one. This bench draws
the same design (the compositions below are approximately the round robin's) from the shared COD CIFs
(corundum 1000017, fluorite 1000043) and the app's zincite, with five more shared structures in the
library as phases that are absent (quartz ×2, calcite ×2, rutile, anatase, periclase).

Each mixture is simulated over ``--range`` (default 15–145° 2θ, wider than the model's 10–100°, as lab
scans are), Cu Kα1+2, a sample displacement up to ``--displacement`` mm-equivalent degrees, per-peak
intensity errors ``--misfit`` (a structure's misfit: texture, wrong Biso), counting noise at ``--counts``
at the strongest peak. Scores: phases ≤ 2 wt % found, recall, precision, absent phases called, mean
|fraction error| (points, a miss counting its whole fraction).

Run: ``PYTHONPATH=desktop python bench/bench_xrd_round_robin.py --out /tmp/rr [--misfit 0.15] [--seed 1]``.
Without ``--base`` a model is trained first (6 epochs × 2 048 patterns, about a minute). Not a test.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench_xrd_clinker import Tally
from labeltune.core.allocator import keep_freed_memory
from labeltune.core.xrd.inference import XrdModel
from labeltune.core.xrd.library import Library, build_library, load_library
from labeltune.core.xrd.pattern import make_pattern
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd

COD = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd" / "cod_cifs"
RESOURCES = Path(__file__).resolve().parents[1] / "desktop" / "labeltune" / "resources" / "xrd"
ZINCITE = RESOURCES / "dara" / "ZnO.cif"
CORUNDUM, FLUORITE = "1000017", "1000043"
MIXTURES = [  # corundum, fluorite, zincite (wt %)
    (1.15, 94.81, 4.04),
    (94.31, 4.33, 1.36),
    (5.04, 1.36, 93.60),
    (13.53, 53.58, 32.89),
    (55.12, 29.62, 15.26),
    (27.06, 17.72, 55.22),
    (31.47, 34.25, 34.28),
    (35.12, 34.69, 30.19),
]


def cifs() -> list[Path]:
    """The library's structures: the shared COD CIFs (clinker folder aside) and the app's zincite."""
    return [*sorted(COD.glob("*.cif")), ZINCITE]


def library_at(folder: Path, two_theta_range: tuple[float, float]) -> Library:
    """The library in ``folder`` (built there over ``two_theta_range`` the first time)."""
    if (folder / "library.json").is_file():
        return load_library(folder)
    return build_library(cifs(), folder, naming="cif", two_theta_range=two_theta_range)


def main(argv: Sequence[str] | None = None) -> int:
    """Train (unless ``--base``), then print each mixture's calls and the scores."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-round-robin"))
    parser.add_argument("--base", type=Path, help="an XRD run over this library (else one is trained)")
    parser.add_argument("--misfit", type=float, default=0.05)
    parser.add_argument("--counts", type=float, default=20000.0)
    parser.add_argument("--range", type=float, nargs=2, default=(15.0, 145.0), metavar=("LO", "HI"))
    parser.add_argument("--displacement", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    keep_freed_memory()
    if not COD.is_dir():
        print(f"needs the shared COD CIFs in {COD}")
        return 0
    library = library_at(args.out / "library", (10.0, 100.0))
    lo, hi = args.range
    scan = library_at(args.out / f"library-{lo:g}-{hi:g}", (lo, hi))
    run = args.base
    if run is None:
        run = args.out / "run"
        if not (run / "config.json").is_file():
            start = time.perf_counter()
            train_xrd(args.out / "library", XrdTrainConfig(epochs=6, patterns_per_epoch=2048, threads=2), run)
            print(f"trained {run.name}: {time.perf_counter() - start:.0f} s")
    model = XrdModel(run)
    names = {Path(p.source).stem: p.name for p in library.phases}
    phases = (names[CORUNDUM], names[FLUORITE], names[ZINCITE.stem])
    settings = SimulationConfig(
        texture_sigma=args.misfit,
        impurity_probability=0.0,
        crystallite_nm=(80.0, 400.0),
        max_counts=(args.counts, args.counts),
        background=(0.02, 0.1),
        ka2_probability=1.0,
        displacement_deg=args.displacement,
    )
    tally = Tally(minor_below=0.02, digits=2)
    print("| mixture | Rwp % | true → found wt % (± esd) |\n|---|---|---|")
    for i, weights in enumerate(MIXTURES):
        mix = {name: w / 100 for name, w in zip(phases, weights, strict=True)}
        batch = simulate(scan, 1, settings, args.seed * 1000 + i, composition=mix)
        counts = batch.x[0] * args.counts
        source = Path(f"rr{i}.xy")
        pattern = make_pattern(batch.two_theta, counts, source=source, format="xy", wavelength=1.5406)
        prediction = model.predict(pattern)
        cells = tally.add(mix, prediction, esd=True)
        print(f"| {i + 1} | {100 * (prediction.residual or 0.0):.1f} | {'; '.join(cells)} |", flush=True)
    print(f"\nphases <= 2 wt % found {tally.minors_found}/{tally.minors}; ", end="")
    print(f"recall {tally.recall:.3f}, precision {tally.precision:.3f}")
    print(f"absent phases called {tally.fp}; mean |fraction error| {np.mean(tally.errors):.2f} points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
