"""Resident memory (RSS) of this process, and its growth over a loop as a least-squares slope.

Long runs must keep memory flat (issue 13). A test runs a short loop, samples RSS after each step (after a
garbage collection, so cycles waiting to be collected are not counted), drops a warm-up, and checks the
slope against a bound a leak would pass. The long runs themselves and their figures are
``bench/bench_long_runs.py``'s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _load_libc()


def trim_heap() -> None:
    """Give free heap pages back to the system (glibc ``malloc_trim``), so RSS counts memory in use.

    Without it a leak is first served from freed-but-resident heap memory and RSS stays flat for
    megabytes: the slope would miss it.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def rss_bytes() -> int:
    """This process's resident set size in bytes (``/proc/self/statm``; psutil where there is no /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        import psutil  # type: ignore[import-untyped]

        return int(psutil.Process().memory_info().rss)


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their index (units per step)."""
    n = len(values)
    if n < 2:
        raise ValueError("a slope needs at least two samples")
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


@dataclass
class RssSeries:
    """RSS samples of a loop; the first ``warmup`` samples are not part of the slope."""

    warmup: int
    samples: list[int] = field(default_factory=list)

    def record(self) -> None:
        """Collect garbage, give free heap pages back, then sample RSS.

        At the end of the warm-up, everything alive is frozen (``gc.freeze``): later collections only
        look at objects made since, so sampling each step stays cheap with torch and Qt loaded.
        """
        gc.collect()
        trim_heap()
        self.samples.append(rss_bytes())
        if len(self.samples) == self.warmup:
            gc.freeze()

    def close(self) -> None:
        """Unfreeze what the warm-up froze (call when the loop is done, also on failure)."""
        gc.unfreeze()

    @property
    def measured(self) -> list[int]:
        """The samples after the warm-up."""
        return self.samples[self.warmup :]

    def slope(self) -> float:
        """Bytes per step after the warm-up."""
        return slope(self.measured)

    def describe(self) -> str:
        """One line for an assertion message: the start, end and slope after the warm-up, in KiB."""
        kept = self.measured
        return (
            f"RSS {kept[0] / 1024:.0f} KiB -> {kept[-1] / 1024:.0f} KiB over {len(kept)} steps, "
            f"slope {self.slope() / 1024:.1f} KiB/step"
        )
