"""Cyclic garbage is collected in the GUI thread only (workers/gc_guard.py), never inside a worker."""

from __future__ import annotations

import gc
import threading
from typing import ClassVar

from pytestqt.qtbot import QtBot

from labeltune.workers.gc_guard import GuiThreadCollector


class _Cycle:
    """An object in a reference cycle that records the thread that finally frees it."""

    freed_in: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _Cycle.freed_in.append(threading.current_thread().name)


def test_garbage_made_anywhere_is_collected_in_the_gui_thread(qtbot: QtBot) -> None:
    collector = GuiThreadCollector(interval_ms=20)
    try:
        assert not gc.isenabled()
        _Cycle.freed_in.clear()
        for _ in range(5):
            _Cycle()  # unreachable at once, but only the cycle collector can free it

        kept: list[object] = []

        def busy_worker() -> None:  # allocates past the thresholds, as a job does: Python would collect here
            kept.append([[i] for i in range(20_000)])

        worker = threading.Thread(target=busy_worker, name="worker")
        worker.start()
        worker.join()
        assert _Cycle.freed_in == []  # nothing was collected in the worker
        qtbot.waitUntil(lambda: len(_Cycle.freed_in) == 5, timeout=5000)
        assert set(_Cycle.freed_in) == {threading.main_thread().name}
    finally:
        collector.stop()
        collector.deleteLater()


def test_stop_gives_collection_back_to_python(qtbot: QtBot) -> None:
    was = gc.isenabled()
    gc.enable()
    collector = GuiThreadCollector()
    assert not gc.isenabled()
    collector.stop()
    assert gc.isenabled()
    if not was:
        gc.disable()
