"""Startup time: from starting ``labeltune`` to the start page being painted (target < 2 s), torch-free.

Run: ``.venv/bin/python bench/bench_startup.py [--quick] [--repeats N]``.

Each repeat starts a fresh interpreter that runs the real entry point, ``labeltune.cli.main([])`` (what
the installed ``labeltune`` command does with no arguments): argument parsing, ``run_gui``, the
``QApplication``, the ``MainWindow`` (or only the ``StartPage`` if the main window cannot be imported yet).
``QApplication.exec`` is wrapped so the child can note when the first paint event arrives and when the
event loop first runs (a ``QTimer.singleShot(0)`` after ``show()``), then quits. Times are measured from
the moment the parent starts the child, passed in ``LABELTUNE_BENCH_T0`` (wall clock, so the
interpreter's own start-up counts). Also reported: a bare ``python -c pass`` for comparison, and whether
torch was imported during startup (it must not be: the start page shows no model). User folders are
temporary; Qt runs offscreen unless a display platform is already chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0

CHILD = r"""
import json, os, sys, time

T0 = float(os.environ["LABELTUNE_BENCH_T0"])
marks = {"interpreter": time.time() - T0}
kind = "MainWindow"


def mark(name):
    marks.setdefault(name, time.time() - T0)


def report():
    marks["torch_imported"] = "torch" in sys.modules
    marks["kind"] = kind
    print("BENCH " + json.dumps(marks), flush=True)


from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

mark("qt_imported")


class FirstPaint(QObject):
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint and "first_paint" not in marks:
            mark("first_paint")
            if "event_loop" in marks:
                QTimer.singleShot(0, QApplication.quit)
        return False


original_exec = QApplication.exec
first_paint = FirstPaint()


def timed_exec(*args):
    app = QApplication.instance()
    mark("window_shown")
    app.installEventFilter(first_paint)

    def loop_running():
        mark("event_loop")
        if "first_paint" in marks:
            QApplication.quit()

    QTimer.singleShot(0, loop_running)
    QTimer.singleShot(20000, QApplication.quit)  # never hang the benchmark
    return original_exec()


QApplication.exec = timed_exec

try:
    import labeltune.ui.main_window  # noqa: F401  (the real entry point imports it the same way)
except ImportError:
    kind = "StartPage"

if kind == "MainWindow":
    from labeltune.cli import main

    mark("labeltune_imported")
    main([])
else:
    from labeltune.core.settings import Settings
    from labeltune.ui.start_page import StartPage

    mark("labeltune_imported")
    app = QApplication(sys.argv[:1])
    page = StartPage(Settings.load())
    page.resize(1280, 820)
    page.show()
    QApplication.exec()
report()
"""

STAGES = ("interpreter", "qt_imported", "labeltune_imported", "window_shown", "first_paint", "event_loop")


def _child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["LABELTUNE_CONFIG_DIR"] = str(tmp / "config")
    env["LABELTUNE_DATA_DIR"] = str(tmp / "data")
    env["LABELTUNE_CACHE_DIR"] = str(tmp / "cache")
    (tmp / "config").mkdir(parents=True, exist_ok=True)
    recent = [str(tmp / f"missing-project-{i}") for i in range(3)]  # a realistic, partly stale list
    (tmp / "config" / "settings.json").write_text(json.dumps({"recent_projects": recent}))
    return env


def run_once(env: dict[str, str]) -> dict[str, object]:
    """One fresh interpreter; returns the child's marks (seconds since it was started)."""
    env = {**env, "LABELTUNE_BENCH_T0": repr(time.time())}
    result = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"startup child failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(lines[-1][len("BENCH ") :])


def bare_python() -> float:
    """Seconds for ``python -c pass`` (the floor no app can beat)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)

    with tempfile.TemporaryDirectory(prefix="labeltune-bench-startup-") as tmp:
        env = _child_env(Path(tmp))
        run_once(env)  # warm the OS file cache and .pyc files once; not counted
        runs = [run_once(env) for _ in range(repeats)]
    floor = statistics.median(bare_python() for _ in range(3))

    print(f"startup to the painted start page ({runs[0]['kind']}), {repeats} fresh processes")
    print(f"platform: {env['QT_QPA_PLATFORM']}, python {sys.version.split()[0]}")
    print(f"{'stage (s since process start)':<34}{'median':>8}{'max':>8}")
    for stage in STAGES:
        values = [float(r[stage]) for r in runs if stage in r]  # type: ignore[arg-type]
        if values:
            print(f"  {stage:<32}{statistics.median(values):>8.3f}{max(values):>8.3f}")
    shown = [max(float(r["first_paint"]), float(r["event_loop"])) for r in runs]  # type: ignore[arg-type]
    median, worst = statistics.median(shown), max(shown)
    print(f"start page shown: median {median:.3f} s, max {worst:.3f} s (target < {TARGET_S:.1f} s)")
    print(f"bare `python -c pass`: {floor:.3f} s")
    verdict = "within" if worst < TARGET_S else "OVER"
    print(f"target: {verdict} {TARGET_S:.1f} s")
    torch_loaded = any(bool(r["torch_imported"]) for r in runs)
    print(f"torch imported during startup: {'YES (it must not be)' if torch_loaded else 'no (as required)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
