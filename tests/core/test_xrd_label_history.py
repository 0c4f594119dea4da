"""XRD labels keep a history (label_history.jsonl) and undo through the shared stack (docs/adr/0021)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_xrd_project import write_library, write_xy  # tests/core is on sys.path (no __init__.py)

from labeltune.core.domain import LabelChange, LabelEvent
from labeltune.core.xrd.xrd_project import HISTORY_FILE, LABELS_FILE, XrdLabel, XrdProject


@pytest.fixture
def project(tmp_path: Path) -> XrdProject:
    project = XrdProject.create(tmp_path / "proj", "Test", write_library(tmp_path / "lib"))
    added, _ = project.import_patterns([write_xy(tmp_path / "in" / f"p{i}.xy", 20 + 5 * i) for i in range(2)])
    assert len(added) == 2
    return project


def summary(events: list[LabelEvent[XrdLabel]]) -> list[tuple[tuple[str, ...], str, str | None]]:
    return [(e.value.phases, e.source, e.note) for e in events]


def test_every_change_is_recorded_with_its_source_time_and_reason(project: XrdProject) -> None:
    first, second = project.patterns()
    assert project.label_history(first) == [] and not (project.folder / HISTORY_FILE).exists()
    start = time.time()
    project.set_label(first, ["A_1"])
    project.set_label(first, ["A_1", "B_2"], [0.25, 0.75])
    project.set_label(second, ["B_2"])
    project.undo()
    project.undo()
    project.redo()
    expected = [
        (("A_1",), "human", None),
        (("A_1", "B_2"), "human", None),
        (("A_1",), "human", "undo"),
        (("A_1", "B_2"), "human", "redo"),
    ]
    assert summary(project.label_history(first)) == expected
    assert project.label_history(first)[1].value.fractions == (0.25, 0.75)
    assert summary(project.label_history("patterns/p1.xy")) == [
        (("B_2",), "human", None),
        ((), "human", "undo"),
    ]
    assert all(start <= e.time <= time.time() for e in project.label_history(first))
    reopened = XrdProject.open(project.folder)  # on disk, in order
    assert summary(reopened.label_history(first)) == expected
    lines = (project.folder / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {
        "time": json.loads(lines[0])["time"],
        "path": "patterns/p0.xy",
        "phases": ["A_1"],
        "fractions": None,
        "source": "human",
        "note": None,
    }


def test_undo_and_redo_return_what_they_changed(project: XrdProject) -> None:
    first, _ = project.patterns()
    project.set_label(first, ["A_1"])
    project.set_label(first, ["A_1", "B_2"])
    undone = project.undo()
    assert undone == LabelChange("patterns/p0.xy", first, XrdLabel(("A_1", "B_2")), XrdLabel(("A_1",)))
    assert project.redo() == LabelChange(
        "patterns/p0.xy", first, XrdLabel(("A_1",)), XrdLabel(("A_1", "B_2"))
    )
    assert project.labels(first) == XrdLabel(("A_1", "B_2"))


def test_labels_written_by_another_tool_show_as_imported_and_are_recorded_before_a_change(
    project: XrdProject,
) -> None:
    (project.folder / LABELS_FILE).write_text(
        "path,phases,fractions\npatterns/p0.xy,B_2,\n", encoding="utf-8"
    )
    reopened = XrdProject.open(project.folder)
    first = reopened.patterns()[0]
    assert summary(reopened.label_history(first)) == [(("B_2",), "import", LABELS_FILE)]
    assert not (project.folder / HISTORY_FILE).exists()  # reading changes nothing
    reopened.set_label(first, ["A_1"])
    again = XrdProject.open(project.folder)
    assert summary(again.label_history(first)) == [
        (("B_2",), "import", LABELS_FILE),
        (("A_1",), "human", None),
    ]


def test_a_line_torn_by_a_crash_is_skipped(project: XrdProject) -> None:
    first, _ = project.patterns()
    project.set_label(first, ["A_1"])
    with (project.folder / HISTORY_FILE).open("a", encoding="utf-8") as fh:
        fh.write('{"time": 1.0, "path": "patterns/p0.xy", "pha')  # the process died mid-line
    reopened = XrdProject.open(project.folder)
    assert summary(reopened.label_history(first)) == [(("A_1",), "human", None)]


def test_a_history_that_cannot_be_written_does_not_lose_the_label(
    project: XrdProject, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = project.patterns()
    (project.folder / HISTORY_FILE).mkdir()  # appending to it fails
    project.set_label(first, ["A_1"])
    assert XrdProject.open(project.folder).labels(first) == XrdLabel(("A_1",))
    assert "cannot append" in caplog.text
    assert summary(project.label_history(first)) == [(("A_1",), "import", LABELS_FILE)]
