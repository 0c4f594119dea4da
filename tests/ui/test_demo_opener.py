"""Opening a demo from the window: written once in a worker (progress, Stop, errors), then opened."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from labeltune.core import demos
from labeltune.core.demos import demo_counts, demo_project_dir
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, check_stop
from labeltune.core.settings import Settings
from labeltune.core.xrd.demo import write_xrd_demo
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.demo_opener import DemoOpener, DemoProgressDialog
from labeltune.ui.main_window import MainWindow

WAIT = 30000


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh user data dir per test: no demo written by another test."""
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "user-data"))


@pytest.fixture
def window(qtbot) -> MainWindow:
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.show()
    return window


def _record_writer(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """Wrap the real writer, noting the thread each call runs in."""
    threads: list[threading.Thread] = []
    real = demos.write_demo

    def write_demo(name, folder, progress, stop_event):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real(name, folder, progress, stop_event)

    monkeypatch.setattr(demos, "write_demo", write_demo)
    return threads


def test_the_demo_is_written_in_a_worker_then_opened(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _record_writer(monkeypatch)
    opener = DemoOpener.of(window, window.open_project)
    assert DemoOpener.of(window, window.open_project) is opener  # one per window
    with qtbot.waitSignal(opener.opened, timeout=WAIT) as blocker:
        window.open_demo("corn")
        # open_demo returned while the writer runs: the window is free, a dialog shows progress and Stop
        assert opener.is_writing()
        assert isinstance(opener.dialog, DemoProgressDialog) and opener.dialog.isVisible()
        assert opener.dialog.stop_button.isEnabled()
        assert "Corn leaf disease" in opener.dialog.heading.text()
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert blocker.args == [demo_project_dir("corn")]
    assert "Corn leaf disease" in window.windowTitle()
    assert window.session.require().counts() == demo_counts("corn")
    assert window.stack.currentWidget() is window.tabs
    assert opener.dialog is None and not opener.is_writing()
    assert not any(dialog.isVisible() for dialog in window.findChildren(DemoProgressDialog))

    # written once: the second time it opens at once, without a worker
    window.session.close()
    with qtbot.waitSignal(opener.opened, timeout=WAIT):
        window.open_demo("corn")
        assert not opener.is_writing() and opener.dialog is None
    assert len(threads) == 1
    assert "Corn leaf disease" in window.windowTitle()


def test_the_xrd_demo_is_written_in_a_worker_with_its_library(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _record_writer(monkeypatch)
    opener = DemoOpener.of(window, window.open_project)
    stages: list[str] = []
    opener.controller.progressed.connect(lambda p: stages.append(p.stage))
    with qtbot.waitSignal(opener.opened, timeout=60000):
        qtbot.mouseClick(window.start_page.demo_buttons["xrd"], Qt.MouseButton.LeftButton)
    assert threads[0] is not threading.main_thread()
    assert "copy demo" in stages and "library" in stages  # the peak library is computed in the worker
    assert window.stack.currentWidget() is window.xrd_page
    assert (demo_project_dir("xrd") / "library").is_dir()
    assert window.windowTitle() == "XRD phases — LabelTune"


@pytest.mark.skipif(shipped_model_dir() is None, reason="the bundled XRD model is not here")
def test_an_old_xrd_demo_adopts_the_shipped_model_and_opens_at_once(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_xrd_demo(demo_project_dir("xrd"))
    XrdProject.open(folder).set_model(None)  # written before the app shipped its model
    threads = _record_writer(monkeypatch)
    opener = DemoOpener.of(window, window.open_project)
    with qtbot.waitSignal(opener.opened, timeout=WAIT) as blocker:
        window.open_demo("xrd")
    assert threads == [] and blocker.args == [folder]
    assert XrdProject.open(folder).model_dir == shipped_model_dir()
    assert window.stack.currentWidget() is window.xrd_page


def _start_blocked_demo(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch, name: str
) -> tuple[DemoOpener, threading.Event, list[bool]]:
    """Open demo ``name`` with a writer that reports progress, then waits for Stop (checked between files).

    Returns the opener, an event set once the writer runs, and whether the writer saw Stop.
    """
    started = threading.Event()
    stopped: list[bool] = []

    def write_demo(name, folder, progress, stop_event):  # type: ignore[no-untyped-def]
        progress(Progress("copy demo", 3, 10))
        started.set()
        stopped.append(stop_event.wait(WAIT / 1000))
        check_stop(stop_event)
        raise AssertionError("not stopped")

    monkeypatch.setattr(demos, "write_demo", write_demo)
    opener = DemoOpener.of(window, window.open_project)
    window.open_demo(name)
    return opener, started, stopped


def test_stop_ends_the_writer_and_opens_nothing(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    opener, _started, stopped = _start_blocked_demo(window, monkeypatch, "fish")
    dialog = opener.dialog
    assert dialog is not None
    # the GUI thread keeps handling events while the worker runs: the progress report reaches the dialog
    qtbot.waitUntil(lambda: dialog.progress_bar.maximum() == 10, timeout=WAIT)
    assert dialog.progress_bar.value() == 3 and "3 of 10" in dialog.status.text()
    window.open_demo("corn")  # ignored while the fish are being written
    with qtbot.waitSignal(opener.stopped, timeout=WAIT):
        qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
        assert not dialog.stop_button.isEnabled() and "Stopping" in dialog.status.text()
    assert stopped == [True]
    assert opener.dialog is None and not opener.is_writing()
    assert window.stack.currentWidget() is window.start_page and window.session.project is None
    assert not demo_project_dir("fish").exists() and not demo_project_dir("corn").exists()


def test_a_failure_reaches_the_user(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    def write_demo(name, folder, progress, stop_event):  # type: ignore[no-untyped-def]
        raise UnusableInputError(f"cannot write the demo to {folder}: No space left on device")

    monkeypatch.setattr(demos, "write_demo", write_demo)
    opener = DemoOpener.of(window, window.open_project)
    with qtbot.waitSignal(opener.failed, timeout=WAIT) as blocker:
        window.open_demo("corn")
    assert "No space left on device" in blocker.args[0]
    boxes = [box for box in window.findChildren(QMessageBox) if box.objectName() == "errorBox"]
    assert len(boxes) == 1 and boxes[0].isVisible()
    assert boxes[0].windowTitle() == "Cannot open the demo" and "No space left" in boxes[0].text()
    assert window.stack.currentWidget() is window.start_page and opener.dialog is None


def test_closing_the_window_stops_the_writer(
    qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    opener, started, stopped = _start_blocked_demo(window, monkeypatch, "corn")
    assert started.wait(WAIT / 1000)
    window.close()
    assert stopped == [True] and not opener.is_writing() and opener.dialog is None
    assert window.session.project is None
