from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeltune.core import project as project_module
from labeltune.core.datasets import Sample
from labeltune.core.errors import LabelTuneError, UnusableInputError
from labeltune.core.project import (
    DB_FILE,
    PROJECT_FILE,
    SCHEMA_VERSION,
    LabelChange,
    NewerSchemaError,
    Prediction,
    Project,
    file_sha256,
    is_project,
)


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    project = Project.create(tmp_path / "proj", name="Fish", classes=["cat", "dog"])
    yield project
    project.close()


def _samples(folder: Path, spec: Sequence[tuple[str, str | None]], group: str | None = None) -> list[Sample]:
    return [Sample(folder / name, label, group) for name, label in spec]


def _raw(project: Project) -> sqlite3.Connection:
    """A second, independent connection to the project database."""
    return sqlite3.connect(project.folder / DB_FILE)


# ---------------------------------------------------------------------- create / open


def test_create_open_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    with Project.create(folder, name="Plankton", domain="xrd", classes=[" one ", "two"]) as project:
        assert project.folder == folder
        assert project.name == "Plankton"
        assert project.domain == "xrd"
        assert project.classes == ["one", "two"]
        assert project.settings == {}
        assert project.sources == []
        assert project.runs_dir == folder / "runs"
        assert project.cache_dir == folder / "cache"
        created = project.created
    assert project.closed
    with Project.open(folder) as again:
        assert again.name == "Plankton"
        assert again.domain == "xrd"
        assert again.classes == ["one", "two"]
        assert again.created == created
        assert again.sample_count() == 0
    # a path to project.json itself is accepted too
    with Project.open(folder / PROJECT_FILE) as third:
        assert third.folder == folder


def test_default_name_is_folder_name(tmp_path: Path) -> None:
    with Project.create(tmp_path / "zebrafish") as project:
        assert project.name == "zebrafish"
        assert project.domain == "image"
        assert project.classes == []


