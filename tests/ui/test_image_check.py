"""The *Check all images* job on its own: the button and line it drives, and the project it belongs to."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from labeltune.core.project import Project
from labeltune.core.settings import Settings
from labeltune.ui.image_check import ImageCheck
from labeltune.ui.run_details import CHECK_TEXT
from labeltune.ui.runs_list import RunDetails
from labeltune.ui.session import ProjectSession

TIMEOUT = 30_000


@pytest.fixture
def check(qtbot, tmp_path: Path) -> tuple[ImageCheck, ProjectSession, list[tuple[Any, ...]]]:
    """An ImageCheck on an empty project, with predict_project replaced by a recorder the test controls."""
    folder = tmp_path / "project"
    Project.create(folder).close()
    session = ProjectSession(Settings())
    session.open(folder)
    widget = QWidget()
    qtbot.addWidget(widget)
    image_check = ImageCheck(session, QPushButton(CHECK_TEXT, widget), QLabel(widget), widget)
    return image_check, session, []


def _fake_predict(
    calls: list[tuple[Any, ...]], release: threading.Event | None = None
) -> Any:  # the function put in place of core.inference.predict_project
    def predict(folder: Path, run_id: str, run_dir: str, progress: Any, stop_event: Any) -> dict[str, Any]:
        calls.append((folder, run_id, run_dir))
        if release is not None:
            release.wait(TIMEOUT / 1000)
        return {"predicted": 7, "unfamiliar": 2}

    return predict


def test_a_check_predicts_with_the_run_and_says_how_many_look_unfamiliar(
    qtbot, check, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.core import inference

    image_check, session, calls = check
    monkeypatch.setattr(inference, "predict_project", _fake_predict(calls))
    details = RunDetails({"id": "run-7", "path": str(tmp_path / "runs" / "run-7")})
    with qtbot.waitSignal(session.predictions_changed, timeout=TIMEOUT):
        image_check.toggle(details)
        assert image_check.label.text() == "Checking the images…"
    qtbot.waitUntil(lambda: not image_check.controller.is_running(), timeout=TIMEOUT)
    assert calls == [(session.require().folder, "run-7", str(tmp_path / "runs" / "run-7"))]
    assert image_check.label.text().startswith("Checked 7 images. <b>2 look unlike the training images</b>")
    assert image_check.button.text() == CHECK_TEXT
    image_check.shutdown()
    session.close()


def test_a_check_whose_project_was_closed_leaves_the_line_and_the_labels_alone(
    qtbot, check, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.core import inference

    image_check, session, calls = check
    release = threading.Event()
    monkeypatch.setattr(inference, "predict_project", _fake_predict(calls, release))
    told: list[object] = []
    session.predictions_changed.connect(lambda *args: told.append(args))
    image_check.start(RunDetails({"id": "run-1", "path": str(tmp_path / "run-1")}))
    assert image_check.button.text() == "Stop checking"
    image_check.start(RunDetails({"id": "run-2", "path": str(tmp_path / "run-2")}))  # ignored: one runs
    session.close()
    with qtbot.waitSignal(image_check.controller.finished, timeout=TIMEOUT):
        release.set()
    assert [call[1] for call in calls] == ["run-1"]
    assert image_check.label.text() == "Checking the images…" and told == []
    image_check.shutdown()
