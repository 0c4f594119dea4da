"""The XRD models a project can use, with the scores their runs recorded (no torch, nothing recomputed).

A project's models are the app's bundled model, every run in ``runs/``, any model added from another
folder (the project remembers it) and the current one. Scores come from the runs' ``metrics.json``:

* simulated: the run's own simulated-validation exact-set accuracy;
* measured: the newest of the run's held-out score from its fine-tune (``measured_heldout``, cross-validated)
  and the scores other runs' comparisons gave it as *their* previous model (``comparison.previous_score``).
  A count such as 6 of 8 always says how many labeled patterns it rests on, since projects grow.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.xrd.xrd_project import xrd_run_problem

if TYPE_CHECKING:
    from labeltune.core.xrd.xrd_project import XrdProject

BUNDLED = "bundled"
RUN = "run"
ADDED = "added"


@dataclass(frozen=True)
class ModelEntry:
    """One model in the project's list."""

    path: Path
    origin: str
    """``"bundled"`` (ships with the app), ``"run"`` (in the project's ``runs/``) or ``"added"``."""
    active: bool
    created: dt.datetime | None = None
    simulated_exact: float | None = None
    simulated_patterns: int | None = None
    measured_exact: int | None = None
    measured_patterns: int | None = None
    measured_how: str = ""
    """Where the measured figure comes from, in words."""
    started_from: str | None = None
    kept_previous: bool = False
    """A fine-tune whose comparison said the model it started from was better."""
    problem: str | None = None

    @property
    def name(self) -> str:
        """The folder name."""
        return self.path.name


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _created(folder: Path, config: dict[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(config["created"]))
    except (KeyError, ValueError):
        pass
    try:
        return dt.datetime.fromtimestamp((folder / "model.safetensors").stat().st_mtime).astimezone()
    except OSError:
        return None


def _same(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def _candidates(project: XrdProject, bundled: Path | None) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    if bundled is not None:
        found.append((bundled, BUNDLED))
    runs = project.runs_dir
    if runs.is_dir():
        for child in sorted(runs.iterdir()):
            if (child / "config.json").is_file() and (child / "metrics.json").is_file():  # finished runs
                found.append((child, RUN))
    for added in project.used_models():
        found.append((added, RUN if _same(added.parent, runs) else ADDED))
    if project.model_dir is not None:
        found.append((project.model_dir, RUN if _same(project.model_dir.parent, runs) else ADDED))
    unique: list[tuple[Path, str]] = []
    for path, origin in found:
        if not any(_same(path, seen) for seen, _ in unique):
            unique.append((path, origin))
    return unique


def list_models(project: XrdProject, bundled: Path | None = None) -> list[ModelEntry]:
    """The project's models: the bundled one, then runs and added models, newest first.

    ``bundled`` is the app's own model (default: :func:`~labeltune.core.xrd.shipped.shipped_model_dir`).
    Added models whose folder is gone are left out, unless the project uses one (shown with the problem).
    """
    if bundled is None:
        from labeltune.core.xrd.shipped import shipped_model_dir

        bundled = shipped_model_dir()
    current = project.model_dir
    rows: list[tuple[Path, str, dict[str, Any], dict[str, Any]]] = []
    for path, origin in _candidates(project, bundled):
        active = current is not None and _same(path, current)
        if not path.is_dir() and not active:
            continue
        rows.append((path, origin, _read_json(path / "config.json"), _read_json(path / "metrics.json")))
    measured = _measured_scores(rows)
    entries: list[ModelEntry] = []
    for path, origin, config, metrics in rows:
        simulated = metrics.get("simulated_validation") if isinstance(metrics, dict) else None
        raw = metrics.get("comparison")
        comparison: dict[str, Any] = raw if isinstance(raw, dict) else {}
        init = (config.get("train") or {}).get("init") if isinstance(config.get("train"), dict) else None
        exact, patterns, how = measured.get(os.path.normcase(os.path.abspath(path)), (None, None, ""))
        entries.append(
            ModelEntry(
                path=path,
                origin=origin,
                active=current is not None and _same(path, current),
                created=_created(path, config),
                simulated_exact=_float(simulated, "exact_accuracy"),
                simulated_patterns=_int(simulated, "patterns"),
                measured_exact=exact,
                measured_patterns=patterns,
                measured_how=how,
                started_from=None if not init else Path(str(init)).name,
                kept_previous=comparison.get("adopt") is False,
                problem=xrd_run_problem(path),
            )
        )
    order = {BUNDLED: 0, RUN: 1, ADDED: 2}
    oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    entries.sort(key=lambda e: _aware(e.created) or oldest, reverse=True)
    entries.sort(key=lambda e: order.get(e.origin, 3))
    return entries


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.astimezone()


def _float(data: Any, key: str) -> float | None:
    try:
        return float(data[key])
    except (KeyError, TypeError, ValueError):
        return None


def _int(data: Any, key: str) -> int | None:
    try:
        return int(data[key])
    except (KeyError, TypeError, ValueError):
        return None


def _measured_scores(
    rows: list[tuple[Path, str, dict[str, Any], dict[str, Any]]],
) -> dict[str, tuple[int, int, str]]:
    """Newest measured score per model folder: its own held-out score, or one a later run gave it."""
    found: dict[str, tuple[dt.datetime, int, int, str]] = {}
    oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def offer(folder: str, when: dt.datetime, exact: Any, patterns: Any, how: str) -> None:
        try:
            value = (when, int(exact), int(patterns), how)
        except (TypeError, ValueError):
            return
        key = os.path.normcase(os.path.abspath(folder))
        if key not in found or found[key][0] <= when:
            found[key] = value

    for path, _origin, config, metrics in rows:
        when = _aware(_created(path, config)) or oldest
        own = metrics.get("measured_heldout")
        if isinstance(own, dict):
            folds = own.get("folds")
            offer(
                str(path),
                when,
                own.get("exact"),
                own.get("patterns"),
                f"held out, {folds}-fold cross-validation",
            )
        comparison = metrics.get("comparison")
        if isinstance(comparison, dict) and isinstance(comparison.get("previous_score"), dict):
            score = comparison["previous_score"]
            offer(
                str(comparison.get("previous", "")),
                when,
                score.get("exact"),
                score.get("patterns"),
                f"scored when {path.name} was checked against it",
            )
    return {key: (exact, patterns, how) for key, (_when, exact, patterns, how) in found.items()}


__all__ = ["ADDED", "BUNDLED", "RUN", "ModelEntry", "list_models"]
