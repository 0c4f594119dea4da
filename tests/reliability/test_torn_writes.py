"""A write cut short (power cut, full disk) costs only itself: the next one, and the previous file, survive.

Faults are injected at the file calls (tests run as root: permissions prove nothing).  See docs/adr/0040.
"""

from __future__ import annotations

import errno
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from labeltune.core.xrd.demo import write_xrd_demo
from labeltune.core.xrd.xrd_project import XrdProject


@pytest.fixture
def xrd_folder(tmp_path: Path) -> Path:
    return write_xrd_demo(tmp_path / "xrd")


def test_a_torn_history_line_does_not_swallow_the_next_label(xrd_folder: Path) -> None:
    project = XrdProject.open(xrd_folder)
    first, second = project.patterns()[:2]
    project.set_label(first, ["LiF"])
    with project.history_file.open("a", encoding="utf-8") as fh:  # a power cut in the middle of an append
        fh.write('{"time": 1.0, "path": "patterns/x.xy", "pha')
    project.set_label(second, ["MnO", "NiO"])

    reopened = XrdProject.open(xrd_folder)
    last = reopened.label_history(second)[-1]
    assert (last.value.phases, last.source) == (
        ("MnO", "NiO"),
        "human",
    )  # recorded, not glued to the torn line
    assert reopened.label_history(first)[-1].value.phases == ("LiF",)
    assert reopened.labels(second).phases == ("MnO", "NiO")


class _FullDisk:
    """A file whose ``write`` gets half the text onto the disk, then fails as a full disk does."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, text: str) -> int:
        self._handle.write(text[: len(text) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def test_xrd_predict_out_is_whole_or_the_previous_one(
    xrd_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from labeltune.cli import main

    project = XrdProject.open(xrd_folder)
    if project.model_dir is None:
        pytest.skip("no shipped XRD model in this checkout")
    out = xrd_folder.parent / "answers" / "out.json"
    out.parent.mkdir()
    out.write_text('[{"path": "earlier.xy", "phases": []}]\n', encoding="utf-8")
    before = out.read_text(encoding="utf-8")
    real_open = io.open

    def open_on_a_full_disk(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode and "out.json" in os.fspath(file):
            return _FullDisk(handle)
        return handle

    monkeypatch.setattr(io, "open", open_on_a_full_disk)
    pattern = str(project.patterns()[0])
    status = main(["predict", str(project.model_dir), pattern, "--no-fit", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("labeltune: error:")]
    assert lines == [f"labeltune: error: cannot write {out}: disk full"]
    assert "Traceback" not in err
    assert out.read_text(encoding="utf-8") == before  # the previous answers, whole
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.json"]  # no temporary file left

    monkeypatch.setattr(io, "open", real_open)
    assert main(["predict", str(project.model_dir), pattern, "--no-fit", "--out", str(out)]) == 0
    assert [row["path"] for row in json.loads(out.read_text(encoding="utf-8"))] == [pattern]


def test_temporary_files_a_kill_left_are_removed_at_open(xrd_folder: Path, tmp_path: Path) -> None:
    from labeltune.core.project import Project

    image_folder = tmp_path / "images-project"
    Project.create(image_folder).close()
    old = time.time() - 3600
    planted = [
        xrd_folder / ".labels.csv.0badf00d.tmp",
        xrd_folder / ".predictions.json.0badf00d.tmp",
        xrd_folder / ".xrd_project.json.0badf00d.tmp",
        image_folder / ".project.json.0badf00d.tmp",
    ]
    for path in planted:
        path.write_text("half a file", encoding="utf-8")
        os.utime(path, (old, old))
    young = xrd_folder / ".labels.csv.5eed5eed.tmp"  # another process writing right now: left alone
    young.write_text("being written", encoding="utf-8")

    XrdProject.open(xrd_folder)
    Project.open(image_folder).close()
    assert [path for path in planted if path.exists()] == []
    assert young.exists()
