"""The runs of an image project and their stored predictions.

A mixin of :class:`~labeltune.core.project.Project`; see core/project_store/base.py. A run's files live
in its folder (``runs/<id>/``); the database only remembers the run, its metrics and its predictions.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeltune.core.errors import UnusableInputError
from labeltune.core.project_store.base import StoreBase, json_default

__all__ = ["Prediction", "RunsMixin"]

log = logging.getLogger("labeltune.core.project")


@dataclass(frozen=True)
class Prediction:
    """A model's prediction for one sample in one run."""

    path: Path
    label: str
    confidence: float
    topk: list[tuple[str, float]]
    ood_score: float | None = None  # above 1: the image is unlike the run's training images

    @property
    def unfamiliar(self) -> bool:
        """Whether the image is unlike the images the run was trained on."""
        return self.ood_score is not None and self.ood_score > 1.0


class RunsMixin(StoreBase):
    """Recording runs, and storing and reading their predictions."""

    def record_run(
        self,
        run_id: str,
        run_dir: str | os.PathLike[str],
        backbone: str,
        strategy: str,
        metrics: dict[str, Any],
    ) -> None:
        """Record a training run, or update it (path, backbone, strategy, metrics) if already recorded."""
        metrics_json = json.dumps(metrics, default=json_default)
        key = self._key(os.path.abspath(run_dir))
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, path, created, backbone, strategy, metrics) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET path = excluded.path, backbone = excluded.backbone, "
                "strategy = excluded.strategy, metrics = excluded.metrics",
                (run_id, key, time.time(), backbone, strategy, metrics_json),
            )

    def runs(self) -> list[dict[str, Any]]:
        """Return the recorded runs, oldest first.

        Each is a dict with ``id``, ``path`` (absolute), ``created``, ``backbone``, ``strategy`` and
        ``metrics`` (a dict).
        """
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT id, path, created, backbone, strategy, metrics FROM runs ORDER BY created, id"
                )
                .fetchall()
            )
        return [
            {
                "id": run_id,
                "path": self._abs(path),
                "created": created,
                "backbone": backbone,
                "strategy": strategy,
                "metrics": json.loads(metrics),
            }
            for run_id, path, created, backbone, strategy, metrics in rows
        ]

    def delete_run(self, run_id: str) -> bool:
        """Forget a run and its predictions (its folder is left alone); False if it was not recorded."""
        with self._write() as conn:
            return conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise UnusableInputError(f"unknown run {run_id!r} in project {self.name!r}")

    def add_predictions(
        self,
        run_id: str,
        rows: Iterable[tuple[Any, ...]],
    ) -> int:
        """Store ``(path, label, confidence, topk[, ood_score])`` predictions of a recorded run.

        Returns how many were stored. A later prediction for the same run and sample replaces the earlier
        one.  Paths that are not samples of the project are skipped (and logged).
        """
        by_key: dict[str, tuple[str, float, str, float | None]] = {}
        for path, label, confidence, topk, *rest in rows:
            topk_json = json.dumps([[str(name), float(p)] for name, p in topk])
            ood = float(rest[0]) if rest and rest[0] is not None else None
            by_key[self._key(path)] = (str(label), float(confidence), topk_json, ood)
        with self._write() as conn:
            self._require_run(conn, run_id)
            ids = self._rows_for_keys(conn, list(by_key))
            values = [(run_id, ids[key][0], *pred) for key, pred in by_key.items() if key in ids]
            conn.executemany(
                "INSERT OR REPLACE INTO predictions (run_id, sample_id, label, confidence, topk, ood_score) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
        skipped = len(by_key) - len(values)
        if skipped:
            log.warning(
                "run %s: %d predictions skipped (files are not samples of the project)", run_id, skipped
            )
        return len(values)

    def predictions(self, run_id: str) -> list[Prediction]:
        """Predictions stored for a run, in sample import order."""
        with self._lock:
            conn = self._db()
            self._require_run(conn, run_id)
            rows = conn.execute(
                "SELECT s.path, p.label, p.confidence, p.topk, p.ood_score FROM predictions p "
                "JOIN samples s ON s.id = p.sample_id WHERE p.run_id = ? ORDER BY s.id",
                (run_id,),
            ).fetchall()
        return [
            Prediction(
                self._abs(path), label, confidence, [(str(n), float(p)) for n, p in json.loads(topk)], ood
            )
            for path, label, confidence, topk, ood in rows
        ]

    def latest_predicted_run(self) -> str | None:
        """The newest recorded run that has stored predictions, or ``None``."""
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT r.id FROM runs r "
                    "WHERE EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = r.id) "
                    "ORDER BY r.created DESC, r.id DESC LIMIT 1"
                )
                .fetchone()
            )
        return str(row[0]) if row else None

    def has_predictions(self, run_id: str) -> bool:
        """Whether the run's predictions of the project's images are stored (it was checked)."""
        with self._lock:
            row = (
                self._db().execute("SELECT 1 FROM predictions WHERE run_id = ? LIMIT 1", (run_id,)).fetchone()
            )
        return row is not None

    def prediction_map(self, run_id: str) -> dict[int, tuple[str, float, float | None]]:
        """``sample id → (label, confidence, ood_score)`` of a run's stored predictions (one query)."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT sample_id, label, confidence, ood_score FROM predictions WHERE run_id = ?",
                    (run_id,),
                )
                .fetchall()
            )
        return {int(i): (str(label), float(conf), ood) for i, label, conf, ood in rows}

    def prediction_topk(self, run_id: str) -> dict[int, list[tuple[str, float]]]:
        """``sample id → [(class, probability), ...]`` (best first) of a run's stored predictions."""
        with self._lock:
            rows = (
                self._db()
                .execute("SELECT sample_id, topk FROM predictions WHERE run_id = ?", (run_id,))
                .fetchall()
            )
        return {int(i): [(str(n), float(p)) for n, p in json.loads(topk)] for i, topk in rows}
