"""PySide6 6.12.0 drops references to None/True/False on Python < 3.12: the app must survive that."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from PySide6.QtCore import QObject, QPoint, QRect, Signal

from labeltune.workers.qt_fixes import install_refcount_fix


class _Sender(QObject):
    sent = Signal(int)


def test_many_calls_returning_none_and_bools_do_not_abort_python() -> None:
    install_refcount_fix()
    sender = _Sender()
    received: list[int] = []
    sender.sent.connect(received.append)
    rect, point = QRect(0, 0, 4, 4), QPoint(2, 2)
    before = sys.getrefcount(None), sys.getrefcount(True)
    for i in range(200_000):  # with the bug and no fix, Python aborts long before the end
        sender.sent.emit(i)
        rect.moveCenter(point)
    assert len(received) == 200_000 and received[-1] == 199_999
    assert sys.getrefcount(None) > 0 and sys.getrefcount(True) > 0
    assert before[0] - sys.getrefcount(None) <= 200_000  # whatever was dropped, the count stays positive


def test_fix_is_installed_by_importing_the_qt_side() -> None:
    code = textwrap.dedent(
        """
        import labeltune.ui
        from PySide6.QtCore import QPoint, QRect
        rect, point = QRect(0, 0, 4, 4), QPoint(2, 2)
        for _ in range(300_000):
            rect.moveCenter(point)
        print("alive")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "alive"
