"""Projects, run folders and labels.csv cannot make the app read or write outside the chosen folders.

The rule (ADR 0043, core/untrusted.py): an image project reads a sample file only inside its folder or
under a folder this user imported on this computer; a class name becomes one folder name; an XRD project
reads its own patterns only.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from planted import one_line, trained_project

from conftest import write_class_folder  # tests/conftest.py
from labeltune import cli
from labeltune.core.datasets import scan
from labeltune.core.errors import UnusableInputError
from labeltune.core.inference import sort_into
from labeltune.core.project import DB_FILE, Project
from labeltune.core.settings import Settings
from labeltune.core.untrusted import ROOTS_FILE, folder_name


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir of this test's own: the folders 'imported on this computer' start empty."""
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "user-data"))
    return tmp_path / "user-data"


def imported_project(tmp_path: Path) -> tuple[Path, Path]:
    """A project in ``tmp_path/project`` whose images lie outside it, imported as the app does."""
    data = write_class_folder(tmp_path / "data", classes=2, per_class=3, size=16)
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        found = scan(data)
        project.add_source(found.root)
        project.add_samples(found.samples)
    return folder, data


def plant_rows(folder: Path, *paths: str) -> None:
    """Add sample rows as a project edited elsewhere (by hand or by a tool) could hold them."""
    with sqlite3.connect(folder / DB_FILE) as conn:
        conn.executemany("INSERT INTO samples (path, added) VALUES (?, 0)", [(p,) for p in paths])


def test_a_project_whose_rows_point_outside_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder, _ = imported_project(tmp_path)
    elsewhere = write_class_folder(tmp_path / "private", classes=1, per_class=1, size=16) / "class0"
    for row in ("/etc/passwd", "../../private/class0/img000.png", str(elsewhere / "img000.png")):
        copy = Path(shutil.copytree(folder, tmp_path / f"mailed-{len(row)}"))
        plant_rows(copy, row)
        with pytest.raises(UnusableInputError) as info:
            Project.open(copy)
        message = str(info.value)
        assert str(copy / DB_FILE) in message and row in message and "1 sample file outside" in message
        out = tmp_path / f"run-{len(row)}"
        assert cli.main(["train", str(copy), "--out", str(out), "--epochs", "1"]) == 2
        assert row in one_line(capsys.readouterr().err)
        assert not out.exists()


def test_imported_data_outside_the_project_still_opens(tmp_path: Path) -> None:
    folder, data = imported_project(tmp_path)
    with Project.open(folder) as project:
        assert project.sample_count() == 6
    moved = Path(shutil.copytree(folder, tmp_path / "copy-of-project"))  # rows are absolute: still ok
    with Project.open(moved) as project:
        assert [s.path.parent.parent for s in project.samples()] == [data] * 6
    csv_imported = tmp_path / "csv-project"  # files added without a recorded source (a CSV's list)
    with Project.create(csv_imported) as project:
        project.add_samples(scan(write_class_folder(tmp_path / "listed", classes=2, per_class=2)).samples)
    with Project.open(csv_imported) as project:
        assert project.sample_count() == 4


def test_projects_opened_here_before_the_rule_still_open(tmp_path: Path, own_data_dir: Path) -> None:
    folder, _ = imported_project(tmp_path)
    (own_data_dir / ROOTS_FILE).unlink()  # as after an update: nothing recorded yet
    with pytest.raises(UnusableInputError, match="6 sample files outside"):
        Project.open(folder)
    settings = Settings.load()
    settings.add_recent(folder)  # the user opened it in the app before
    settings.save()
    with Project.open(folder) as project:
        assert project.sample_count() == 6
    plant_rows(folder, "/etc/passwd")  # its own sources are trusted, not everything
    with pytest.raises(UnusableInputError, match="/etc/passwd"):
        Project.open(folder)


