"""One session for both kinds of project: it opens either, the window shows it on its domain's page and
undoes, imports, closes and unlocks it without asking which kind it is (issue 11)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import drop_paths  # tests/conftest.py

pytest.importorskip("pytestqt")

from labeltune.core.project import Project
from labeltune.core.project_lock import LOCK_FILE, read_lock
from labeltune.core.settings import Settings
from labeltune.core.xrd.demo import write_xrd_demo
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.main_window import MainWindow
from labeltune.ui.session import ProjectSession
from labeltune.ui.xrd_page import XrdPage

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def xrd_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_xrd_demo(tmp_path_factory.mktemp("xrd") / "demo")
    XrdProject.open(folder).set_model(None)
    return folder


@pytest.fixture
def xrd_folder(xrd_source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(xrd_source, tmp_path / "xrd"))


@pytest.fixture
def image_folder_project(tmp_path: Path) -> Path:
    Project.create(tmp_path / "images", name="Leaves", classes=["a", "b"]).close()
    return tmp_path / "images"


@pytest.fixture
def window(qtbot) -> MainWindow:
    widget = MainWindow(Settings(epochs=7))
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_the_session_opens_either_kind_and_announces_both(
    qtbot, xrd_folder: Path, image_folder_project: Path
) -> None:
    session = ProjectSession(Settings())
    events: list[tuple[str, object]] = []
    session.project_opened.connect(lambda project: events.append(("opened", project)))
    session.project_closing.connect(lambda project: events.append(("closing", project)))
    session.project_closed.connect(lambda: events.append(("closed", None)))

    xrd = session.open(xrd_folder)
    assert isinstance(xrd, XrdProject) and xrd.folder == xrd_folder.resolve()
    assert session.current_project is xrd and session.project is None  # no image operations on it
    with pytest.raises(RuntimeError, match="no image project"):
        session.require()

    image = session.open(image_folder_project)
    assert isinstance(image, Project) and image.name == "Leaves"
    assert session.current_project is image and session.project is image and session.require() is image
    assert events == [("opened", xrd), ("closing", xrd), ("closed", None), ("opened", image)]

    session.close()
    assert session.current_project is None and session.project is None and image.closed
    assert events[-2:] == [("closing", image), ("closed", None)]


def test_an_xrd_project_opened_through_the_session_shows_the_xrd_page(
    window: MainWindow, xrd_folder: Path
) -> None:
    project = window.session.open(xrd_folder)  # not through the window: it only hears the session
    assert window.stack.currentWidget() is window.xrd_page and window.xrd_page.project is project
    assert window.windowTitle() == f"{project.name} — LabelTune"
    assert window.import_action.isEnabled() and window.import_action.text() == "&Import patterns…"
    held = read_lock(xrd_folder)
    assert held is not None and held.pid == os.getpid()
    assert Settings.load().recent_projects[0] == str(project.folder)

    shown = window.xrd_page.current_path()
    assert shown is not None
    window.xrd_page.phase_panel.set_ticked("MnO_225", True)
    assert "MnO_225" in XrdProject.open(xrd_folder).labels(shown).phases  # on disk at once
    window.undo_action.trigger()  # the window's action reaches the XRD project
    assert "MnO_225" not in XrdProject.open(xrd_folder).labels(shown).phases
    assert "MnO_225" not in window.xrd_page.phase_panel.ticked()
    window.redo_action.trigger()
    assert "MnO_225" in XrdProject.open(xrd_folder).labels(shown).phases

    window.close_action.trigger()
    assert not (xrd_folder / LOCK_FILE).exists()  # closing released the lock
    assert window.session.current_project is None and window.xrd_page.project is None
    assert window.stack.currentWidget() is window.start_page and window.windowTitle() == "LabelTune"
    assert not window.undo_action.isEnabled() and not window.import_action.isEnabled()
    window.close()


def test_an_image_project_replaces_an_xrd_one_and_the_image_tabs_keep_their_choices(
    window: MainWindow, xrd_folder: Path, image_folder_project: Path
) -> None:
    window.open_project(xrd_folder)
    assert window.stack.currentWidget() is window.xrd_page
    window.session.close()
    # the Train form neither loaded nor saved choices for the XRD project: the settings file keeps 7 epochs
    assert window.settings.epochs == 7 and Settings.load().epochs == 7
    window.open_project(xrd_folder)
    window.open_project(image_folder_project)
    assert not (xrd_folder / LOCK_FILE).exists() and (image_folder_project / LOCK_FILE).exists()
    assert window.stack.currentWidget() is window.tabs and window.tabs.currentWidget() is window.label_page
    assert window.xrd_page.project is None and window.import_action.text() == "&Import images…"
    assert window.windowTitle() == "Leaves — LabelTune"
    assert window.label_page.model.rowCount() == 0 and window.session.require().name == "Leaves"
    window.close()
    assert not (image_folder_project / LOCK_FILE).exists() and not (xrd_folder / LOCK_FILE).exists()


def test_dropped_pattern_files_go_to_the_open_xrd_project(
    qtbot, window: MainWindow, xrd_folder: Path, xrd_source: Path, tmp_path: Path
) -> None:
    window.open_project(xrd_folder)
    before = len(window.xrd_page.patterns_panel.paths())
    first = sorted((xrd_source / "patterns").iterdir())[0]
    extra = tmp_path / f"extra{first.suffix}"
    extra.write_bytes(first.read_bytes() + b"\n")  # another file, the same measurement read
    with qtbot.waitSignal(window.xrd_page.patterns_panel.imported, timeout=TIMEOUT) as blocker:
        drop_paths(window, [extra])
    assert [p.name for p in blocker.args[0]] == [extra.name]
    assert len(window.xrd_page.patterns_panel.paths()) == before + 1
    assert (xrd_folder / "patterns" / extra.name).is_file()
    window.close()


def test_a_page_of_its_own_shows_only_xrd_projects_of_its_session(
    qtbot, xrd_folder: Path, image_folder_project: Path
) -> None:
    session = ProjectSession(Settings())
    page = XrdPage(session)
    qtbot.addWidget(page)
    session.open(xrd_folder)
    assert page.project is session.current_project and page.isEnabled()
    assert len(page.patterns_panel.paths()) == 8
    session.open(image_folder_project)  # the image page's, not this one's
    assert page.project is None and not page.isEnabled() and page.patterns_panel.paths() == []
    page.open(xrd_folder)  # the page's own open goes through its session
    assert isinstance(session.current_project, XrdProject) and page.project is session.current_project
    page.shutdown()
    session.close()


def test_a_new_xrd_project_from_the_dialog_is_adopted_held_and_remembered(
    window: MainWindow, xrd_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.ui import main_window as main_window_module

    class MadeDialog:  # what XrdNewProjectDialog leaves after OK: the project it created, open
        def __init__(self, *_args: object) -> None:
            self.project = XrdProject.open(xrd_folder)

        def exec(self) -> bool:
            return True

    monkeypatch.setattr(main_window_module, "XrdNewProjectDialog", MadeDialog)
    window.new_xrd_project()
    assert window.stack.currentWidget() is window.xrd_page and window.xrd_page.project is not None
    assert window.xrd_page.project.folder == xrd_folder.resolve()
    assert (xrd_folder / LOCK_FILE).exists() and Settings.load().recent_projects[0] == str(
        xrd_folder.resolve()
    )
    window.close()
    assert not (xrd_folder / LOCK_FILE).exists()
