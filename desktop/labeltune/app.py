"""Starting the desktop app (imports Qt only here, torch not at all until a job needs it)."""

from __future__ import annotations

import sys
from pathlib import Path


def run_gui(project: Path | None = None, argv: list[str] | None = None) -> int:
    """Create the application and main window, open ``project`` if given, and run the event loop."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("LabelTune")
    app.setOrganizationName("LabelTune")
    from labeltune.ui.main_window import MainWindow
    from labeltune.workers.gc_guard import collect_in_gui_thread

    collect_in_gui_thread(app)  # never in a worker thread: see workers/gc_guard.py
    window = MainWindow()
    window.show()
    if project is not None:
        window.open_project(str(project))
    return int(app.exec())