def test_project_json_content(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    with Project.create(folder, name="N", classes=["x", "y"]) as project:
        project.save_settings(backbone="resnet18", epochs=5)
        project.add_source(folder / "data")
        project.add_source(tmp_path / "elsewhere")
    data = json.loads((folder / PROJECT_FILE).read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION == 3
    assert data["name"] == "N"
    assert data["domain"] == "image"
    assert data["classes"] == ["x", "y"]
    assert data["settings"] == {"backbone": "resnet18", "epochs": 5}
    assert data["sources"] == ["data", (tmp_path / "elsewhere").as_posix()]
    assert data["created"].startswith("20") and data["created"].endswith("+00:00")
    assert not list(folder.glob("*.tmp")), "atomic write left a temporary file"


def test_create_refuses_existing_project(proj: Project) -> None:
    with pytest.raises(UnusableInputError, match="already holds"):
        Project.create(proj.folder)


@pytest.mark.parametrize(
    ("domain", "classes"), [("audio", ()), ("image", ("a", "a")), ("image", ("a", "  "))]
)
def test_create_rejects_bad_arguments(tmp_path: Path, domain: str, classes: tuple[str, ...]) -> None:
    with pytest.raises(UnusableInputError):
        Project.create(tmp_path / "p", domain=domain, classes=classes)
    assert not is_project(tmp_path / "p")


def test_open_non_project_raises(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnusableInputError, match="not a LabelTune project"):
        Project.open(tmp_path / "empty")
    with pytest.raises(UnusableInputError):
        Project.open(tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / PROJECT_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(UnusableInputError, match="cannot read"):
        Project.open(tmp_path / "broken")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / PROJECT_FILE).write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(UnusableInputError, match="schema_version"):
        Project.open(tmp_path / "other")
    assert not is_project(tmp_path / "empty")
    assert not is_project(tmp_path / "missing")
    assert not is_project(tmp_path / "broken")
    assert not is_project(tmp_path / "other")


def test_is_project(proj: Project) -> None:
    assert is_project(proj.folder)
    assert is_project(str(proj.folder))


def test_newer_project_json_is_refused(proj: Project) -> None:
    proj.close()
    path = proj.folder / PROJECT_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(NewerSchemaError, match="newer LabelTune") as info:
        Project.open(proj.folder)
    assert isinstance(info.value, UnusableInputError)


def test_newer_database_is_refused(proj: Project) -> None:
    proj.close()
    with _raw(proj) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(NewerSchemaError, match=f"database schema {SCHEMA_VERSION + 1}"):
        Project.open(proj.folder)


def test_migration_hook_runs_once(proj: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    proj.close()
    calls: list[int] = []

    def to_next(conn: sqlite3.Connection, meta: dict[str, object]) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE samples ADD COLUMN width INTEGER")
        meta["settings"] = {"migrated": True}

    monkeypatch.setattr(project_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(project_module.MIGRATIONS, SCHEMA_VERSION, to_next)
    with Project.open(proj.folder) as project:
        assert project.settings == {"migrated": True}
    assert calls == [1]
    conn = _raw(proj)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert "width" in [row[1] for row in conn.execute("PRAGMA table_info(samples)")]
    conn.close()
    assert (
        json.loads((proj.folder / PROJECT_FILE).read_text(encoding="utf-8"))["schema_version"]
        == SCHEMA_VERSION + 1
    )
    with Project.open(proj.folder):
        pass
    assert calls == [1]


def test_missing_migration_is_an_error(proj: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    proj.close()
    monkeypatch.setattr(project_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(LabelTuneError, match=f"no migration from project schema {SCHEMA_VERSION}"):
        Project.open(proj.folder)
    conn = _raw(proj)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # rolled back
    conn.close()


def test_schema_1_projects_gain_the_ood_score_column(proj: Project) -> None:
    proj.record_run("r1", proj.folder / "runs" / "r1", "resnet18", "features", {})
    proj.close()
    conn = _raw(proj)  # make it a schema-1 project, as LabelTune 0.1 wrote them
    conn.execute("ALTER TABLE predictions DROP COLUMN ood_score")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    meta = json.loads((proj.folder / PROJECT_FILE).read_text(encoding="utf-8"))
    meta["schema_version"] = 1
    (proj.folder / PROJECT_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with Project.open(proj.folder) as project:
        project.add_samples(_samples(project.folder, [("a.png", "cat")]))
        project.add_predictions("r1", [(project.folder / "a.png", "cat", 0.9, [("cat", 0.9)], 2.5)])
        (prediction,) = project.predictions("r1")
        assert prediction.ood_score == 2.5 and prediction.unfamiliar
        assert project.latest_predicted_run() == "r1"
        assert list(project.prediction_map("r1").values()) == [("cat", 0.9, 2.5)]


def test_has_predictions_says_which_runs_were_checked(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", "cat")]))
    for run_id in ("r1", "r2"):
        proj.record_run(run_id, proj.folder / "runs" / run_id, "resnet18", "features", {})
    proj.add_predictions("r1", [(proj.folder / "a.png", "cat", 0.9, [("cat", 0.9)], None)])
    assert proj.has_predictions("r1") and not proj.has_predictions("r2")
    assert not proj.has_predictions("no-such-run")


def test_missing_database_is_recreated(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", "cat")]))
    proj.close()
    for name in (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm"):
        (proj.folder / name).unlink(missing_ok=True)
    with Project.open(proj.folder) as project:
        assert project.classes == ["cat", "dog"]
        assert project.sample_count() == 0
        project.add_samples(_samples(proj.folder, [("a.png", "cat")]))
        assert project.counts() == {"cat": 1, "dog": 0}


def test_closed_project_raises(proj: Project) -> None:
    proj.close()
    proj.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        proj.counts()


# ---------------------------------------------------------------------- database durability


def test_wal_mode_and_schema(proj: Project) -> None:
    conn = _raw(proj)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"samples", "labels", "runs", "predictions"} <= tables
    conn.close()


def test_second_connection_sees_label_immediately(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", None)]))
    proj.set_label("a.png", "dog")
    conn = _raw(proj)  # opened while the project is still open: the label must be committed
    rows = conn.execute(
        "SELECT l.value, l.source FROM labels l JOIN samples s ON s.id = l.sample_id WHERE s.path = 'a.png'"
    ).fetchall()
    assert rows == [("dog", "human")]
    assert conn.execute("SELECT label FROM samples WHERE path = 'a.png'").fetchone() == ("dog",)
    conn.close()


def test_labels_survive_reopen(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", "cat"), ("b.png", None)]))
    proj.set_label("b.png", "dog")
    proj.set_label("a.png", None)
    folder = proj.folder
    proj.close()
    with Project.open(folder) as project:
        assert project.label_of("a.png") is None
        assert project.label_of("b.png") == "dog"
        assert [e.value for e in project.label_history("a.png")] == ["cat", None]
        assert project.counts() == {"cat": 0, "dog": 1}


def test_label_survives_process_crash(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", None)]))
    proj.close()
    script = (
        "import os, sys\n"
        "from labeltune.core.project import Project\n"
        "p = Project.open(sys.argv[1])\n"
        "p.set_label('a.png', 'cat')\n"
        "os._exit(3)  # no close, no cleanup\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(proj.folder)], capture_output=True, timeout=60)
    assert done.returncode == 3, done.stderr.decode()
    with Project.open(proj.folder) as project:
        assert project.label_of("a.png") == "cat"


def test_labels_table_is_append_only(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", "cat")]))
    conn = _raw(proj)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE labels SET value = 'dog'")
    conn.close()
    assert proj.label_of("a.png") == "cat"


def test_threads_share_a_project(proj: Project) -> None:
    names = [f"t{i}/{j}.png" for i in range(4) for j in range(25)]
    proj.add_samples(_samples(proj.folder, [(n, None) for n in names]))
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(25):
                proj.set_label(f"t{i}/{j}.png", "cat" if j % 2 else "dog")
                proj.counts()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert proj.counts() == {"cat": 48, "dog": 52}


# ---------------------------------------------------------------------- samples and paths


def test_relative_and_absolute_path_storage(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    outside = tmp_path / "outside" / "x.png"
    with Project.create(folder) as project:
        inside = folder / "data" / "cat" / "a.png"
        assert project.add_samples([Sample(inside, "cat"), Sample(outside, None)]) == 2
        conn = _raw(project)
        stored = [row[0] for row in conn.execute("SELECT path FROM samples ORDER BY id")]
        conn.close()
        assert stored == ["data/cat/a.png", outside.as_posix()]
        assert project.stored_path(folder / "data" / ".." / "data" / "cat" / "a.png") == "data/cat/a.png"
        assert [s.path for s in project.samples()] == [inside, outside]
        # lookups: absolute path, relative (to the project folder) path, id
        first = project.sample_id(inside)
        assert project.sample_id("data/cat/a.png") == first
        assert project.sample_id(Path("data") / "cat" / "a.png") == first
        assert project.sample(first) == Sample(inside, "cat", None)
        assert project.sample(str(outside)) == Sample(outside, None, None)
        with pytest.raises(UnusableInputError, match="not a sample"):
            project.sample_id("data/cat/nope.png")
        with pytest.raises(UnusableInputError, match="not a sample"):
            project.set_label(12345, "cat")
    moved = tmp_path / "moved"
    shutil.move(str(folder), str(moved))
    with Project.open(moved) as project:
        assert [s.path for s in project.samples()] == [moved / "data" / "cat" / "a.png", outside]


def test_symlinked_project_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    with Project.create(real):
        pass
    link = tmp_path / "link"
    try:
        link.symlink_to(real, target_is_directory=True)
    except OSError:  # pragma: no cover - e.g. Windows without the privilege
        pytest.skip("symlinks unavailable")
    with Project.open(link) as project:
        project.add_samples([Sample(real / "a.png", None), Sample(link / "b.png", None)])
        conn = _raw(project)
        assert [row[0] for row in conn.execute("SELECT path FROM samples ORDER BY id")] == ["a.png", "b.png"]
        conn.close()


def test_reimport_is_idempotent_and_keeps_human_labels(proj: Project) -> None:
    data = proj.folder / "data"
    spec: list[tuple[str, str | None]] = [("cat/1.png", "cat"), ("cat/2.png", "cat"), ("dog/3.png", "dog")]
    spec += [("bird/4.png", "bird"), ("unsorted/5.png", None)]
    assert proj.add_samples(_samples(data, spec)) == 5
    assert proj.classes == ["cat", "dog", "bird"]
    assert proj.counts() == {"cat": 2, "dog": 1, "bird": 1}
    assert proj.unlabeled_count() == 1
    assert [e.source for e in proj.label_history(data / "cat/1.png")] == ["import"]

    proj.set_label(data / "cat/1.png", "dog")  # a person corrects the folder
    proj.set_label(data / "dog/3.png", None)  # a person removes a label
    proj.set_label(data / "unsorted/5.png", "bird")
    conn = _raw(proj)
    rows_before = conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0]

    assert proj.add_samples(_samples(data, spec)) == 0  # same folder again
    assert conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == rows_before
    assert proj.label_of(data / "cat/1.png") == "dog"
    assert proj.label_of(data / "dog/3.png") is None
    assert proj.label_of(data / "unsorted/5.png") == "bird"
    assert proj.counts() == {"cat": 1, "dog": 1, "bird": 2}
    assert proj.sample_count() == 5

    # the folder changed: an import label is updated, a human label is not, new files and classes added
    changed = [("cat/1.png", "fish"), ("cat/2.png", "fish"), ("new/6.png", "eel"), ("new/6.png", "x")]
    assert proj.add_samples(_samples(data, changed)) == 1
    assert proj.label_of(data / "cat/1.png") == "dog"
    assert proj.label_of(data / "cat/2.png") == "fish"
    assert proj.label_of(data / "new/6.png") == "eel"  # first occurrence in a batch wins
    assert proj.classes == ["cat", "dog", "bird", "fish", "eel"]
    assert [(e.value, e.source) for e in proj.label_history(data / "cat/2.png")] == [
        ("cat", "import"),
        ("fish", "import"),
    ]
    conn.close()


def test_import_does_not_recreate_classes_for_human_decisions(proj: Project) -> None:
    data = proj.folder / "data"
    spec = [("mouse/1.png", "mouse"), ("cat/2.png", "cat")]
    proj.add_samples(_samples(data, spec))
    assert proj.delete_class("mouse") == 1
    proj.add_samples(_samples(data, spec))
    assert proj.classes == ["cat", "dog"]
    assert proj.label_of(data / "mouse/1.png") is None


def test_add_samples_groups_and_empty(proj: Project) -> None:
    assert proj.add_samples([]) == 0
    proj.add_samples(_samples(proj.folder, [("a.png", "cat"), ("b.png", None)], group="track1"))
    proj.add_samples([Sample(proj.folder / "a.png", None, "track2"), Sample(proj.folder / "b.png", None)])
    assert [(s.path.name, s.group) for s in proj.samples()] == [("a.png", "track2"), ("b.png", "track1")]
    with pytest.raises(UnusableInputError, match="empty"):
        proj.add_samples([Sample(proj.folder / "c.png", "  ")])
    assert proj.sample_count() == 2  # the failed batch was rolled back


def test_samples_filters(proj: Project) -> None:
    proj.add_samples(
        _samples(proj.folder, [("a.png", "cat"), ("b.png", None), ("c.png", "dog"), ("d", "cat")])
    )
    assert [s.path.name for s in proj.samples(label="cat")] == ["a.png", "d"]
    assert [s.path.name for s in proj.samples(unlabeled_only=True)] == ["b.png"]
    assert [s.label for s in proj.samples()] == ["cat", None, "dog", "cat"]
    assert proj.sample_ids(label="cat") == [proj.sample_id("a.png"), proj.sample_id("d")]
    assert proj.sample_ids(unlabeled_only=True) == [proj.sample_id("b.png")]
    assert len(proj.sample_ids()) == 4
    with pytest.raises(ValueError):
        proj.samples(label="cat", unlabeled_only=True)


def test_rows_match_samples(proj: Project, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "e.png"
    proj.add_samples(
        [
            *_samples(proj.folder, [("a.png", "cat"), ("sub/b.png", None), ("c.png", "dog")]),
            Sample(outside, "cat"),
        ]
    )
    rows = proj.rows()
    assert [(i, Path(p), label) for i, p, label in rows] == [
        (proj.sample_id(s.path), s.path, s.label) for s in proj.samples()
    ]
    assert all(isinstance(p, str) and os.path.isabs(p) for _, p, _ in rows)
    assert rows[1][1] == str(proj.folder / "sub" / "b.png")
    assert rows[3][1] == str(outside)
    assert [Path(p).name for _, p, _ in proj.rows(label="cat")] == ["a.png", "e.png"]
    assert [Path(p).name for _, p, _ in proj.rows(unlabeled_only=True)] == ["b.png"]
    ids = [i for i, _, _ in rows]
    assert proj.rows(ids=[ids[2], ids[0], 999_999]) == [rows[0], rows[2]]  # import order, unknown left out
    assert proj.rows(label="dog", ids=ids[:2]) == []
    assert len(proj.rows(ids=range(1, 1200))) == 4  # more ids than one IN (...) chunk
    with pytest.raises(ValueError):
        proj.rows(label="cat", unlabeled_only=True)


def test_counts_on_100k_samples(proj: Project) -> None:
    classes = ["c0", "c1", "c2", "c3", "c4"]
    samples = [
        Sample(proj.folder / "img" / f"{i:06d}.png", None if i % 10 == 0 else classes[(i // 10) % 5])
        for i in range(100_000)
    ]
    assert proj.add_samples(samples) == 100_000
    expected = {name: 18_000 for name in classes}
    assert proj.counts() == {"cat": 0, "dog": 0, **expected}
    assert proj.unlabeled_count() == 10_000
    assert proj.sample_count() == 100_000
    proj.set_label(proj.folder / "img" / "000000.png", "c1")
    assert proj.counts()["c1"] == 18_001
    assert proj.unlabeled_count() == 9_999
    assert proj.merge_classes(["c2", "c3"], "c23") == 36_000
    assert proj.counts() == {"cat": 0, "dog": 0, "c0": 18_000, "c1": 18_001, "c23": 36_000, "c4": 18_000}
    assert len(proj.samples(label="c4")) == 18_000
    assert proj.add_samples(samples) == 0  # re-import of a big folder is idempotent too
    assert proj.unlabeled_count() == 9_999


# ---------------------------------------------------------------------- labels, undo, redo


def test_set_label_unknown_class(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", None)]))
    with pytest.raises(UnusableInputError, match="unknown class 'eel'"):
        proj.set_label("a.png", "eel")
    assert proj.label_of("a.png") is None
    assert proj.classes == ["cat", "dog"]
    proj.set_label("a.png", "eel", create_class=True)
    assert proj.classes == ["cat", "dog", "eel"]
    assert proj.label_of("a.png") == "eel"
    with pytest.raises(ValueError, match="label source"):
        proj.set_label("a.png", "cat", source="robot")  # type: ignore[arg-type]


def test_set_same_label_records_nothing_but_confirmation_does(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", "cat")]))
    proj.set_label("a.png", "cat")  # a person confirms the imported label
    proj.set_label("a.png", "cat")  # no-op
    assert [(e.value, e.source) for e in proj.label_history("a.png")] == [("cat", "import"), ("cat", "human")]
    assert not proj.can_undo()
    proj.add_samples(_samples(proj.folder, [("b.png", None)]))
    proj.set_label("b.png", None)  # removing a label that was never there records nothing
    assert proj.label_history("b.png") == []
    assert not proj.can_undo()


def test_undo_redo_sequence(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", None), ("b.png", "cat")]))
    a, b = proj.sample_id("a.png"), proj.sample_id("b.png")
    assert proj.undo() is None and proj.redo() is None
    proj.set_label("a.png", "cat")
    proj.set_label("a.png", "dog")
    proj.set_label("b.png", None)
    proj.set_label("a.png", "cat", source="model")  # not undoable
    assert proj.label_of(a) == "cat"

    assert proj.undo() == LabelChange(b, proj.folder / "b.png", None, "cat")
    assert proj.undo() == LabelChange(a, proj.folder / "a.png", "cat", "cat")  # restores the human 'cat'
    assert proj.undo() == LabelChange(a, proj.folder / "a.png", "cat", None)
    assert proj.undo() is None
    assert (proj.label_of(a), proj.label_of(b)) == (None, "cat")
    assert proj.redo() == LabelChange(a, proj.folder / "a.png", None, "cat")
    assert proj.redo() == LabelChange(a, proj.folder / "a.png", "cat", "dog")
    assert (proj.label_of(a), proj.label_of(b)) == ("dog", "cat")
    assert proj.can_redo()
    proj.set_label("b.png", "dog")  # a new change clears the redo stack
    assert not proj.can_redo() and proj.redo() is None
    assert proj.undo() == LabelChange(b, proj.folder / "b.png", "dog", "cat")
    history = proj.label_history(a)
    assert [(e.value, e.source, e.note) for e in history] == [
        ("cat", "human", None),
        ("dog", "human", None),
        ("cat", "model", None),
        ("cat", "human", "undo"),
        (None, "human", "undo"),
        ("cat", "human", "redo"),
        ("dog", "human", "redo"),
    ]
    assert all(x.time <= y.time for x, y in itertools.pairwise(history))


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 2), st.sampled_from([None, "a", "b", "c"])),
        st.tuples(st.just("undo")),
        st.tuples(st.just("redo")),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=_OPS)
def test_undo_redo_matches_a_simple_model(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Project.create(folder / "p", classes=["a", "b", "c"]) as project:
            project.add_samples([Sample(folder / "p" / f"{i}.png", None) for i in range(3)])
            ids = [project.sample_id(f"{i}.png") for i in range(3)]
            labels: list[str | None] = [None, None, None]
            undo: list[tuple[int, str | None, str | None]] = []
            redo: list[tuple[int, str | None, str | None]] = []
            for op in ops:
                if op[0] == "set":
                    i, value = op[1], op[2]
                    assert isinstance(i, int)
                    assert value is None or isinstance(value, str)
                    project.set_label(ids[i], value)
                    if value != labels[i]:
                        undo.append((i, labels[i], value))
                        redo.clear()
                        labels[i] = value
                elif op[0] == "undo":
                    change = project.undo()
                    if undo:
                        i, before, after = undo.pop()
                        redo.append((i, before, after))
                        assert change == LabelChange(ids[i], folder / "p" / f"{i}.png", labels[i], before)
                        labels[i] = before
                    else:
                        assert change is None
                else:
                    change = project.redo()
                    if redo:
                        i, before, after = redo.pop()
                        undo.append((i, before, after))
                        assert change == LabelChange(ids[i], folder / "p" / f"{i}.png", labels[i], after)
                        labels[i] = after
                    else:
                        assert change is None
                assert [project.label_of(x) for x in ids] == labels
                assert project.can_undo() == bool(undo)
                assert project.can_redo() == bool(redo)
            assert project.counts() == {c: labels.count(c) for c in "abc"}
            assert project.unlabeled_count() == labels.count(None)


@settings(max_examples=25, deadline=None)
@given(
    first=st.lists(st.tuples(st.integers(0, 6), st.sampled_from([None, "x", "y", "z"])), max_size=10),
    human=st.lists(st.tuples(st.integers(0, 6), st.sampled_from([None, "x", "y"])), max_size=5),
)
def test_reimport_never_changes_anything(
    first: list[tuple[int, str | None]], human: list[tuple[int, str | None]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, Project.create(Path(tmp) / "p", classes=["x", "y"]) as project:
        batch = [Sample(project.folder / f"{i}.png", label) for i, label in first]
        project.add_samples(batch)
        for i, label in human:
            if project.stored_path(f"{i}.png") in {project.stored_path(s.path) for s in batch}:
                project.set_label(f"{i}.png", label)
        before = (project.samples(), project.classes, project.counts())
        assert project.add_samples(batch) == 0
        assert (project.samples(), project.classes, project.counts()) == before


# ---------------------------------------------------------------------- classes


def test_class_management(proj: Project) -> None:
    data = proj.folder / "d"
    proj.add_samples(
        _samples(data, [("1", "cat"), ("2", "cat"), ("3", "dog"), ("4", "eel"), ("5", "fox"), ("6", None)])
    )
    assert proj.classes == ["cat", "dog", "eel", "fox"]
    proj.set_label(data / "6", "dog")
    assert proj.can_undo()

    assert proj.rename_class("cat", "kitten") == 2
    assert proj.classes == ["kitten", "dog", "eel", "fox"]
    assert proj.counts() == {"kitten": 2, "dog": 2, "eel": 1, "fox": 1}
    assert not proj.can_undo()  # class changes clear undo/redo
    assert [(e.value, e.source, e.note) for e in proj.label_history(data / "1")] == [
        ("cat", "import", None),
        ("kitten", "human", "rename"),
    ]
    proj.add_samples(_samples(data, [("1", "cat")]))  # re-import does not bring 'cat' back
    assert proj.classes == ["kitten", "dog", "eel", "fox"]
    assert proj.rename_class("kitten", "kitten") == 0
    with pytest.raises(UnusableInputError, match="merge"):
        proj.rename_class("kitten", "dog")
    with pytest.raises(UnusableInputError, match="unknown class"):
        proj.rename_class("cow", "bull")

    assert proj.merge_classes(["eel", "fox"], "water") == 2
    assert proj.classes == ["kitten", "dog", "water"]
    assert proj.counts() == {"kitten": 2, "dog": 2, "water": 2}
    assert proj.merge_classes(["kitten", "water"], "water") == 2  # into one of the sources
    assert proj.classes == ["dog", "water"]
    assert proj.counts() == {"dog": 2, "water": 4}
    with pytest.raises(UnusableInputError):
        proj.merge_classes([], "dog")

    assert proj.delete_class("dog") == 2
    assert proj.classes == ["water"]
    assert proj.counts() == {"water": 4}
    assert proj.unlabeled_count() == 2
    assert proj.label_of(data / "3") is None
    assert proj.label_history(data / "3")[-1].note == "delete"

    proj.add_class("zebra")
    proj.add_class(" yak ")
    assert proj.classes == ["water", "zebra", "yak"]
    with pytest.raises(UnusableInputError, match="already exists"):
        proj.add_class("yak")
    proj.reorder_classes(["yak", "water", "zebra"])
    assert proj.classes == ["yak", "water", "zebra"]
    for bad in (["yak", "water"], ["yak", "water", "zebra", "zebra"], ["yak", "water", "cow"]):
        with pytest.raises(UnusableInputError, match="order"):
            proj.reorder_classes(bad)
    assert proj.counts() == {"yak": 0, "water": 4, "zebra": 0}

    folder = proj.folder
    proj.close()
    with Project.open(folder) as again:
        assert again.classes == ["yak", "water", "zebra"]
        assert again.counts() == {"yak": 0, "water": 4, "zebra": 0}


# ---------------------------------------------------------------------- settings and sources


class _FakeNumpy:
    """Stands for a numpy scalar: has ``tolist``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def tolist(self) -> float:
        return self.value


def test_settings_and_sources(proj: Project) -> None:
    proj.save_settings(a=1, b={"x": [1, 2]})
    proj.save_settings(a=2)
    assert proj.settings == {"a": 2, "b": {"x": [1, 2]}}
    proj.settings["a"] = 99  # a copy
    assert proj.settings["a"] == 2
    with pytest.raises(TypeError):
        proj.save_settings(bad=object())
    assert proj.settings == {"a": 2, "b": {"x": [1, 2]}}
    proj.save_settings(last_folder=Path("/data/fish"), lr=_FakeNumpy(0.5))  # converted, not rejected
    assert proj.settings["last_folder"] == str(Path("/data/fish"))
    assert proj.settings["lr"] == 0.5
    del proj.settings["lr"]  # a copy
    proj.save_settings(lr=None)
    assert proj.settings == {"a": 2, "b": {"x": [1, 2]}, "last_folder": str(Path("/data/fish")), "lr": None}
    assert proj.add_source(proj.folder / "images") is True
    assert proj.add_source(proj.folder / "images") is False
    folder = proj.folder
    proj.close()
    with Project.open(folder) as again:
        assert again.settings == {
            "a": 2,
            "b": {"x": [1, 2]},
            "last_folder": str(Path("/data/fish")),
            "lr": None,
        }
        assert again.sources == [folder / "images"]


# ---------------------------------------------------------------------- hashes


def test_sha256_for_caches_and_recomputes(proj: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    image = proj.folder / "a.bin"
    image.write_bytes(b"hello")
    proj.add_samples([Sample(image, None)])
    calls: list[Path] = []

    def counting(path: Path | str, chunk_size: int = 1 << 20) -> str:
        calls.append(Path(path))
        return file_sha256(path, chunk_size)

    monkeypatch.setattr(project_module, "file_sha256", counting)
    expected = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert proj.sha256_for(image) == expected
    assert proj.sha256_for("a.bin") == expected
    assert len(calls) == 1  # second call served from the cache
    conn = _raw(proj)
    assert conn.execute("SELECT sha256, size FROM samples").fetchone() == (expected, 5)

    image.write_bytes(b"hello world")  # size changes
    assert proj.sha256_for(image) == file_sha256(image)
    assert len(calls) == 2
    stat = image.stat()
    image.write_bytes(b"HELLO WORLD")  # same size, new mtime
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert proj.sha256_for(image) == file_sha256(image) != expected
    assert len(calls) == 3
    assert conn.execute("SELECT sha256 FROM samples").fetchone() == (file_sha256(image),)
    conn.close()

    other = proj.folder / "not-a-sample.bin"
    other.write_bytes(b"")
    assert proj.sha256_for(other) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    with pytest.raises(UnusableInputError, match="cannot read"):
        proj.sha256_for(proj.folder / "missing.bin")


# ---------------------------------------------------------------------- runs and predictions


def test_runs_and_predictions(proj: Project) -> None:
    proj.add_samples(_samples(proj.folder, [("a.png", "cat"), ("b.png", None)]))
    run_dir = proj.runs_dir / "r1"
    proj.record_run("r1", run_dir, "resnet18", "partial", {"accuracy": 0.5})
    proj.record_run("r1", run_dir, "resnet18", "partial", {"accuracy": 0.9, "epochs": 3})  # update
    proj.record_run("r2", "/elsewhere/r2", "alexnet", "features", {"f1": _FakeNumpy(0.25)})
    runs = proj.runs()
    assert [r["id"] for r in runs] == ["r1", "r2"]
    assert runs[0]["path"] == run_dir
    assert runs[0]["metrics"] == {"accuracy": 0.9, "epochs": 3}
    assert (runs[0]["backbone"], runs[0]["strategy"]) == ("resnet18", "partial")
    assert runs[1]["path"] == Path("/elsewhere/r2").absolute()
    assert runs[1]["metrics"] == {"f1": 0.25}

    rows: list[tuple[str | Path, str, float, list[tuple[str, float]]]] = [
        (proj.folder / "b.png", "dog", 0.8, [("dog", 0.8), ("cat", 0.2)]),
        ("a.png", "cat", 0.6, [("cat", 0.6), ("dog", 0.4)]),
        (proj.folder / "unknown.png", "cat", 0.9, []),
    ]
    assert proj.add_predictions("r1", rows) == 2
    expected = [
        Prediction(proj.folder / "a.png", "cat", 0.6, [("cat", 0.6), ("dog", 0.4)]),
        Prediction(proj.folder / "b.png", "dog", 0.8, [("dog", 0.8), ("cat", 0.2)]),
    ]
    assert proj.predictions("r1") == expected
    assert proj.add_predictions("r1", [("a.png", "dog", 0.7, [("dog", 0.7)])]) == 1  # replaces
    assert proj.predictions("r1")[0] == Prediction(proj.folder / "a.png", "dog", 0.7, [("dog", 0.7)])
    assert proj.predictions("r2") == []
    with pytest.raises(UnusableInputError, match="unknown run"):
        proj.add_predictions("nope", rows)
    with pytest.raises(UnusableInputError, match="unknown run"):
        proj.predictions("nope")
    assert proj.delete_run("r1") is True
    assert proj.delete_run("r1") is False
    conn = _raw(proj)
    assert conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0
    conn.close()
    assert [r["id"] for r in proj.runs()] == ["r2"]
