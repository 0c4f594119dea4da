"""The runs list reads a legacy run folder as before, and says why it cannot show a newer one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from labeltune.core.run_schema import RUN_SCHEMA, RUN_SCHEMA_KEY
from labeltune.ui.runs_list import load_run_details


def write_run(folder: Path, schema: int | None) -> Path:
    folder.mkdir(parents=True)
    config: dict[str, object] = {"train": {"epochs": 2}, "model": {"classes": ["a", "b"]}}
    if schema is not None:
        config[RUN_SCHEMA_KEY] = schema
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps({"confusion_matrix": [[1, 0], [0, 1]], "accuracy": 1.0}))
    return folder


def test_a_legacy_run_shows_its_metrics_and_a_newer_one_says_why_not(tmp_path: Path) -> None:
    legacy = load_run_details({"path": str(write_run(tmp_path / "old", None))})
    assert legacy.problem == "" and legacy.metrics is not None and legacy.metrics["accuracy"] == 1.0
    newer_dir = write_run(tmp_path / "new", RUN_SCHEMA + 1)
    newer = load_run_details({"path": str(newer_dir)})
    assert (
        newer.problem is not None and str(newer_dir) in newer.problem and "newer LabelTune" in newer.problem
    )
    assert newer.metrics is None
