"""A phase's calculated profile parts, remembered by content: the fits of one prediction repeat many.

Deciding a many-phase pattern fits dozens of phase sets (nested fits, look-alikes, alternatives), and
each fit scans every phase's lattice over the same grid with the same starting widths: a clinker's
prediction asked for the same phase at the same lattice, zero shift and widths 37 % of the time
(ADR 0077). ``phase_parts`` depends only on its arguments, so a result is kept under a digest of them
(the 2θ grid, d-spacings and intensities by their bytes, the scalars by value) and handed out again,
read-only. The cache is per thread (a batch's shards and the app's worker share nothing) and holds at
most ``MAX_BYTES`` of parts, least recently used first out.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ParamSpec

import numpy as np

from labeltune.core.xrd.peak_profile import phase_parts

MAX_BYTES = 96 * 2**20
"""Parts kept per thread: a clinker's lattice scans on its full and binned grids fit in well under this."""

_local = threading.local()
P = ParamSpec("P")


class _Cache:
    def __init__(self) -> None:
        self.entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0


def _cache() -> _Cache:
    cache: _Cache | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = _Cache()
    return cache


def _feed(digest: Any, value: object) -> None:
    """Add ``value`` to ``digest``: arrays by shape and bytes, sequences item by item, numbers by value."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value, dtype=np.float64)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    elif isinstance(value, tuple | list):
        digest.update(b"(")
        for item in value:
            _feed(digest, item)
        digest.update(b")")
    else:
        digest.update(repr(float(value) if isinstance(value, np.generic) else value).encode() + b";")


def remembered(compute: Callable[P, np.ndarray]) -> Callable[P, np.ndarray]:
    """``compute``, a pure function of arrays and numbers, answered from this thread's cache.

    A call with arguments equal to an earlier one's gets that call's array, read-only (it may be handed
    out again).
    """

    def cached(*args: P.args, **kwargs: P.kwargs) -> np.ndarray:
        digest = hashlib.blake2b(digest_size=20)
        _feed(digest, args)
        _feed(digest, sorted(kwargs.items()))
        key = digest.digest()
        cache = _cache()
        parts = cache.entries.get(key)
        if parts is not None:
            cache.entries.move_to_end(key)
            cache.hits += 1
            return parts
        cache.misses += 1
        parts = compute(*args, **kwargs)
        parts.setflags(write=False)
        cache.entries[key] = parts
        cache.bytes += parts.nbytes
        while cache.bytes > MAX_BYTES and cache.entries:
            _, old = cache.entries.popitem(last=False)
            cache.bytes -= old.nbytes
        return parts

    return cached


cached_phase_parts = remembered(phase_parts)
"""``peak_profile.phase_parts`` with the same arguments, from the cache when it was asked before."""


def clear() -> None:
    """Forget this thread's parts (tests; a caller that wants its memory back)."""
    _local.cache = _Cache()


def stats() -> tuple[int, int, int]:
    """(hits, misses, bytes held) of the calling thread's cache."""
    cache = _cache()
    return cache.hits, cache.misses, cache.bytes
