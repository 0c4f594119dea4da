"""The labels of an XRD project: what a label is, ``labels.csv`` (the current labels) and the history.

``labels.csv`` (``path,phases,fractions``) holds each labeled pattern's current label; it is the CLI's
labeled-dataset format and is rewritten whole at every change (core/atomic.py). ``label_history.jsonl``
holds every change, one JSON object a line, appended and fsynced after ``labels.csv`` was written: the
same guarantees as an image project's SQLite ``labels`` table (docs/adr/0021).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from labeltune.core.domain import LabelEvent
from labeltune.core.errors import UnusableInputError

__all__ = [
    "HISTORY_FILE",
    "LABELS_FILE",
    "LABEL_HEADER",
    "LabelHistory",
    "XrdLabel",
    "XrdProjectError",
    "check_label",
    "labels_csv_text",
    "read_labels",
]

LABELS_FILE = "labels.csv"
HISTORY_FILE = "label_history.jsonl"
LABEL_HEADER = ("path", "phases", "fractions")

log = logging.getLogger(__name__)


class XrdProjectError(UnusableInputError):
    """An XRD project folder cannot be created or read; the message says why."""


@dataclass(frozen=True)
class XrdLabel:
    """The phases a person says are present in one pattern, optionally with their weight fractions."""

    phases: tuple[str, ...] = ()
    fractions: tuple[float, ...] | None = None

    @property
    def is_labeled(self) -> bool:
        """Whether at least one phase is given."""
        return bool(self.phases)

    def summary(self) -> str:
        """``Mn2O3 + LiF`` or ``Mn2O3 60 % + LiF 40 %`` (empty when unlabeled)."""
        if self.fractions is None:
            return " + ".join(self.phases)
        return " + ".join(f"{p} {f * 100:.0f} %" for p, f in zip(self.phases, self.fractions, strict=True))


def check_label(phases: Iterable[str], fractions: Iterable[float] | None) -> XrdLabel:
    """A label from phase names (blanks and repeats dropped) and fractions; raises XrdProjectError."""
    names: list[str] = []
    for phase in phases:
        name = str(phase).strip()
        if not name:
            continue
        if any(c in name for c in ';,\n\r"') or name != name.strip():
            raise XrdProjectError(f"phase name {name!r} may not contain ';', ',', quotes or line breaks")
        if name not in names:
            names.append(name)
    if fractions is None:
        return XrdLabel(tuple(names), None)
    values = tuple(float(f) for f in fractions)
    if len(values) != len(names):
        raise XrdProjectError(f"{len(values)} fractions for {len(names)} phases; give one per phase or none")
    if any(not math.isfinite(v) or v < 0 or v > 1 for v in values):
        raise XrdProjectError(f"weight fractions must lie between 0 and 1, got {list(values)}")
    return XrdLabel(tuple(names), values if names else None)


def labels_csv_text(labels: Mapping[str, XrdLabel]) -> str:
    """The content of ``labels.csv`` for ``labels`` (key -> label), rows sorted by key."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LABEL_HEADER)
    for key in sorted(labels):
        label = labels[key]
        fractions = "" if label.fractions is None else ";".join(f"{f:.6g}" for f in label.fractions)
        writer.writerow([key, ";".join(label.phases), fractions])
    return out.getvalue()