def test_the_app_asks_before_reading_files_outside_and_opens_only_on_yes(
    qtbot, tmp_path: Path, own_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    from labeltune.ui.main_window import MainWindow

    folder, data = imported_project(tmp_path)
    (own_data_dir / ROOTS_FILE).unlink()  # as if it came by e-mail from another computer
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]

    def question(_parent: object, _title: str, text: str, *_args: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.open_project(folder)
    assert len(asked) == 1 and str(data) in asked[0] and "6 image files" in asked[0]
    assert "Trust these folders and open the project?" in asked[0]  # a question for Yes and Cancel
    assert "Cancel opens nothing and changes nothing" in asked[0]
    assert window.session.current_project is None  # Cancel: nothing read
    assert str(folder.resolve()) not in Settings.load().recent_projects
    answer[0] = QMessageBox.StandardButton.Yes
    window.open_project(folder)
    assert window.session.current_project is not None and len(asked) == 2
    assert json.loads((own_data_dir / ROOTS_FILE).read_text())["folders"] == [str(data)]
    plant_rows(folder, "/etc/passwd")  # trusting its data folder is not trusting everything
    with pytest.raises(UnusableInputError, match="/etc/passwd"):
        Project.open(folder)


def test_project_trust_on_the_command_line_lists_what_it_trusts(
    tmp_path: Path, own_data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    folder, data = imported_project(tmp_path)
    (own_data_dir / ROOTS_FILE).unlink()
    assert cli.main(["label", str(folder), str(data / "class0" / "img000.png"), "--as", "class1"]) == 2
    assert f"labeltune project trust {folder}" in one_line(capsys.readouterr().err)
    assert cli.main(["project", "trust", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trusted"] == [str(data)]
    assert cli.main(["label", str(folder), str(data / "class0" / "img000.png"), "--as", "class1"]) == 0
    assert cli.main(["project", "trust", str(folder)]) == 0
    assert "nothing outside its folder to trust" in capsys.readouterr().out


class _Answer:
    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label, self.confidence, self.unfamiliar = path, label, 0.9, False


@pytest.mark.parametrize(
    "label", ["../../escaped", "{tmp}/escaped-abs", "..", "a/../../b", "C:\\x\\..\\..\\y"]
)
def test_sorting_into_class_folders_stays_in_the_output_folder(tmp_path: Path, label: str) -> None:
    label = label.format(tmp=tmp_path)
    image = write_class_folder(tmp_path / "in", classes=1, per_class=1) / "class0" / "img000.png"
    out = tmp_path / "deep" / "out"
    counts = sort_into([_Answer(image, label)], out)
    written = [p for p in tmp_path.rglob("*.png") if p != image]
    assert len(written) == 1 and written[0].parent.parent == out, written
    assert counts == {folder_name(label): 1} and "/" not in folder_name(label)
    assert not (tmp_path / "escaped-abs").exists()


def test_a_run_with_path_like_class_names_sorts_inside(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture
) -> None:
    project, trained = trained_project(tmp_path_factory.getbasetemp())
    data = project.parent / "data"
    run = Path(shutil.copytree(trained, tmp_path / "deep" / "run"))
    text = (run / "config.json").read_text(encoding="utf-8")  # a run folder edited by someone else
    names = {"class0": "../../escaped", "class1": str(tmp_path / "escaped-abs"), "class2": "..\\..\\win"}
    for old, new in names.items():
        text = text.replace(f'"{old}"', json.dumps(new))
    (run / "config.json").write_text(text, encoding="utf-8")
    out = tmp_path / "deep" / "sorted"
    assert cli.main(["predict", str(run), str(data), "--sort-into", str(out)]) == 0
    capsys.readouterr()
    copies = [p for p in tmp_path.rglob("*.png")]
    assert len(copies) == 48 and all(p.parent.parent == out for p in copies), copies
    folders = {p.parent.name for p in copies}
    assert folders - {"unfamiliar", "uncertain"}  # some went to a class folder
    assert folders <= {"unfamiliar", "uncertain", *(folder_name(n) for n in names.values())}
    assert not (tmp_path / "escaped-abs").exists() and not (tmp_path / "escaped").exists()


def test_an_xrd_project_reads_its_own_patterns_only(tmp_path: Path) -> None:
    from labeltune.core.xrd.demo import write_xrd_demo
    from labeltune.core.xrd.measured import read_labels_csv
    from labeltune.core.xrd.xrd_project import XrdProject

    folder = write_xrd_demo(tmp_path / "xrd")
    secret = tmp_path / "secret.xy"
    secret.write_text("10 1\n20 2\n30 3\n", encoding="utf-8")
    project = XrdProject.open(folder)
    count = len(project.patterns())
    (project.patterns_dir / "link.xy").symlink_to(secret)  # a symlink out, as a zip can carry
    assert len(project.patterns()) == count and all(p.name != "link.xy" for p in project.patterns())
    (project.patterns_dir / "link.xy").unlink()
    assert len(read_labels_csv(folder)) > 0
    labels = project.labels_file.read_text(encoding="utf-8")
    for row in ("../secret.xy", str(secret)):
        project.labels_file.write_text(labels + f"{row},MnO,\n", encoding="utf-8")
        with pytest.raises(UnusableInputError, match="outside the project folder") as info:
            read_labels_csv(folder)
        assert "labels.csv" in str(info.value) and row in str(info.value)
        assert secret not in XrdProject.open(folder).patterns()  # inert in the app: it lists patterns/ only


def test_a_symlinked_model_file_is_followed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture
) -> None:
    """ADR 0043: a run folder may link its model elsewhere (reading safetensors cannot run code)."""
    project, trained = trained_project(tmp_path_factory.getbasetemp())
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").symlink_to(trained / "model.safetensors")
    image = project.parent / "data" / "class1" / "img000.png"
    assert cli.main(["predict", str(run), str(image), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in {"class0", "class1", "class2"}
