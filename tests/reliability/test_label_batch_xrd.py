"""An XRD project labels a selection in one labels.csv write, one history block, one undo step (ADR 0039)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from label_batch_data import xrd_project_with_keys

from labeltune.core import atomic
from labeltune.core.xrd import xrd_project as xrd_module
from labeltune.core.xrd.xrd_labels import read_labels
from labeltune.core.xrd.xrd_project import HISTORY_FILE, LABELS_FILE, XrdLabel, XrdProjectError


def test_a_selection_is_one_write_one_history_block_and_one_undo_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, keys = xrd_project_with_keys(tmp_path, 1000)
    project.set_label(keys[0], ["B_2"])
    (project.folder / LABELS_FILE).write_text(  # a label another tool wrote: no history yet
        f"path,phases,fractions\n{keys[0]},B_2,\n{keys[1]},A_1,\n", encoding="utf-8"
    )
    project = type(project).open(project.folder)
    history = project.folder / HISTORY_FILE
    lines_before = len(history.read_text(encoding="utf-8").splitlines())
    writes: list[Path] = []
    real_write = xrd_module.write_text_atomic
    monkeypatch.setattr(
        xrd_module, "write_text_atomic", lambda path, text: (writes.append(path), real_write(path, text))
    )

    changed = project.set_labels(keys, ["A_1", "B_2"], [0.5, 0.5])

    assert changed == keys and writes == [project.folder / LABELS_FILE]
    both = XrdLabel(("A_1", "B_2"), (0.5, 0.5))
    assert set(read_labels(project.folder / LABELS_FILE).values()) == {both}
    lines = history.read_text(encoding="utf-8").splitlines()
    assert len(lines) == lines_before + 1 + 1000  # keys[1]'s unrecorded import, then one line a pattern
    assert [(e.value.phases, e.source) for e in project.label_history(keys[1])] == [
        (("A_1",), "import"),
        (("A_1", "B_2"), "human"),
    ]

    writes.clear()
    change = project.undo()
    assert writes == [project.folder / LABELS_FILE]
    assert change is not None and change.items == tuple(keys) and change.after == XrdLabel(("B_2",))
    assert read_labels(project.folder / LABELS_FILE) == {
        keys[0]: XrdLabel(("B_2",)),
        keys[1]: XrdLabel(("A_1",)),
    }
    assert not project.can_undo()  # the labels.csv edit from outside is not an undo step; the batch was one
    change = project.redo()
    assert change is not None and len(change.items) == 1000
    assert project.labels(keys[999]) == both and project.label_history(keys[999])[-1].note == "redo"


def test_a_failed_write_leaves_the_labels_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, keys = xrd_project_with_keys(tmp_path, 50)
    project.set_labels(keys[:5], ["A_1"])
    labels_text = (project.folder / LABELS_FILE).read_text(encoding="utf-8")
    history_text = (project.folder / HISTORY_FILE).read_text(encoding="utf-8")

    def disk_full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "write_text_atomic", disk_full)
    monkeypatch.setattr(xrd_module, "write_text_atomic", disk_full)
    with pytest.raises(XrdProjectError) as raised:
        project.set_labels(keys, ["B_2"])
    assert (
        str(raised.value)
        == f"cannot save the labels in {project.folder / LABELS_FILE}: No space left on device"
    )
    assert (project.folder / LABELS_FILE).read_text(encoding="utf-8") == labels_text
    assert (project.folder / HISTORY_FILE).read_text(encoding="utf-8") == history_text
    assert [project.labels(k) for k in keys[:6]] == [XrdLabel(("A_1",))] * 5 + [XrdLabel()]
    with pytest.raises(XrdProjectError):
        project.undo()
    assert project.can_undo() and not project.can_redo()  # the failed undo can be tried again
    monkeypatch.undo()
    assert project.undo() is not None and project.labels(keys[0]) == XrdLabel()