def read_labels(path: Path) -> dict[str, XrdLabel]:
    """The labels in a ``labels.csv`` (key -> label; none when it is missing); raises XrdProjectError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise XrdProjectError(f"{path}: cannot be read ({exc})") from exc
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        return {}
    if [h.strip().lower() for h in header[:2]] != ["path", "phases"]:
        raise XrdProjectError(f"{path}: expected the header path,phases,fractions, found {header}")
    labels: dict[str, XrdLabel] = {}
    for line, row in enumerate(rows, start=2):
        if not row or not row[0].strip():
            continue
        phases = [p for p in (row[1] if len(row) > 1 else "").split(";") if p.strip()]
        raw = row[2].strip() if len(row) > 2 else ""
        try:
            fractions = [float(v) for v in raw.split(";")] if raw else None
            label = check_label(phases, fractions)
        except (ValueError, XrdProjectError) as exc:
            raise XrdProjectError(f"{path}, line {line}: {exc}") from None
        if label.is_labeled:
            labels[PurePosixPath(*Path(row[0].strip()).parts).as_posix()] = label
    return labels


class LabelHistory:
    """The append-only label history of one XRD project (``label_history.jsonl``).

    It knows the newest label it holds for each pattern, so it can tell a label that ``labels.csv``
    holds but no change recorded (written by another tool, or before the history existed): see
    :meth:`unrecorded`.
    """

    def __init__(self, file: Path, labels_file: Path) -> None:
        """The history in ``file`` of the labels kept in ``labels_file`` (neither need exist yet)."""
        self.file = file
        self._labels_file = labels_file
        self._newest: dict[str, XrdLabel] | None = None  # read at first use

    def events(self, key: str) -> list[LabelEvent[XrdLabel]]:
        """The recorded events of one pattern, oldest first."""
        return [event for k, event in self._read() if k == key]

    def unrecorded(self, key: str, current: XrdLabel) -> LabelEvent[XrdLabel] | None:
        """An ``import`` event for ``current`` (dated by ``labels.csv``) unless it is the newest recorded."""
        if self._newest is None:
            self._newest = {k: event.value for k, event in self._read()}
        if self._newest.get(key, XrdLabel()) == current:
            return None
        try:
            when = self._labels_file.stat().st_mtime
        except OSError:
            when = time.time()
        return LabelEvent(current, "import", when, LABELS_FILE)

    def append(self, key: str, events: Sequence[LabelEvent[XrdLabel]]) -> None:
        """Append ``events`` of ``key`` and fsync the file (see :meth:`append_many`)."""
        self.append_many([(key, event) for event in events])

    def append_many(self, events: Sequence[tuple[str, LabelEvent[XrdLabel]]]) -> None:
        """Append ``(key, event)`` pairs in one write and fsync the file (a batch: one block of lines).

        The label itself is already safe in ``labels.csv``: if the history cannot be written, that is
        logged, and the label shows up as an ``import`` event until its next change records it.
        """
        lines = "".join(
            json.dumps(_event_json(key, event), ensure_ascii=False) + "\n" for key, event in events
        )
        if self._torn():  # a crash cut the last line short: start on a line of our own, or both are lost
            lines = "\n" + lines
        try:
            with self.file.open("a", encoding="utf-8", newline="") as fh:
                fh.write(lines)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            log.warning("cannot append to %s (%s); the label is saved in %s", self.file, exc, LABELS_FILE)
            return
        if self._newest is not None:
            self._newest.update((key, event.value) for key, event in events)

    def _torn(self) -> bool:
        """Whether the file ends inside a line (a power cut during an append); ``False`` when unreadable."""
        try:
            with self.file.open("rb") as fh:
                if fh.seek(0, os.SEEK_END) == 0:
                    return False
                fh.seek(-1, os.SEEK_END)
                return fh.read(1) != b"\n"
        except OSError:
            return False

    def _read(self) -> list[tuple[str, LabelEvent[XrdLabel]]]:
        """``(key, event)`` for each line of the file; a damaged line (torn at a crash) is skipped."""
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:  # labeling goes on: the labels themselves are in labels.csv
            log.warning("cannot read the label history %s (%s)", self.file, exc)
            return []
        found: list[tuple[str, LabelEvent[XrdLabel]]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                label = check_label(row["phases"], row["fractions"])
                event = LabelEvent(label, str(row["source"]), float(row["time"]), row.get("note"))
                found.append((str(row["path"]), event))
            except (ValueError, KeyError, TypeError, XrdProjectError) as exc:
                log.warning("%s, line %d: skipped (%s)", self.file, number, exc)
        return found


def _event_json(key: str, event: LabelEvent[XrdLabel]) -> dict[str, object]:
    """One line of the history file."""
    fractions = event.value.fractions
    return {
        "time": event.time,
        "path": key,
        "phases": list(event.value.phases),
        "fractions": None if fractions is None else list(fractions),
        "source": event.source,
        "note": event.note,
    }
