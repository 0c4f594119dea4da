"""Feature cache: backbone outputs stored on disk (float16), computed once, shared by every run.

A cache file is one SQLite database per *feature key* (backbone, weights id, preprocessing, input size,
stage), holding one row per (file content hash, view). Because rows are keyed by content hash, renamed or
moved files hit the cache, and a second run with another head or learning rate runs no backbone at all.
See docs/adr/0003-feature-cache.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labeltune.core.errors import ImageDecodeError
from labeltune.core.file_problems import storage_reason
from labeltune.core.imaging import load_array
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureKey:
    """Everything that changes a backbone's output for the same file."""

    backbone: str
    weights_id: str
    preprocessing: str
    input_size: int
    stage: str  # "pooled" (features strategy) or "trunk" (partial strategy)

    def digest(self) -> str:
        """A short stable id of this key, used as the cache file name."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def default_cache_root() -> Path:
    """``$LABELTUNE_CACHE_DIR``, else the platform's user cache dir for LabelTune."""
    env = os.environ.get("LABELTUNE_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("labeltune"))


class FeatureCache:
    """Float16 arrays by (content hash, view) in one SQLite file per :class:`FeatureKey`."""

    def __init__(self, root: Path, key: FeatureKey) -> None:
        self.key = key
        self.path = Path(root) / "features" / f"{key.backbone}-{key.stage}-{key.digest()}.sqlite"
        self._lock = threading.Lock()
        self._warned = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open(self.path)
        except (OSError, sqlite3.Error) as exc:  # a cache only saves time: work on without one (ADR 0042)
            if isinstance(exc, sqlite3.Error) and storage_reason(exc, self.path) is None:
                raise
            self._warn(exc)
            self._db = self._open(":memory:")

    def _open(self, where: Path | str) -> sqlite3.Connection:
        db = sqlite3.connect(where, check_same_thread=False, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS features (hash TEXT, view INTEGER, shape TEXT, data BLOB, "
                "PRIMARY KEY (hash, view))"
            )
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('key', ?)", (json.dumps(asdict(self.key)),))
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def _warn(self, exc: BaseException) -> None:
        """Say once that the cache cannot be written: features are computed again next time, that is all."""
        reason = storage_reason(exc, self.path) or str(exc)
        log.log(
            logging.DEBUG if self._warned else logging.WARNING,
            "feature cache %s cannot be written (%s): features will be computed again next time",
            self.path,
            reason,
        )
        self._warned = True

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Store rows; a disk that refuses (full, read-only, gone) costs only the time to recompute them."""
        with self._lock:
            try:
                self._db.executemany(sql, rows)
                self._db.commit()
            except sqlite3.Error as exc:
                if storage_reason(exc, self.path) is None:
                    raise
                with contextlib.suppress(sqlite3.Error):
                    self._db.rollback()
                self._warn(exc)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get_many(self, hashes: Sequence[str], view: int = 0) -> dict[str, np.ndarray]:
        """Return the cached arrays among ``hashes`` (missing ones are absent from the result)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT hash, shape, data FROM features WHERE view = ? AND hash IN ({marks})",
                    (view, *chunk),
                )
                for digest, shape, data in rows:
                    found[digest] = np.frombuffer(data, dtype=np.float16).reshape(json.loads(shape))
        return found

    def put_many(self, items: dict[str, np.ndarray], view: int = 0) -> None:
        """Store arrays (converted to float16) and commit."""
        rows = [
            (digest, view, json.dumps(list(a.shape)), _to_float16(a).tobytes()) for digest, a in items.items()
        ]
        self._write("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?)", rows)

    def put_blob(self, name: str, data: bytes) -> None:
        """Store extra bytes that belong to this cache (e.g. calibrated BatchNorm statistics)."""
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(f"blob:{name}", data.hex())])

    def get_blob(self, name: str) -> bytes | None:
        """Return bytes stored with :meth:`put_blob`, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k = ?", (f"blob:{name}",)).fetchone()
        return bytes.fromhex(row[0]) if row else None

    def missing(self, hashes: Sequence[str], view: int = 0) -> int:
        """How many of ``hashes`` are not cached."""
        return len(set(hashes)) - len(self.get_many(hashes, view))

    def count(self, view: int = 0) -> int:
        """Number of stored arrays for ``view``."""
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM features WHERE view = ?", (view,)).fetchone()[0]
            )


def _to_float16(array: np.ndarray) -> np.ndarray:
    """Convert to float16, saturating instead of overflowing to infinity."""
    limit = float(np.finfo(np.float16).max)
    return np.ascontiguousarray(np.clip(array, -limit, limit), dtype=np.float16)


def calibrate_batchnorm(
    module: nn.Module,
    paths: Sequence[Path],
    input_size: int,
    device: torch.device,
    batch_size: int = 32,
    stop_event: threading.Event | None = None,
) -> int:
    """Set the BatchNorm statistics of a randomly initialised ``module`` from real images.

    A random network in eval mode uses BatchNorm statistics of mean 0 / variance 1, so activations grow
    layer after layer and deep features overflow float16. Re-estimating the statistics (cumulative
    average over ``paths``) keeps random features well scaled. Returns the number of images used.
    """
    import torch

    from labeltune.core.device import inference_precision

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average
    module.to(device).train()
    used = 0
    with torch.no_grad(), inference_precision(device):
        for start in range(0, len(paths), batch_size):
            check_stop(stop_event)
            arrays, _ = decode_batch(paths[start : start + batch_size], input_size)
            good = [a for a in arrays if a is not None]
            if len(good) > 1:
                module(images_to_tensor(good, device))
                used += len(good)
    module.eval()
    return used


@dataclass
class ExtractionResult:
    """Features of the files that decoded, in input order, and the files that did not."""

    features: np.ndarray  # float16, (n_ok, ...)
    ok: list[int]  # indices into the input of the rows in ``features``
    failed: dict[int, str]  # index -> reason
    computed: int  # how many went through the backbone (0 = all from cache)
    seconds_backbone: float
    #: The module's second output for the same rows, when it has one and ``extra_cache`` was given.
    extra: np.ndarray | None = None


def decode_batch(paths: Sequence[Path], size: int) -> tuple[list[np.ndarray | None], list[str | None]]:
    """Decode ``paths`` to ``size``-px arrays; a file that fails gives ``None`` and its reason."""
    arrays: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for path in paths:
        try:
            arrays.append(load_array(path, size))
            errors.append(None)
        except ImageDecodeError as exc:
            arrays.append(None)
            errors.append(str(exc))
    return arrays, errors


def decode_all(
    paths: Sequence[Path],
    size: int,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    chunk: int = 64,
) -> tuple[list[np.ndarray | None], list[str | None]]:
    """:func:`decode_batch` over many files, ``chunk`` at a time, reporting progress and checking Stop."""
    arrays: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for start in range(0, len(paths), chunk):
        check_stop(stop_event)
        progress(Progress("decode", start, len(paths), "reading the images"))
        a, e = decode_batch(paths[start : start + chunk], size)
        arrays += a
        errors += e
    check_stop(stop_event)
    progress(Progress("decode", len(paths), len(paths), "reading the images"))
    return arrays, errors


def images_to_tensor(arrays: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack ``(S, S, 3)`` uint8 arrays to a float ``(N, 3, S, S)`` tensor in [0, 1] on ``device``."""
    import torch

    batch = torch.from_numpy(np.stack(arrays)).to(device, non_blocking=True)
    from labeltune.core.device import memory_format

    return batch.permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=memory_format(device))


