"""Issue 12 (prediction browser, store side): accepted labels, exclusion from training, schema 2 → 3."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import write_class_folder  # tests/conftest.py
from labeltune.core.datasets import Sample, scan_project
from labeltune.core.project import DB_FILE, PROJECT_FILE, SCHEMA_VERSION, Project
from labeltune.core.review import (
    cell_paths,
    read_val_predictions,
    review_key,
    write_val_predictions,
)
from labeltune.core.training import TrainConfig, prepare_data

#: The ``labels`` table as schema 2 had it (no ``accepted`` source).
V2_LABELS = """
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
    value TEXT,
    source TEXT NOT NULL CHECK (source IN ('human', 'import', 'model')),
    time REAL NOT NULL,
    note TEXT
)"""


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    project = Project.create(tmp_path / "proj", name="Leaves", classes=["blight", "healthy"])
    project.add_samples(
        [Sample(project.folder / f"{n}.png", label) for n, label in [("a", "blight"), ("b", None)]]
    )
    yield project
    project.close()


def test_accept_stores_the_source_with_history_and_undo(proj: Project) -> None:
    proj.set_label("b.png", "healthy", source="accepted")
    assert proj.label_of("b.png") == "healthy"
    assert [(e.value, e.source) for e in proj.label_history("b.png")] == [("healthy", "accepted")]
    proj.add_samples([Sample(proj.folder / "b.png", "blight")])  # an import never overrides a person
    assert proj.label_of("b.png") == "healthy"
    assert proj.undo() is not None
    assert proj.label_of("b.png") is None


def test_excluded_items_are_left_out_of_training_data(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "data", classes=2, per_class=6)
    with Project.create(tmp_path / "proj", classes=["class0", "class1"]) as project:
        project.add_samples([Sample(p, p.parent.name) for p in sorted(root.glob("*/*.png"))])
        left_out = root / "class0" / "img002.png"
        assert project.set_excluded([left_out]) == [project.sample_id(left_out)]
        assert project.set_excluded([left_out]) == []  # already excluded: nothing changes
        assert project.label_of(left_out) == "class0"  # the label stays
        assert project.excluded_ids() == {project.sample_id(left_out)}
        assert project.counts(include_excluded=False) == {"class0": 5, "class1": 6}  # what training sees
        assert project.counts() == {"class0": 6, "class1": 6}
    data = scan_project(tmp_path / "proj")
    prepared = prepare_data(data, TrainConfig(weights="none"), cache_root=tmp_path / "cache")
    assert left_out not in prepared.paths and len(prepared.paths) == 11
    with Project.open(tmp_path / "proj") as project:
        project.set_excluded([left_out], excluded=False)
    assert left_out in [s.path for s in scan_project(tmp_path / "proj").labeled]


def _make_schema_2(project: Project) -> None:
    """Turn ``project`` (closed) into a schema-2 project, as the previous LabelTune wrote them."""
    conn = sqlite3.connect(project.folder / DB_FILE)
    conn.execute("ALTER TABLE samples DROP COLUMN excluded")
    for name in ("labels_current", "labels_append_only"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP INDEX labels_sample")
    conn.execute("ALTER TABLE labels RENAME TO labels_new")
    conn.execute(V2_LABELS)
    conn.execute("INSERT INTO labels SELECT * FROM labels_new")
    conn.execute("DROP TABLE labels_new")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    meta = json.loads((project.folder / PROJECT_FILE).read_text(encoding="utf-8"))
    meta["schema_version"] = 2
    (project.folder / PROJECT_FILE).write_text(json.dumps(meta), encoding="utf-8")


def test_schema_2_projects_migrate_keeping_labels_and_history(proj: Project) -> None:
    proj.set_label("b.png", "blight")
    proj.set_label("b.png", "healthy")
    before = proj.label_history("b.png")
    proj.close()
    _make_schema_2(proj)
    conn = sqlite3.connect(proj.folder / DB_FILE)
    with pytest.raises(sqlite3.IntegrityError):  # schema 2 refuses the new source
        conn.execute("INSERT INTO labels (sample_id, value, source, time) VALUES (1, 'x', 'accepted', 0)")
    conn.close()
    with Project.open(proj.folder) as project:
        assert project.label_history("b.png") == before
        assert project.label_of("a.png") == "blight" and project.label_of("b.png") == "healthy"
        assert project.excluded_ids() == set()
        project.set_label("a.png", "healthy", source="accepted")  # the migrated table takes it
        assert project.label_of("a.png") == "healthy"
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the triggers came back
            project._db().execute("UPDATE labels SET value = 'x'")
    conn = sqlite3.connect(proj.folder / DB_FILE)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()


def test_val_predictions_give_the_items_of_each_confusion_cell(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(5)]
    targets = np.array([0, 0, 1, 1, 1])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.0], [2.0, 1.0]])
    write_val_predictions(tmp_path, paths, targets, logits, ["cat", "dog"])
    items = read_val_predictions(tmp_path)
    assert [(i.true, i.predicted) for i in items] == [
        ("cat", "cat"),
        ("cat", "dog"),
        ("dog", "dog"),
        ("dog", "cat"),
        ("dog", "cat"),
    ]
    assert cell_paths(items, "dog", "cat") == {str(paths[3]), str(paths[4])}
    assert cell_paths(items, "cat", "dog") == {str(paths[1])}
    assert read_val_predictions(tmp_path / "missing") == []


def test_review_orders() -> None:
    sure, unsure, wrong = [("a", 0.9), ("b", 0.1)], [("a", 0.55), ("b", 0.45)], [("b", 0.8), ("a", 0.2)]
    items = {"sure": ("a", sure), "unsure": ("a", unsure), "wrong": ("a", wrong), "none": (None, None)}

    def ordered(order: str, only: dict[str, tuple[str | None, list[tuple[str, float]] | None]]) -> list[str]:
        return sorted(only, key=lambda k: review_key(order, only[k][0], only[k][1]))

    assert ordered("confidence", items) == ["unsure", "wrong", "sure", "none"]
    assert ordered("margin", items) == ["unsure", "wrong", "sure", "none"]
    assert ordered("loss", items) == ["wrong", "unsure", "sure", "none"]
    unlabeled = {"sure": (None, sure), "unsure": (None, unsure), "labeled": ("a", sure)}
    assert ordered("review", unlabeled) == ["sure", "unsure", "labeled"]
