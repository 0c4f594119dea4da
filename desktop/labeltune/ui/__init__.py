"""The desktop app: widgets, panels, dialogs and item models; no ML logic (that lives in ``core``)."""

from labeltune.workers.qt_fixes import install_refcount_fix

install_refcount_fix()  # PySide6 6.12.0 on Python < 3.12 drops references to None/True/False
