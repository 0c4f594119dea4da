"""The XRD fit with glibc's default allocator thresholds against ``core.allocator.keep_freed_memory``.

Each fit runs in its own process (the thresholds are per process), alternating, ``--repeats`` times: a
seven-phase simulated clinker (``bench_xrd_clinker``'s clinker 9) fitted with its true phases. Prints
the seconds of each and the ratio default / tuned. Linux only (elsewhere the function does nothing).

Run: ``PYTHONPATH=desktop python bench/bench_allocator.py [--repeats 3]``. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
from labeltune.core.allocator import keep_freed_memory
if {tuned}:
    assert keep_freed_memory()
import bench_xrd_clinker as bc
from labeltune.core.xrd.library import build_library, load_library
from labeltune.core.xrd.quantify import fit_phases
from pathlib import Path
out = Path({lib!r})
library = load_library(out) if (out / "library.json").is_file() else build_library(
    sorted(bc.CLINKER.glob("*.cif")), out, naming="cif")
mix = bc.clinkers(library, 12, 0)[9]
pattern = bc.simulated(library, mix, 9, 20000.0, 0.05)
start = time.perf_counter()
fit_phases(pattern, library, list(mix))
print(time.perf_counter() - start)
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Alternate default and tuned fits in fresh processes; print the times and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    import bench_xrd_clinker

    if not bench_xrd_clinker.CLINKER.is_dir() or not sys.platform.startswith("linux"):
        print("needs Linux and the shared clinker CIFs")
        return 0
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for tuned in (False, True):
                code = CHILD.format(bench=str(here), tuned=tuned, lib=str(Path(tmp) / "library"))
                done = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                )
                times[tuned].append(float(done.stdout.strip().splitlines()[-1]))
    default, tuned_s = statistics.median(times[False]), statistics.median(times[True])
    print(f"default allocator: {', '.join(f'{t:.1f}' for t in times[False])} s")
    print(f"keep_freed_memory: {', '.join(f'{t:.1f}' for t in times[True])} s")
    print(f"median ratio default / tuned: {default / tuned_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
