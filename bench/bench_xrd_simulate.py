"""XRD training-pattern simulator throughput: patterns per second of ``simulate()``.

Run: ``.venv/bin/python bench/bench_xrd_simulate.py [--library DIR] [--n 4096] [--repeats 3]``.
Not a test: prints figures only. Without ``--library`` the li_mn_ti_o_f reference CIFs (56 phases) are
built into a temporary library first (not timed). Only ``simulate()`` is timed, after a warm-up batch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from labeltune.core.xrd.library import Library, build_library, load_library
from labeltune.core.xrd.simulate import SimulationConfig, simulate

REFERENCES = Path("/work/shared/data/xrd/li_mn_ti_o_f/references")


def _library(path: str | None, tmp: Path) -> Library:
    if path is not None:
        return load_library(path)
    cifs = sorted(REFERENCES.glob("*.cif"))
    if not cifs:
        raise SystemExit(f"no CIFs in {REFERENCES}; pass --library DIR")
    return build_library(cifs, tmp / "library")


def main(argv: Sequence[str] | None = None) -> int:
    """Time ``simulate`` on a library and print patterns/s per configuration."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", default=None, metavar="DIR")
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        library = _library(args.library, Path(tmp))
    n_peaks = sum(len(p) for p in library.peaks.values())
    print(f"library: {len(library.phases)} phases, {n_peaks} peaks; {args.n} patterns per batch")
    configs = {
        "default (<=3 phases, Kα2 70%, noise)": SimulationConfig(),
        "single phase": SimulationConfig(max_phases=1),
        "monochromatic, no noise": SimulationConfig(monochromatic=True, noise=False),
    }
    for label, config in configs.items():
        simulate(library, 256, config, seed=0)  # warm-up
        rates = []
        for r in range(args.repeats):
            start = time.perf_counter()
            batch = simulate(library, args.n, config, seed=r + 1)
            rates.append(len(batch) / (time.perf_counter() - start))
        print(
            f"{label:<40} {statistics.median(rates):8.0f} patterns/s "
            f"(min {min(rates):.0f}, max {max(rates):.0f}; {config.points} points, float32)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