def extract_features(
    module: nn.Module,
    paths: Sequence[Path],
    hashes: Sequence[str],
    cache: FeatureCache,
    input_size: int,
    device: torch.device,
    batch_size: int = 32,
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    extra_cache: FeatureCache | None = None,
) -> ExtractionResult:
    """Return ``module``'s outputs for ``paths``, computing only what the cache lacks.

    Decoding of the next batch overlaps with the backbone running on the current one. With
    ``extra_cache``, ``module`` returns two tensors (e.g. features and probe statistics): the first goes
    to ``cache``, the second to ``extra_cache``, and a file is computed if either lacks it.
    """
    import time

    import torch

    from labeltune.core.device import inference_precision, memory_format

    cached = cache.get_many(hashes)
    extras = extra_cache.get_many(hashes) if extra_cache is not None else {}
    todo = [
        i for i, h in enumerate(hashes) if h not in cached or (extra_cache is not None and h not in extras)
    ]
    failed: dict[int, str] = {}
    seconds = 0.0
    if todo:
        module.eval().to(device).to(memory_format=memory_format(device))
        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        done = 0
        progress(Progress("features", 0, len(todo), "running the backbone"))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:

            def submit(batch: list[int]) -> Future[tuple[list[np.ndarray | None], list[str | None]]]:
                return pool.submit(decode_batch, [Path(paths[i]) for i in batch], input_size)

            pending = submit(batches[0])
            for n, batch in enumerate(batches):
                arrays, errors = pending.result()
                if n + 1 < len(batches):
                    pending = submit(batches[n + 1])
                check_stop(stop_event)
                good = [(i, a) for i, a, e in zip(batch, arrays, errors, strict=True) if a is not None]
                for i, e in zip(batch, errors, strict=True):
                    if e is not None:
                        failed[i] = e
                if good:
                    start = time.perf_counter()
                    x = images_to_tensor([a for _, a in good], device)
                    if transform is not None:
                        x = transform(x)
                    with torch.inference_mode(), inference_precision(device):
                        result = module(x)
                        second = None
                        if extra_cache is not None:
                            result, second = result
                            second = second.float().cpu().numpy()
                        out = result.float().cpu().numpy()
                    seconds += time.perf_counter() - start
                    fresh = {hashes[i]: out[k] for k, (i, _) in enumerate(good)}
                    cache.put_many(fresh)
                    cached.update({h: _to_float16(v) for h, v in fresh.items()})
                    if extra_cache is not None and second is not None:
                        fresh_extra = {hashes[i]: second[k] for k, (i, _) in enumerate(good)}
                        extra_cache.put_many(fresh_extra)
                        extras.update({h: _to_float16(v) for h, v in fresh_extra.items()})
                done += len(batch)
                progress(Progress("features", done, len(todo), "running the backbone"))
    ok = [
        i
        for i in range(len(paths))
        if i not in failed and hashes[i] in cached and (extra_cache is None or hashes[i] in extras)
    ]
    features = np.stack([cached[hashes[i]] for i in ok]) if ok else np.zeros((0,), dtype=np.float16)
    extra = None
    if extra_cache is not None:
        extra = np.stack([extras[hashes[i]] for i in ok]) if ok else np.zeros((0,), dtype=np.float16)
    return ExtractionResult(features, ok, failed, len(todo) - len(failed), seconds, extra)
