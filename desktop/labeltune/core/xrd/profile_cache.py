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

import numpy as np

from labeltune.core.xrd.peak_profile import phase_parts

MAX_BYTES = 96 * 2**20
"""Parts kept per thread: a clinker's lattice scans on its full and binned grids fit in well under this."""

_local = threading.local()


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


def _key(x: np.ndarray, d: np.ndarray, rel: np.ndarray, scalars: tuple[object, ...]) -> bytes:
    digest = hashlib.blake2b(digest_size=20)
    for array in (x, d, rel):
        array = np.ascontiguousarray(array, dtype=np.float64)
        digest.update(len(array).to_bytes(8, "little"))
        digest.update(array.tobytes())
    digest.update(repr(scalars).encode())
    return digest.digest()


def cached_phase_parts(
    x: np.ndarray,
    d: np.ndarray,
    rel: np.ndarray,
    wavelength: float,
    *,
    zero_shift: float,
    fwhm_of_theta: tuple[float, float, float],
    wavelength2: float | None,
    ka2_ratio: float,
    asymmetry: float = 0.0,
) -> np.ndarray:
    """``peak_profile.phase_parts`` with the same arguments, from the cache when it was asked before.

    The array returned is read-only (it may be handed out again); copy it to change it.
    """
    widths = tuple(float(w) for w in fwhm_of_theta)
    scalars = (float(wavelength), float(zero_shift), widths, wavelength2, float(ka2_ratio), float(asymmetry))
    key = _key(x, d, rel, scalars)
    cache = _cache()
    parts = cache.entries.get(key)
    if parts is not None:
        cache.entries.move_to_end(key)
        cache.hits += 1
        return parts
    cache.misses += 1
    parts = phase_parts(
        x,
        d,
        rel,
        wavelength,
        zero_shift=zero_shift,
        fwhm_of_theta=fwhm_of_theta,
        wavelength2=wavelength2,
        ka2_ratio=ka2_ratio,
        asymmetry=asymmetry,
    )
    parts.setflags(write=False)
    cache.entries[key] = parts
    cache.bytes += parts.nbytes
    while cache.bytes > MAX_BYTES and cache.entries:
        _, old = cache.entries.popitem(last=False)
        cache.bytes -= old.nbytes
    return parts


def clear() -> None:
    """Forget this thread's parts (tests; a caller that wants its memory back)."""
    _local.cache = _Cache()


def stats() -> tuple[int, int, int]:
    """(hits, misses, bytes held) of the calling thread's cache."""
    cache = _cache()
    return cache.hits, cache.misses, cache.bytes
