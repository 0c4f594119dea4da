"""Qt workers: run ``core`` jobs in threads and turn their callbacks into signals."""

from labeltune.workers.qt_fixes import install_refcount_fix

install_refcount_fix()  # PySide6 6.12.0 on Python < 3.12 drops references to None/True/False
