"""Run NumPy's linear algebra on one thread for a while (the fits of small matrices).

NumPy's OpenBLAS starts one thread per core and spins them while it waits: on a 2-core laptop that is
also decoding images or running PyTorch, an eigendecomposition of a 320 x 320 matrix took 0.3-1 s instead
of 0.07 s on one thread, and the unfamiliar-input fit makes 18 of them (docs/adr/0059). threadpoolctl does
this in general; it is not a dependency, so this sets OpenBLAS's thread count through its C function where
NumPy's wheel has it, and does nothing elsewhere (another BLAS, a NumPy built without OpenBLAS).
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_SUFFIXES = ("64_", "")
_PREFIXES = ("scipy_openblas", "openblas")


@functools.cache
def _openblas() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """``(get, set)`` of the thread count of the OpenBLAS NumPy loaded, or ``None``."""
    import numpy as np

    base = Path(np.__file__).parent
    candidates = [
        p
        for folder in (base.parent / "numpy.libs", base / ".dylibs", base.parent / "numpy" / ".libs")
        if folder.is_dir()
        for p in sorted(folder.iterdir())
        if "openblas" in p.name.lower()
    ]
    for path in candidates:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    return get, put
    return None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """NumPy's OpenBLAS on one thread inside the block (its previous count restored after)."""
    try:
        found = _openblas()
    except Exception:  # an unusual install: run as it is
        log.debug("OpenBLAS thread control not found", exc_info=True)
        found = None
    if found is None:
        yield
        return
    get, put = found
    before = int(get())
    put(1)
    try:
        yield
    finally:
        put(max(before, 1))
