"""Python's cyclic garbage collector runs in the GUI thread only (a timer), never inside a worker thread.

Automatic collection runs in whichever thread happens to allocate when a generation's threshold is
crossed. If that is a worker thread (a training job, a ranking job) and the garbage holds a Qt object — a
widget of a closed dialog in a reference cycle — Qt deletes that object off its thread, which crashes the
process (seen as a rare segfault in a worker test). The usual remedy for Qt applications (pyqtgraph ships
one too) is taken here: automatic collection is switched off and a timer in the GUI thread collects each
generation whose count passed its threshold, as Python would have.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """Disables automatic collection and collects on a GUI-thread timer; :meth:`stop` restores it."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        """Start collecting in the thread ``parent`` (or this object) lives in: the GUI thread."""
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect)
        self.timer.start()

    def collect(self) -> int:
        """Collect the oldest generation whose count passed its threshold (what Python would do); found."""
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if thresholds[generation] and counts[generation] > thresholds[generation]:
                return gc.collect(generation)
        return 0

    def stop(self) -> None:
        """Stop the timer and give collection back to Python (as it was before)."""
        self.timer.stop()
        if self._was_enabled:
            gc.enable()


def collect_in_gui_thread(parent: QObject) -> GuiThreadCollector:
    """Install the collector, owned by ``parent`` (the application or main window)."""
    return GuiThreadCollector(parent)


__all__ = ["GuiThreadCollector", "collect_in_gui_thread"]
