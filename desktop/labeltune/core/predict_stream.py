"""Prediction at scale: batches decoded one ahead, shards, output files written as the answers come.

A folder of 100 000 images is predicted in bounded memory: at most two batches of decoded images exist at
any time (the one on the device and the next, decoded in a background thread while the device works:
PIL's decoders release the GIL), and the command line writes each batch's rows as it comes instead of
keeping every prediction (docs/adr/0052). ``--shard i/N`` splits the inputs into N disjoint parts that
N independent processes — a scheduler's array job, several machines — predict without talking to
each other.
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from labeltune.core.errors import LabelTuneError
from labeltune.core.file_problems import storage_error
from labeltune.core.progress import check_stop

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count`` disjoint parts of a set of inputs."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/N"`` with ``0 <= i < N`` (``$SLURM_ARRAY_TASK_ID/N`` with ``--array=0-(N-1)``)."""
        left, sep, right = text.partition("/")
        try:
            index, count = int(left), int(right)
        except ValueError:
            index, count = -1, 0
        if not sep or count < 1 or not 0 <= index < count:
            raise LabelTuneError(f"--shard must be i/N with 0 <= i < N (e.g. 0/4 ... 3/4), not {text!r}")
        return cls(index, count)

    def take(self, items: Sequence[T]) -> list[T]:
        """The items of this shard: every ``count``-th of the items sorted by name, starting at ``index``.

        Sorting first makes the split the same in every process whatever order the folders were listed
        in; interleaving keeps the parts within one item of each other in size.
        """
        ordered = sorted(items, key=lambda item: str(item))
        return ordered[self.index :: self.count]


def take_shard(items: Sequence[T], spec: str | None) -> list[T]:
    """``items`` itself without ``spec``, else the shard ``spec`` (``"i/N"``) names."""
    return list(items) if not spec else Shard.parse(spec).take(items)


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of ``size`` (the last one shorter)."""
    if size < 1:
        raise LabelTuneError(f"the batch size must be at least 1, not {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def prefetched(
    chunks: Iterator[Sequence[T]],
    work: Callable[[Sequence[T]], R],
    stop_event: threading.Event | None = None,
) -> Iterator[tuple[Sequence[T], R]]:
    """``(chunk, work(chunk))`` in order, computing the next chunk's ``work`` while the caller uses this one.

    One background thread and one chunk of look-ahead: memory stays at two chunks' results however many
    chunks there are. A Stop is checked before each chunk; closing the iterator early (an error in the
    caller, ``break``) cancels what is queued and waits for the running chunk.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labeltune-decode")
    try:
        pending: tuple[Sequence[T], Future[R]] | None = None
        for chunk in chunks:
            check_stop(stop_event)
            queued = (chunk, executor.submit(work, chunk))
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = queued
        if pending is not None:
            check_stop(stop_event)
            yield pending[0], pending[1].result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


class StreamedCsv:
    """A CSV written batch by batch into a hidden temporary file, renamed into place by :meth:`commit`.

    Whole or not at all, as ``core/atomic.write_atomic`` (a kill, a Stop or a full disk leaves the previous
    file), but without holding every row in memory first. Use as a context manager: leaving it without
    :meth:`commit` removes the temporary file.
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.rows = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise storage_error(exc, self.path, "write") from exc
        self._writer = csv.writer(self._file)
        self._writer.writerow(list(header))

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append ``rows``."""
        try:
            self._writer.writerows(rows)
        except OSError as exc:
            raise storage_error(exc, self.path, "write") from exc
        self.rows += len(rows)

    def commit(self) -> None:
        """Flush, fsync and rename the file into place."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            raise storage_error(exc, self.path, "write") from exc

    def __enter__(self) -> StreamedCsv:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


class JsonArrayWriter:
    """A JSON array printed an element at a time (valid JSON when closed; nothing kept in memory)."""

    def __init__(self, out: IO[str] | None = None) -> None:
        import sys

        self._out = out if out is not None else sys.stdout
        self._count = 0
        self._out.write("[")

    def write(self, value: Any) -> None:
        """Print one element."""
        import json

        self._out.write(("," if self._count else "") + "\n  " + json.dumps(value, default=str))
        self._count += 1

    def close(self) -> None:
        """End the array."""
        self._out.write("\n]\n" if self._count else "]\n")
        self._out.flush()
