"""Run every ``bench/bench_*.py`` script in turn, each in its own process, and print their output.

Run: ``.venv/bin/python bench/run_all.py [--quick] [NAME ...]`` (``make bench`` runs them all). ``--quick`` is
passed on to the scripts that accept it; ``NAME`` picks scripts whose file name contains it (``training``).
Each script gets a fresh interpreter, so one benchmark's imports, caches and thread settings cannot skew the
next. The exit status is 1 if any script failed; benchmarks assert nothing, so a failure is a crash.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


def scripts(names: Sequence[str] = ()) -> list[Path]:
    """The benchmark scripts, sorted; only those whose name contains one of ``names`` when given."""
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    return [p for p in found if not names or any(n in p.name for n in names)]


def accepts_quick(script: Path) -> bool:
    """Whether ``script`` has a ``--quick`` option (read from its source, without importing it)."""
    return '"--quick"' in script.read_text(encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to the scripts that accept it")
    parser.add_argument("names", nargs="*", metavar="NAME", help="run only scripts whose name contains NAME")
    args = parser.parse_args(argv)

    selected = scripts(args.names)
    if not selected:
        print(f"no bench_*.py script in {BENCH_DIR} matches {' '.join(args.names)}", file=sys.stderr)
        return 2
    results: list[tuple[str, int, float]] = []
    for script in selected:
        cmd = [sys.executable, str(script)]
        if args.quick and accepts_quick(script):
            cmd.append("--quick")
        title = " ".join([script.relative_to(REPO_ROOT).as_posix(), *cmd[2:]])
        print(f"\n{'=' * 30} {title} {'=' * 30}", flush=True)
        start = time.perf_counter()
        # Output goes straight to ours, line by line as the benchmark prints it.
        code = subprocess.run(cmd, cwd=REPO_ROOT, check=False).returncode
        seconds = time.perf_counter() - start
        results.append((script.name, code, seconds))
        if code:
            print(f"{script.name} exited with status {code}", flush=True)

    print(f"\n{'=' * 30} summary {'=' * 30}")
    for name, code, seconds in results:
        print(f"{name:<32} {'ok' if code == 0 else f'FAILED ({code})':<12} {seconds:7.1f} s")
    return 1 if any(code for _, code, _ in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
