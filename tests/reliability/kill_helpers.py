"""Start a driver of kill_drivers.py, kill it with SIGKILL at a random moment, read what it acknowledged."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import labeltune

DRIVER = Path(__file__).with_name("kill_drivers.py")
START_TIMEOUT = 120.0  # seconds for a driver to acknowledge its first changes (a bound, not a timing)


@dataclass
class Acknowledged:
    """What a killed driver said: each key's ``done`` labels in order, and the change in flight."""

    done: dict[str, list[str]] = field(default_factory=dict)
    pending: tuple[str, str] | None = None
    count: int = 0

    def allowed(self, key: str) -> set[str]:
        """The labels ``key`` may have in the store: its last acknowledged one, or the one in flight."""
        out = {self.done[key][-1]} if key in self.done else set()
        if self.pending is not None and self.pending[0] == key:
            out.add(self.pending[1])
        return out


def child_env() -> dict[str, str]:
    """This environment (isolated user folders included), with this checkout's labeltune first."""
    env = dict(os.environ)
    source = str(Path(labeltune.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def parse(lines: list[str]) -> Acknowledged:
    """Read the ``press``/``done`` protocol (a torn last line is ignored: it was never acknowledged)."""
    ack = Acknowledged()
    for line in lines:
        kind, _, rest = line.partition(" ")
        key, _, label = rest.partition("\t")
        if kind == "press":
            ack.pending = (key, label)
        elif kind == "done":
            assert ack.pending is not None and ack.pending[0] == key, f"done without its press: {line!r}"
            ack.done.setdefault(key, []).append(label)
            ack.pending = None
            ack.count += 1
    return ack


def run_and_kill(args: list[str], rng: random.Random, after: int, max_delay: float) -> Acknowledged:
    """Run ``kill_drivers.py ARGS``; once it acknowledged ``after`` changes, wait 0..max_delay s, SIGKILL."""
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-u", str(DRIVER), *args],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=child_env(),
        )
        assert proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while sum(line.startswith("done ") for line in list(lines)) < after:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                errors.seek(0)
                raise AssertionError(f"driver {args} stopped or stalled before the kill:\n{errors.read()}")
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, max_delay))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        reader.join(timeout=30)
    return parse(lines)


def _read_lines(stream: IO[str], lines: list[str]) -> None:
    """Append each complete line of ``stream`` to ``lines`` as it comes, until the stream closes."""
    for line in stream:
        if not line.endswith("\n"):
            break
        lines.append(line.rstrip("\n"))
