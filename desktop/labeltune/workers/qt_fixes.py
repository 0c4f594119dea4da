"""Work-arounds for bugs in the Qt binding, installed when LabelTune's Qt side is imported.

PySide6 6.12.0 (abi3 wheel, "Python >= 3.10") returns ``None``, ``True`` and ``False`` from its methods
without taking a reference: every ``painter.save()``, ``signal.emit()`` or ``index.data()`` returning
``None`` lowers that object's reference count by one.  On Python 3.12+ these objects are immortal
(PEP 683) and nothing happens; on 3.10/3.11 Python aborts after some thousand calls ("Fatal Python error:
none_dealloc" / "bool_dealloc") — within seconds of scrolling the gallery.

:func:`install_refcount_fix` checks for the bug with a probe and, only where it is present on a Python
without immortal objects, does what Python 3.12 does: gives the three singletons a reference count so
large that dropped references can never bring it to zero.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Added to the reference counts (2**40 dropped references: centuries of calls).
IMMORTAL_REFS = 1 << 40
_SINGLETONS = (None, True, False)
_state = {"checked": False, "fixed": False}


def _refs() -> int:
    return sum(sys.getrefcount(obj) for obj in _SINGLETONS)


def _drops_references(call: Callable[[], object], tries: int = 4) -> bool:
    """Whether calling ``call()`` (and discarding its result) lowers the singletons' reference counts."""
    before = _refs()
    for _ in range(tries):
        call()
    return _refs() <= before - tries


def binding_drops_references() -> bool:
    """Whether PySide6 drops references: ``None`` from a void method, ``True`` from ``emit()``."""
    from PySide6.QtCore import QObject, QPoint, QRect, Signal

    class _Probe(QObject):
        probed = Signal()

    probe = _Probe()
    rect, point = QRect(0, 0, 2, 2), QPoint(1, 1)
    try:
        return _drops_references(lambda: rect.moveCenter(point)) or _drops_references(
            lambda: probe.probed.emit()
        )
    finally:
        probe.deleteLater()


def install_refcount_fix() -> bool:
    """Make ``None``/``True``/``False`` effectively immortal if the binding drops references to them.

    Returns whether the fix is in place.  Idempotent; does nothing on Python 3.12+ (already immortal),
    on debug builds of Python (different object layout), or when the binding is sound.
    """
    if _state["checked"]:
        return _state["fixed"]
    _state["checked"] = True
    if sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount"):
        return False
    if not binding_drops_references():
        return False
    # A garbage collection between the two counts frees objects that refer to None and lowers its count
    # by a few (or a few thousand): keep the collector out, and only call a far larger miss a wrong layout.
    collecting = gc.isenabled()
    gc.disable()
    try:
        before = sys.getrefcount(None)
        for obj in _SINGLETONS:  # ob_refcnt is the first field of every object in a release build
            ctypes.c_ssize_t.from_address(id(obj)).value += IMMORTAL_REFS
        added = sys.getrefcount(None) - before
    finally:
        if collecting:
            gc.enable()
    if abs(added - IMMORTAL_REFS) > IMMORTAL_REFS // 1024:  # not the layout we expected: undo
        for obj in _SINGLETONS:
            ctypes.c_ssize_t.from_address(id(obj)).value -= IMMORTAL_REFS
        log.error("cannot work around PySide6's reference-count bug: the app may crash")
        return False
    log.info("PySide6 drops references to None/True/False: made them immortal, as Python 3.12 does")
    _state["fixed"] = True
    return True
