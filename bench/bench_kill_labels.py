"""kill -9 while labeling, many rounds: kills survived, labels checked, and what the open-time check costs.

Run: ``.venv/bin/python bench/bench_kill_labels.py [--quick] [--rounds 20]``. Not a test: prints figures
(it stops with an AssertionError if a kill ever loses an acknowledged label or damages the store).

The drivers and the checks are tests/reliability's (kill_drivers.py, test_kill_labels.py), run here for
more rounds than the test suite affords: the CLI's ``label`` one item per call, the real app offscreen
with number keys, and XRD phase ticks.  Then the seconds ``Project.open`` takes on a 100 000-sample
store with and without a fresh backup (docs/adr/0040).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests" / "reliability"), str(HERE.parent / "tests")]

from kill_helpers import run_and_kill  # noqa: E402  (tests/reliability)
from test_kill_labels import _check_image_store, _image_project  # noqa: E402


def image_rounds(mode: str, rounds: int, root: Path) -> tuple[int, int, int]:
    """Kill ``mode``'s driver ``rounds`` times on one project; (kills, labels checked, kills mid-change)."""
    folder = _image_project(root / mode)
    rng = random.Random(len(mode))
    checked = in_flight = 0
    for round_ in range(rounds):
        ack = run_and_kill([mode, str(folder), str(round_)], rng, rng.randint(1, 30), 0.5)
        checked += _check_image_store(folder, ack, by_id=mode == "app")
        in_flight += ack.pending is not None
    return rounds, checked, in_flight


def xrd_rounds(rounds: int, root: Path) -> tuple[int, int, int]:
    """XRD phase ticks killed ``rounds`` times; (kills, labels checked, kills mid-change)."""
    from labeltune.core.xrd.demo import write_xrd_demo
    from labeltune.core.xrd.xrd_project import XrdProject

    folder = write_xrd_demo(root / "xrd")
    rng = random.Random(7)
    checked = in_flight = 0
    for round_ in range(rounds):
        ack = run_and_kill(["xrd", str(folder), str(round_)], rng, rng.randint(1, 30), 0.3)
        project = XrdProject.open(folder)
        for key, labels in ack.done.items():
            assert ";".join(project.labels(key).phases) in ack.allowed(key), (key, labels)
            checked += len(labels)
        in_flight += ack.pending is not None
    return rounds, checked, in_flight


def open_cost(root: Path, samples: int) -> tuple[float, float, float]:
    """Seconds of ``Project.open`` on ``samples`` samples: after a change (check + backup), unchanged, MB."""
    from labeltune.core.project import DB_FILE, Project
    from labeltune.core.sample import Sample

    folder = root / "big"
    with Project.create(folder, classes=["a", "b", "c"]) as project:
        project.add_samples(
            [
                Sample(Path(f"/data/photos/img{i:06d}.jpg"), "abc"[i % 3] if i % 2 else None)
                for i in range(samples)
            ]
        )
    start = time.perf_counter()
    Project.open(folder).close()
    changed = time.perf_counter() - start
    start = time.perf_counter()
    Project.open(folder).close()
    unchanged = time.perf_counter() - start
    return changed, unchanged, (folder / DB_FILE).stat().st_size / 1e6


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 rounds each and 10 000 samples")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    root = Path(tempfile.mkdtemp(prefix="labeltune-bench-kill-"))
    for name in ("CONFIG", "DATA", "CACHE"):  # the app driver must not touch the user's recent projects
        os.environ[f"LABELTUNE_{name}_DIR"] = str(root / name.lower())
    try:
        total_kills = total_checked = 0
        for name, run in (
            ("CLI label", lambda: image_rounds("cli", rounds, root)),
            ("app keys", lambda: image_rounds("app", rounds, root)),
            ("XRD ticks", lambda: xrd_rounds(rounds, root)),
        ):
            kills, checked, in_flight = run()
            total_kills += kills
            total_checked += checked
            print(
                f"{name:10s} kills survived {kills:3d}  labels checked {checked:5d}  mid-change {in_flight}"
            )
        print(f"{'all':10s} kills survived {total_kills:3d}  labels checked {total_checked:5d}")
        samples = 10_000 if args.quick else 100_000
        changed, unchanged, size = open_cost(root, samples)
        print(
            f"Project.open, {samples} samples ({size:.1f} MB): {changed:.3f} s with a new backup, "
            f"{unchanged:.3f} s unchanged (quick_check only)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
