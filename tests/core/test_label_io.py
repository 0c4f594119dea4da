"""Labels in and out (core/label_io.py, cli_labels.py): CSV and class folders, both kinds of project."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_xrd_project import write_library, write_xy  # tests/core is on sys.path (no __init__.py)

from labeltune import cli
from labeltune.core.datasets import Sample
from labeltune.core.errors import UnusableInputError
from labeltune.core.label_io import export_csv, import_labels, read_label_csv
from labeltune.core.label_targets import label_target
from labeltune.core.project import Project
from labeltune.core.xrd.xrd_project import XrdLabel, XrdProject


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def write_images(folder: Path, count: int = 6) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        pixels = np.full((8, 8, 3), 10 * i, dtype=np.uint8)
        paths.append(folder / f"img {i}.png")  # a space: the CSV must quote nothing wrongly
        Image.fromarray(pixels).save(paths[-1])
    return paths


def image_project(folder: Path, files: list[Path], labels: dict[int, str | None] | None = None) -> Project:
    project = Project.create(folder, classes=["cat", "dog"])
    labels = labels or {}
    project.add_samples([Sample(p, labels.get(i)) for i, p in enumerate(files)])
    return project


def current(project: Project) -> dict[str, str | None]:
    return {Path(path).name: label for _id, path, label in project.rows()}


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    return write_images(tmp_path / "data")


@pytest.fixture
def xrd(tmp_path: Path) -> Callable[[str], XrdProject]:
    """Makes an XRD project ``tmp_path/<name>`` holding copies of the same three patterns."""
    library = write_library(tmp_path / "lib")
    files = [write_xy(tmp_path / "in" / f"p{i}.xy", 20 + 5 * i) for i in range(3)]

    def make(name: str) -> XrdProject:
        project = XrdProject.create(tmp_path / name, name, library)
        assert len(project.import_patterns(files)[0]) == 3
        return project

    return make


# -- images -------------------------------------------------------------------------------------------
def test_image_round_trip_into_a_fresh_project_gives_identical_labels(
    tmp_path: Path, images: list[Path]
) -> None:
    with image_project(tmp_path / "a", images, {0: "cat", 1: "dog", 3: "cat"}) as first:
        first.set_label(first.sample_id(images[4]), "bird", create_class=True)
        first.set_label(first.sample_id(images[3]), "dog", source="model")
        assert export_csv(label_target(first), tmp_path / "out" / "labels.csv") == 4
        expected = current(first)
    with image_project(tmp_path / "b", images) as second:
        rows = read_label_csv(tmp_path / "out" / "labels.csv")
        report = import_labels(label_target(second), rows, [tmp_path / "out"], allow_new=True)
        assert current(second) == expected
        assert (report.changed, report.unchanged, report.unmatched) == (4, 0, [])
        assert second.label_history(images[3])[-1].source == "model"  # the source column is kept
        assert second.label_history(images[0])[-1].source == "import"


def test_csv_with_bom_quotes_and_columns_in_any_order(tmp_path: Path, images: list[Path]) -> None:
    csv_file = tmp_path / "data" / "labels.csv"
    csv_file.write_text(
        '\ufeffLabel,"Path"\n"dog","img 0.png"\ncat,"' + str(images[1]) + '"\n,img 2.png\n', encoding="utf-8"
    )
    with image_project(tmp_path / "p", images, {2: "cat"}) as project:
        report = import_labels(label_target(project), read_label_csv(csv_file), [csv_file.parent])
        assert current(project)["img 0.png"] == "dog"
        assert current(project)["img 1.png"] == "cat"
        assert current(project)["img 2.png"] is None  # an empty label clears
        assert report.changed == 3


def test_a_csv_without_a_label_column_is_refused(tmp_path: Path, images: list[Path]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("path,colour\na.png,red\n", encoding="utf-8")
    with pytest.raises(UnusableInputError, match="'label'"):
        read_label_csv(bad)
    image_project(tmp_path / "p", images).close()
    code, _out, err = run_cli("labels", "import", str(tmp_path / "p"), str(bad))
    assert code == 2 and "'label'" in err and err.count("\n") == 1


def test_unknown_classes_and_unmatched_rows_are_reported_not_fatal(
    tmp_path: Path, images: list[Path]
) -> None:
    csv_file = tmp_path / "data" / "labels.csv"
    csv_file.write_text("path,label\nimg 0.png,horse\nimg 1.png,horse\nnope.png,cat\nimg 5.png,dog\n")
    with image_project(tmp_path / "p", images) as project:
        pass
    code, out, _err = run_cli("labels", "import", str(tmp_path / "p"), str(csv_file), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["unknown_classes"] == {"horse": 2}
    assert summary["unmatched"] == ["nope.png"]
    assert summary["changed"] == 1
    with Project.open(tmp_path / "p") as project:
        assert current(project)["img 5.png"] == "dog" and "horse" not in project.classes


def test_label_then_export_shows_it_with_source_human(tmp_path: Path, images: list[Path]) -> None:
    with image_project(tmp_path / "p", images) as project:
        stored = project.stored_path(images[2])
    code, out, _ = run_cli("label", str(tmp_path / "p"), str(images[1]), stored, "--as", "dog", "--json")
    assert code == 0 and json.loads(out)["changed"] == 2
    code, _out, err = run_cli("label", str(tmp_path / "p"), str(images[1]), "--as", "horse")
    assert code == 2 and "horse" in err and "--new-class" in err and err.count("\n") == 1
    code, _out, err = run_cli("label", str(tmp_path / "p"), str(tmp_path / "nope.png"), "--as", "dog")
    assert code == 2 and "nope.png" in err
    assert run_cli("label", str(tmp_path / "p"), str(images[3]), "--as", "horse", "--new-class")[0] == 0
    assert run_cli("labels", "export", str(tmp_path / "p"), str(tmp_path / "out.csv"))[0] == 0
    lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "path,label,source"
    expected = [f"data/img {i}.png,{name},human" for i, name in ((1, "dog"), (2, "dog"), (3, "horse"))]
    assert lines[1:] == expected  # relative to the CSV: it travels with the data
    with Project.open(tmp_path / "p") as project:
        history = project.label_history(images[1])
        assert [(e.value, e.source) for e in history] == [("dog", "human")]
        assert project.classes == ["cat", "dog", "horse"]
    assert run_cli("label", str(tmp_path / "p"), str(images[1]), "--clear")[0] == 0
    with Project.open(tmp_path / "p") as project:
        assert [(e.value, e.source) for e in project.label_history(images[1])][-1] == (None, "human")


def test_class_folders_out_and_back_in_by_content(tmp_path: Path, images: list[Path]) -> None:
    with image_project(tmp_path / "a", images, {0: "cat", 1: "dog", 2: "dog"}) as first:
        expected = current(first)
    code, out, _ = run_cli(
        "labels", "export", str(tmp_path / "a"), "--folders", str(tmp_path / "tree"), "--json"
    )
    assert code == 0 and json.loads(out)["labels"] == 3
    assert sorted(p.name for p in (tmp_path / "tree" / "dog").iterdir()) == ["img 1.png", "img 2.png"]
    with image_project(tmp_path / "b", images):
        pass
    code, out, _ = run_cli("labels", "import", str(tmp_path / "b"), str(tmp_path / "tree"), "--json")
    summary: dict[str, Any] = json.loads(out)
    assert code == 0 and summary["matched_by_content"] == 3 and summary["changed"] == 3
    with Project.open(tmp_path / "b") as second:
        assert current(second) == expected


# -- XRD ----------------------------------------------------------------------------------------------
def test_xrd_round_trip_into_a_fresh_project_gives_identical_labels(
    tmp_path: Path, xrd: Callable[[str], XrdProject]
) -> None:
    first = xrd("a")
    patterns = first.patterns()
    first.set_label(patterns[0], ["A_1", "B_2"], [0.25, 0.75])
    first.set_label(patterns[2], ["B_2"])
    assert run_cli("labels", "export", str(first.folder), str(tmp_path / "x.csv"))[0] == 0
    header = (tmp_path / "x.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "path,phases,fractions,source"
    second = xrd("b")
    code, out, _ = run_cli("labels", "import", str(second.folder), str(tmp_path / "x.csv"), "--json")
    assert code == 0 and json.loads(out)["changed"] == 2
    reopened = XrdProject.open(second.folder)
    assert [reopened.labels(p) for p in reopened.patterns()] == [
        XrdLabel(("A_1", "B_2"), (0.25, 0.75)),
        XrdLabel(),
        XrdLabel(("B_2",)),
    ]
    assert reopened.label_history(reopened.patterns()[0])[-1].source == "human"  # kept from the file


def test_xrd_label_from_the_cli_checks_phases_against_the_library(
    tmp_path: Path, xrd: Callable[[str], XrdProject]
) -> None:
    project = xrd("p")
    folder = str(project.folder)
    assert run_cli("label", folder, "patterns/p1.xy", "--as", "A_1;B_2")[0] == 0
    assert (
        run_cli("label", folder, "patterns/p2.xy", "--as", "BO2")[0] == 0
    )  # B_2's formula: composition only
    code, _out, err = run_cli("label", folder, "patterns/p0.xy", "--as", "A_1;Zr9")
    assert code == 2 and "Zr9" in err
    reopened = XrdProject.open(folder)
    assert reopened.labels("patterns/p1.xy") == XrdLabel(("A_1", "B_2"))
    assert not reopened.labels("patterns/p0.xy").is_labeled
    assert reopened.labels("patterns/p2.xy") == XrdLabel(("BO2",))
    assert [(e.value.phases, e.source) for e in reopened.label_history("patterns/p1.xy")] == [
        (("A_1", "B_2"), "human")
    ]


def test_xrd_labels_csv_from_elsewhere_with_unknown_phases_listed(
    tmp_path: Path, xrd: Callable[[str], XrdProject]
) -> None:
    project = xrd("p")
    labels = tmp_path / "in" / "labels.csv"  # the labels.csv format, next to the original files
    labels.write_text("path,phases,fractions\np0.xy,A_1,\np1.xy,Q_7;A_1,\np2.xy,B_2,2;3\n", encoding="utf-8")
    code, out, _ = run_cli("labels", "import", str(project.folder), str(labels), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["changed"] == 1 and summary["unknown_classes"] == {"Q_7": 1}
    assert len(summary["problems"]) == 1 and "p2.xy" in summary["problems"][0]  # fractions above 1
    reopened = XrdProject.open(project.folder)
    assert reopened.labels("patterns/p0.xy") == XrdLabel(("A_1",))
    assert reopened.label_history("patterns/p0.xy")[-1].source == "import"
    assert not reopened.can_undo()


def test_a_linked_class_folder_tree_matches_by_path(tmp_path: Path, images: list[Path]) -> None:
    image_project(tmp_path / "a", images, {0: "cat", 4: "dog"}).close()
    assert (
        run_cli("labels", "export", str(tmp_path / "a"), "--folders", str(tmp_path / "t"), "--link")[0] == 0
    )
    assert (tmp_path / "t" / "dog" / "img 4.png").resolve() == images[4]
    (tmp_path / "t" / "cat" / "img 0.png").rename(tmp_path / "t" / "dog" / "img 0.png")  # moved: now a dog
    code, out, _ = run_cli("labels", "import", str(tmp_path / "a"), str(tmp_path / "t"), "--json")
    summary = json.loads(out)
    assert code == 0 and (summary["changed"], summary["unchanged"], summary["matched_by_content"]) == (
        1,
        1,
        0,
    )
    with Project.open(tmp_path / "a") as project:
        assert project.label_of(images[0]) == "dog"


def test_a_csv_given_by_a_relative_path_matches_by_path(
    tmp_path: Path, xrd: Callable[[str], XrdProject], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = xrd("p")
    project.set_label("patterns/p0.xy", ["A_1"])
    monkeypatch.chdir(tmp_path)
    assert run_cli("labels", "export", "p", "out.csv")[0] == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[1] == "p/patterns/p0.xy,A_1,,human"
    code, out, _ = run_cli("labels", "import", "p", "out.csv", "--json")
    assert code == 0 and json.loads(out)["matched_by_content"] == 0 and json.loads(out)["unchanged"] == 1


def test_labeling_several_paths_is_one_step_for_both_kinds(
    tmp_path: Path, images: list[Path], xrd: Callable[[str], XrdProject]
) -> None:
    from labeltune.core.label_io import label_paths

    with image_project(tmp_path / "p", images, {0: "cat"}) as project:
        paths = [str(images[0]), str(images[1]), str(images[2])]
        assert label_paths(label_target(project), paths, "dog", [tmp_path]) == 3
        assert [project.label_of(project.stored_path(p)) for p in paths] == ["dog"] * 3
        project.undo()  # one step gives each its own label back
        assert [project.label_of(project.stored_path(p)) for p in paths] == ["cat", None, None]
        assert not project.can_undo()
    patterns = xrd("x")
    keys = ["patterns/p0.xy", "patterns/p1.xy"]
    assert label_paths(label_target(patterns), keys, "A_1", [patterns.folder]) == 2
    assert [patterns.labels(k) for k in keys] == [XrdLabel(("A_1",))] * 2
    patterns.undo()
    assert not any(patterns.labels(k).is_labeled for k in keys) and not patterns.can_undo()
