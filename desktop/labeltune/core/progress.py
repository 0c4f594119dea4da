"""Progress reporting shared by the CLI (a text bar) and the GUI (signals): plain data and callbacks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units of ``stage`` (total 0 means unknown)."""

    stage: str
    done: int
    total: int
    message: str = ""


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """Ignore a progress report."""


class StoppedError(Exception):
    """Raised inside long work when the caller's stop event was set."""


def check_stop(stop_event: threading.Event | None) -> None:
    """Raise :class:`StoppedError` if ``stop_event`` is set."""
    if stop_event is not None and stop_event.is_set():
        raise StoppedError("stopped by user")
