"""The samples of an image project: adding them (with their imported labels), listing, counting.

A mixin of :class:`~labeltune.core.project.Project`; see core/project_store/base.py.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from labeltune.core.project_store.base import (
    CHUNK,
    PERSON_SOURCES,
    LabelSource,
    SampleRef,
    StoreBase,
    check_source,
    clean_class_name,
)
from labeltune.core.sample import Sample
from labeltune.core.untrusted import remember_roots

__all__ = ["SamplesMixin"]

log = logging.getLogger("labeltune.core.project")


class SamplesMixin(StoreBase):
    """Adding, listing and counting samples."""

    def add_samples(self, samples: Iterable[Sample], source: LabelSource = "import") -> int:
        """Add samples (with their labels) and return how many were new.

        Known paths are not added twice.  A sample's label is recorded (with ``source``) when the sample
        is new, or when its current label did not come from a person and differs; a label set or
        removed by a person is never overwritten, and an unlabeled sample clears nothing, so importing
        the same data again changes nothing.  Class names not yet known are appended to
        :attr:`classes`.  A sample's group is updated when one is given.  Relative paths are taken
        relative to the current directory (``Sample.path`` is meant to be absolute).
        """
        check_source(source)
        batch: dict[str, Sample] = {}
        for sample in samples:
            key = self._key_from_abs(os.path.abspath(sample.path))
            batch.setdefault(key, sample)
        if not batch:
            return 0
        remember_roots({os.path.dirname(k) for k in batch if os.path.isabs(k)})  # ADR 0043: may read these
        now = time.time()
        with self._write() as conn:
            existing = self._rows_for_keys(conn, list(batch))
            new_rows: list[tuple[str, str | None, float, str | None, str | None]] = []
            group_updates: list[tuple[str, int]] = []
            label_rows: list[tuple[str, str, float, str]] = []
            known = set(self._meta["classes"])
            new_classes: list[str] = []
            for key, sample in batch.items():
                label = None if sample.label is None else clean_class_name(sample.label)
                row = existing.get(key)
                if row is None:
                    # the label cache is filled at once (the trigger then has nothing to update: faster)
                    record = label is not None
                    new_rows.append((key, sample.group, now, label, source if record else None))
                else:
                    sample_id, current, current_source, group = row
                    if sample.group is not None and sample.group != group:
                        group_updates.append((sample.group, sample_id))
                    record = label is not None and current_source not in PERSON_SOURCES and current != label
                if record and label is not None:
                    label_rows.append((label, source, now, key))
                    if label not in known:
                        known.add(label)
                        new_classes.append(label)
            conn.executemany(
                "INSERT INTO samples (path, group_key, added, label, label_source) VALUES (?, ?, ?, ?, ?)",
                new_rows,
            )
            conn.executemany("UPDATE samples SET group_key = ? WHERE id = ?", group_updates)
            conn.executemany(
                "INSERT INTO labels (sample_id, value, source, time) "
                "SELECT id, ?, ?, ? FROM samples WHERE path = ?",
                label_rows,
            )
            if new_classes:
                self._save_meta(classes=[*self._meta["classes"], *new_classes])
        log.info(
            "added %d new samples (%d given), %d labels, %d new classes",
            len(new_rows),
            len(batch),
            len(label_rows),
            len(new_classes),
        )
        return len(new_rows)

    def samples(
        self, label: str | None = None, unlabeled_only: bool = False, include_excluded: bool = True
    ) -> list[Sample]:
        """Return samples in import order with their current labels and absolute paths.

        ``label`` keeps only that class; ``unlabeled_only`` keeps only unlabeled samples;
        ``include_excluded=False`` leaves out the samples excluded from training (:meth:`set_excluded`).
        """
        where, params = _label_filter(label, unlabeled_only)
        if not include_excluded:
            where = f"{where} AND excluded = 0" if where else " WHERE excluded = 0"
        with self._lock:
            query = f"SELECT path, label, group_key FROM samples{where} ORDER BY id"
            rows = self._db().execute(query, params).fetchall()
        return [Sample(self._abs(path), value, group) for path, value, group in rows]

    def sample_ids(self, label: str | None = None, unlabeled_only: bool = False) -> list[int]:
        """Database ids of the samples :meth:`samples` would return, in the same order."""
        where, params = _label_filter(label, unlabeled_only)
        with self._lock:
            return [
                row[0] for row in self._db().execute(f"SELECT id FROM samples{where} ORDER BY id", params)
            ]

    def rows(
        self,
        label: str | None = None,
        unlabeled_only: bool = False,
        ids: Iterable[int] | None = None,
    ) -> list[tuple[int, str, str | None]]:
        """Return ``(id, absolute path, label)`` of samples in import order: a fast listing for galleries.

        Paths are plain strings (no :class:`~pathlib.Path` objects), so listing 100 000 samples takes a
        fraction of :meth:`samples`' time.  ``label`` keeps only that class, ``unlabeled_only`` only the
        unlabeled samples and ``ids`` only those samples (unknown ids are left out).
        """
        if label is not None and unlabeled_only:
            raise ValueError("give either label or unlabeled_only, not both")
        clauses: list[str] = []
        params: list[object] = []
        if label is not None:
            clauses.append("label = ?")
            params.append(label)
        elif unlabeled_only:
            clauses.append("label IS NULL")
        query = "SELECT id, path, label FROM samples"
        with self._lock:
            conn = self._db()
            if ids is None:
                where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
                found = conn.execute(query + where + " ORDER BY id", params).fetchall()
            else:
                wanted = sorted(set(ids))
                found = []
                for start in range(0, len(wanted), CHUNK):
                    chunk = wanted[start : start + CHUNK]
                    marks = ",".join("?" * len(chunk))
                    where = " AND ".join([*clauses, f"id IN ({marks})"])
                    found.extend(conn.execute(f"{query} WHERE {where} ORDER BY id", [*params, *chunk]))
        prefix = os.path.join(self._folder, "")
        isabs = os.path.isabs
        if os.sep == "/":  # an absolute POSIX key starts with "/": cheaper than isabs() 100 000 times
            return [(i, key if key[:1] == "/" else prefix + key, value) for i, key, value in found]
        return [  # keys use "/": give native separators, as :meth:`samples` does
            (i, key.replace("/", os.sep) if isabs(key) else prefix + key.replace("/", os.sep), value)
            for i, key, value in found
        ]

    def set_excluded(self, refs: Iterable[SampleRef], excluded: bool = True) -> list[int]:
        """Exclude samples from training (or include them again); return the ids whose flag changed.

        An excluded sample keeps its label and stays in the gallery; training leaves it out
        (core/datasets.py ``scan_project``). Committed before this returns.
        """
        refs = list(refs)
        flag = int(excluded)
        with self._write() as conn:
            ints = [ref for ref in refs if isinstance(ref, int) and not isinstance(ref, bool)]
            flags: dict[int, int] = {}
            for start in range(
                0, len(ints), CHUNK
            ):  # a selection of 100 000: a query per 500, not two per id
                chunk = ints[start : start + CHUNK]
                query = f"SELECT id, excluded FROM samples WHERE id IN ({','.join('?' * len(chunk))})"
                flags.update(conn.execute(query, chunk).fetchall())
            changed: list[int] = []
            for ref in refs:
                known = isinstance(ref, int) and not isinstance(ref, bool) and ref in flags
                sample_id = ref if known else self._lookup(conn, ref)[0]  # a path, or unknown: raises
                assert isinstance(sample_id, int)
                if sample_id not in flags:
                    flags[sample_id] = conn.execute(
                        "SELECT excluded FROM samples WHERE id = ?", (sample_id,)
                    ).fetchone()[0]
                if flags[sample_id] != flag:
                    flags[sample_id] = flag
                    changed.append(sample_id)
            for start in range(0, len(changed), CHUNK):
                chunk = changed[start : start + CHUNK]
                conn.execute(
                    f"UPDATE samples SET excluded = ? WHERE id IN ({','.join('?' * len(chunk))})",
                    [flag, *chunk],
                )
        return changed

    def excluded_ids(self) -> set[int]:
        """Ids of the samples excluded from training."""
        with self._lock:
            return {int(row[0]) for row in self._db().execute("SELECT id FROM samples WHERE excluded = 1")}

    def sample_id(self, ref: SampleRef) -> int:
        """Database id of a sample (raises :class:`UnusableInputError` if unknown)."""
        with self._lock:
            return self._lookup(self._db(), ref)[0]

    def sample(self, ref: SampleRef) -> Sample:
        """One sample with its current label (raises :class:`UnusableInputError` if unknown)."""
        with self._lock:
            sample_id = self._lookup(self._db(), ref)[0]
            path, label, group = (
                self._db()
                .execute("SELECT path, label, group_key FROM samples WHERE id = ?", (sample_id,))
                .fetchone()
            )
        return Sample(self._abs(path), label, group)

    def label_of(self, ref: SampleRef) -> str | None:
        """Return the current label of a sample (``None``: unlabeled)."""
        with self._lock:
            return self._lookup(self._db(), ref)[2]

    def sample_count(self) -> int:
        """Return the number of samples."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def counts(self, include_excluded: bool = True) -> dict[str, int]:
        """Return the number of samples per class, in class order (0 for empty classes); no unlabeled.

        ``include_excluded=False`` counts only what training uses (not the excluded samples).
        """
        kept = "" if include_excluded else " AND excluded = 0"
        with self._lock:
            rows = self._db().execute(
                f"SELECT label, COUNT(*) FROM samples WHERE label IS NOT NULL{kept} GROUP BY label"
            )
            found = dict(rows.fetchall())
        result = {name: int(found.pop(name, 0)) for name in self._meta["classes"]}
        result.update(sorted(found.items()))  # labels outside the class list (should not happen)
        return result

    def group_count(self) -> int:
        """Return how many distinct groups (e.g. fish tracks) the samples carry (0: none are grouped)."""
        with self._lock:
            query = "SELECT COUNT(DISTINCT group_key) FROM samples WHERE group_key IS NOT NULL"
            return int(self._db().execute(query).fetchone()[0])

    def unlabeled_count(self) -> int:
        """Return the number of samples without a label."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM samples WHERE label IS NULL").fetchone()[0])


def _label_filter(label: str | None, unlabeled_only: bool) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause (with a leading space, or empty) and parameters for a label filter."""
    if label is not None and unlabeled_only:
        raise ValueError("give either label or unlabeled_only, not both")
    if label is not None:
        return " WHERE label = ?", (label,)
    return (" WHERE label IS NULL", ()) if unlabeled_only else ("", ())
