"""XRD projects (labels.csv committed at once, undo/redo, import with reasons) and the XRD demo project."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from conftest import write_library, write_xy  # tests/conftest.py: shared with other folders
from labeltune.core import demos
from labeltune.core.xrd import xrd_project
from labeltune.core.xrd.demo import shipped_model, write_xrd_demo
from labeltune.core.xrd.xrd_project import (
    LABELS_FILE,
    PROJECT_FILE,
    UNDO_LIMIT,
    XrdLabel,
    XrdLabelChange,
    XrdProject,
    XrdProjectError,
    is_xrd_project,
    xrd_run_problem,
)

SHARED_PATTERNS = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "li_mn_ti_o_f" / "patterns"
)


def read_rows(project: XrdProject) -> list[dict[str, str]]:
    with (project.folder / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def project(tmp_path: Path) -> XrdProject:
    library = write_library(tmp_path / "lib")
    project = XrdProject.create(tmp_path / "proj", "Test", library)
    added, skipped = project.import_patterns(
        [write_xy(tmp_path / "in" / f"p{i}.xy", 20 + 5 * i) for i in range(3)]
    )
    assert len(added) == 3 and not skipped
    return project


# ------------------------------------------------------------------------------------ files


def test_create_writes_the_documented_files(tmp_path: Path) -> None:
    library = write_library(tmp_path / "proj" / "library")  # inside the project: stored relative
    project = XrdProject.create(tmp_path / "proj", "Oxides", library, model_dir=tmp_path / "run")
    meta = json.loads((tmp_path / "proj" / PROJECT_FILE).read_text())
    assert meta == {
        "version": 1,
        "kind": "xrd",
        "name": "Oxides",
        "library": "library",
        "model": str(tmp_path / "run"),
        "wavelength": 1.5406,
        "wavelength_confirmed": False,
    }
    assert (tmp_path / "proj" / LABELS_FILE).read_text() == "path,phases,fractions\n"
    assert (tmp_path / "proj" / "patterns").is_dir()
    assert is_xrd_project(tmp_path / "proj") and not is_xrd_project(tmp_path)
    assert project.library().names == ["A_1", "B_2"]
    with pytest.raises(XrdProjectError, match="already holds"):
        XrdProject.create(tmp_path / "proj", "Again", library)


def test_create_refuses_a_folder_that_is_not_a_library(tmp_path: Path) -> None:
    with pytest.raises(XrdProjectError, match="not a peak library"):
        XrdProject.create(tmp_path / "proj", "X", tmp_path)
    with pytest.raises(XrdProjectError, match="wavelength"):
        XrdProject.create(tmp_path / "proj2", "X", write_library(tmp_path / "lib"), wavelength=42.0)


def test_open_refuses_foreign_and_damaged_folders(tmp_path: Path) -> None:
    with pytest.raises(XrdProjectError, match="not an XRD project"):
        XrdProject.open(tmp_path)
    (tmp_path / PROJECT_FILE).write_text("{not json")
    with pytest.raises(XrdProjectError, match="cannot be read"):
        XrdProject.open(tmp_path)
    (tmp_path / PROJECT_FILE).write_text(json.dumps({"version": 7, "kind": "xrd", "library": "x"}))
    with pytest.raises(XrdProjectError, match="unsupported version 7"):
        XrdProject.open(tmp_path)


# ------------------------------------------------------------------------------------ labels


def test_every_label_change_is_in_labels_csv_at_once(project: XrdProject) -> None:
    first, second, _third = project.patterns()
    project.set_label(first, ["A_1", "B_2"])
    assert read_rows(project) == [{"path": "patterns/p0.xy", "phases": "A_1;B_2", "fractions": ""}]
    project.set_label(second, ["TiO2"], [1.0])  # a plain formula is kept as given
    project.set_label(first, ["A_1", "B_2"], [0.6, 0.4])
    assert read_rows(project) == [
        {"path": "patterns/p0.xy", "phases": "A_1;B_2", "fractions": "0.6;0.4"},
        {"path": "patterns/p1.xy", "phases": "TiO2", "fractions": "1"},
    ]
    project.set_label(second, [])  # unlabeled: no row
    assert [row["path"] for row in read_rows(project)] == ["patterns/p0.xy"]
    assert not list(project.folder.glob(".*.tmp"))  # the atomic write cleaned up
    reopened = XrdProject.open(project.folder)
    assert reopened.labels(first) == XrdLabel(("A_1", "B_2"), (0.6, 0.4))
    assert reopened.labels("patterns/p1.xy") == XrdLabel()
    assert reopened.labeled_count() == 1


def test_bad_labels_are_refused_and_nothing_is_written(project: XrdProject) -> None:
    path = project.patterns()[0]
    project.set_label(path, ["A_1"])
    before = (project.folder / LABELS_FILE).read_text()
    for phases, fractions, message in (
        (["A_1", "B_2"], [1.0], "2 phases"),
        (["A_1"], [1.5], "between 0 and 1"),
        (["A;B"], None, "may not contain"),
    ):
        with pytest.raises(XrdProjectError, match=message):
            project.set_label(path, phases, fractions)
    assert (project.folder / LABELS_FILE).read_text() == before
    assert project.labels(path) == XrdLabel(("A_1",))


def touched(change: XrdLabelChange | None) -> Path | None:
    """The pattern an undo or redo touched (what undo/redo returned before they returned the change)."""
    return None if change is None else change.path


def test_undo_and_redo_walk_the_changes_and_rewrite_the_file(project: XrdProject) -> None:
    first, second, _ = project.patterns()
    project.set_label(first, ["A_1"])
    project.set_label(second, ["B_2"])
    project.set_label(first, ["A_1", "B_2"])
    assert touched(project.undo()) == first
    assert XrdProject.open(project.folder).labels(first).phases == ("A_1",)  # on disk, not only in memory
    assert touched(project.undo()) == second
    assert project.labels(second) == XrdLabel()
    assert touched(project.redo()) == second
    assert project.labels(second).phases == ("B_2",)
    project.set_label(second, ["A_1"])  # a new change clears what could be redone
    assert project.redo() is None and project.can_undo()
    while project.undo() is not None:
        pass
    assert read_rows(project) == [] and project.labeled_count() == 0


def test_undo_history_is_bounded(project: XrdProject, monkeypatch: pytest.MonkeyPatch) -> None:
    assert UNDO_LIMIT >= 100
    monkeypatch.setattr(xrd_project, "UNDO_LIMIT", 5)
    project = XrdProject.open(project.folder)
    path = project.patterns()[0]
    for i in range(9):
        project.set_label(path, ["A_1"] if i % 2 else ["B_2"])
    undone = 0
    while project.undo() is not None:
        undone += 1
    assert undone == 5
    assert project.labels(path).phases == ("A_1",)  # the state after the 4th change, not the original


# ------------------------------------------------------------------------------------ import and read


def test_import_copies_checks_and_reports_bad_files(project: XrdProject, tmp_path: Path) -> None:
    source = tmp_path / "more"
    good = write_xy(source / "p0.xy", 55.0)  # same name as a project file, other content
    (source / "short.xy").write_text("10 1\n11 2\n")
    (source / "notes.docx").write_bytes(b"PK\x03\x04")
    twin = shutil.copy(project.patterns()[1], source / "twin.xy")
    added, skipped = project.import_patterns([good, source / "short.xy", source / "notes.docx", twin])
    assert [p.name for p in added] == ["p0_2.xy"]
    assert added[0].read_bytes() == good.read_bytes() and good.exists()  # copied, not moved
    reasons = {Path(path).name: reason for path, reason in skipped}
    assert set(reasons) == {"short.xy", "notes.docx", "twin.xy"}
    assert "only 2 data points" in reasons["short.xy"]
    assert "not a pattern file type" in reasons["notes.docx"]
    assert reasons["twin.xy"] == "already in the project as p1.xy"
    assert [p.name for p in project.patterns()] == ["p0.xy", "p0_2.xy", "p1.xy", "p2.xy"]


def test_import_of_a_folder_takes_its_pattern_files(project: XrdProject, tmp_path: Path) -> None:
    write_xy(tmp_path / "batch" / "a.xy", 33.0)
    write_xy(tmp_path / "batch" / "sub" / "b.xy", 44.0)
    (tmp_path / "batch" / "readme.md").write_text("hello")
    reports: list[int] = []
    added, skipped = project.import_patterns([tmp_path / "batch"], progress=lambda p: reports.append(p.done))
    assert sorted(p.name for p in added) == ["a.xy", "b.xy"] and not skipped
    assert reports[-1] == 2


def test_read_fills_in_the_project_wavelength_only_where_the_file_is_silent(
    project: XrdProject, tmp_path: Path
) -> None:
    silent = project.read(project.patterns()[0])
    assert silent.wavelength == pytest.approx(1.5406) and silent.wavelength_source == "setting"
    project.set_wavelength(1.78897)
    assert XrdProject.open(project.folder).wavelength_confirmed
    assert project.read(project.patterns()[0]).wavelength == pytest.approx(1.78897)
    rruff = tmp_path / "rruff.txt"
    rruff.write_text(
        "##NAMES=Test\n##X-RAY WAVELENGTH=0.7093\n"
        + "".join(f"{10 + i * 0.5:.2f}, {100 + (i % 7) * 10}\n" for i in range(60)),
        encoding="utf-8",
    )
    added, _ = project.import_patterns([rruff])
    stated = project.read(added[0])
    assert stated.wavelength == pytest.approx(0.7093) and stated.wavelength_source == "file"


def test_model_setting_and_run_check(project: XrdProject, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert "no config.json" in str(xrd_run_problem(run))
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"domain": "image"}))
    assert "image model" in str(xrd_run_problem(run))
    (run / "config.json").write_text(json.dumps({"domain": "xrd"}))
    assert "model.safetensors" in str(xrd_run_problem(run))
    (run / "model.safetensors").write_bytes(b"x")
    assert xrd_run_problem(run) is None
    project.set_model(run)
    assert XrdProject.open(project.folder).model_dir == run
    project.set_model(None)
    assert XrdProject.open(project.folder).model_dir is None


# ------------------------------------------------------------------------------------ demo


def test_xrd_demo_is_registered_with_its_shipped_files() -> None:
    spec = demos.get_demo("xrd")
    assert spec.domain == "xrd" and spec.title == "XRD phases"
    items = demos.demo_items("xrd")
    assert len(items) == 8
    assert {item.label for item in items} >= {"Mn2O3;LiF", "Li2MnO3;MnO;TiO2", "TiO2"}
    assert demos.demo_counts("xrd")["MnO"] == 3  # counted per phase
    credits = " ".join(demos.demo_credits("xrd").split())
    assert "njszym/XRD-AutoAnalyzer" in credits and "bf32082" in credits
    assert "doi:10.1021/acs.chemmater.1c01071" in credits and "MIT" in credits
    if SHARED_PATTERNS.is_dir():  # unchanged copies of the measured files
        from importlib import resources

        root = resources.files("labeltune").joinpath("resources", "demos", "xrd", "patterns")
        for original in SHARED_PATTERNS.glob("*.xy"):
            assert root.joinpath(original.name).read_bytes() == original.read_bytes()


def test_write_xrd_demo_makes_a_labeled_project(tmp_path: Path) -> None:
    folder = demos.write_demo("xrd", tmp_path / "demo")
    assert is_xrd_project(folder)
    project = XrdProject.open(folder)
    assert project.name == "XRD phases" and project.wavelength_confirmed
    assert project.model_dir == shipped_model()  # None until the app ships its model
    assert len(project.patterns()) == 8 and project.labeled_count() == 8
    rows = {row["path"]: row["phases"] for row in read_rows(project)}
    assert len(rows) == 8
    assert rows["patterns/Mn2O3+LiF.xy"] == "Mn2O3;LiF"
    assert rows["patterns/Li2MnO3+MnO+TiO2.xy"] == "Li2MnO3;MnO;TiO2"
    library = project.library()
    assert len(library.phases) == 56 and "Mn2O3_206" in library.names
    assert all(not Path(p.source).is_absolute() for p in library.phases)
    assert (folder / "CREDITS.txt").is_file() and (folder / "LICENSE.MIT.txt").is_file()
    pattern = project.read(project.patterns()[0])
    assert len(pattern) == 9001 and pattern.wavelength == pytest.approx(1.5406)
    moved = XrdProject.open(shutil.move(folder, tmp_path / "moved"))  # relative paths: it still works
    assert moved.library().names == library.names and moved.labeled_count() == 8
    assert not list(tmp_path.glob(".*partial"))


def test_the_training_reader_accepts_a_project_folder(project: XrdProject) -> None:
    training = pytest.importorskip("labeltune.core.xrd.measured")
    first, second, _ = project.patterns()
    project.set_label(first, ["A_1", "B_2"], [0.25, 0.75])
    project.set_label(second, ["BO2"])
    rows = training.read_labels_csv(project.folder)
    assert [(Path(p), tokens, fractions) for p, tokens, fractions in rows] == [
        (first, ["A_1", "B_2"], [0.25, 0.75]),
        (second, ["BO2"], None),
    ]


def test_identifications_are_kept_for_the_same_model(tmp_path: Path) -> None:
    from labeltune.core.xrd.results import PhaseCall, UnexplainedPeak, XrdPrediction

    folder = write_xrd_demo(tmp_path / "demo")
    project = XrdProject.open(folder)
    project.set_model(tmp_path / "model-a")
    pattern = project.patterns()[0]
    call = PhaseCall("MnO_225", "MnO", 0.97, fraction=0.6, fraction_network=0.55, lattice_scale=1.001)
    prediction = XrdPrediction(
        str(pattern), [call], [PhaseCall("TiO2_141", "TiO2", 0.02)], [UnexplainedPeak(18.2, 4.87, 0.06)],
        ["strong peaks at 2θ 18.2°"], residual=0.05, zero_shift=0.01,
    )  # fmt: skip
    project.save_predictions([prediction])
    again = XrdProject.open(folder).load_predictions()
    (key,) = again
    assert key == project.key(pattern)
    loaded = again[key]
    assert loaded.path == str(pattern) and loaded.phases[0] == call
    assert loaded.unexplained_peaks[0].two_theta == pytest.approx(18.2) and loaded.residual == pytest.approx(
        0.05
    )
    project.set_model(tmp_path / "model-b")  # another model: its own identifications only
    assert XrdProject.open(folder).load_predictions() == {}
    (folder / "predictions.json").write_text("{not json")
    project.set_model(tmp_path / "model-a")
    assert project.load_predictions() == {}
