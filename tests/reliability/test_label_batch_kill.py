"""kill -9 while a big label batch is written: after restart the store holds all of it or none of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from label_batch_data import many_samples_project, store_dump

import labeltune
from labeltune.core.project import Project
from labeltune.core.project_store.labels import BATCH_ROWS

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from labeltune.core.project import Project

    project = Project.open(sys.argv[1])
    when = sys.argv[2]

    def progress(report):
        if when == "during" and report.done >= 2 * {rows}:  # two slices written, not committed
            os.kill(os.getpid(), signal.SIGKILL)

    project.set_labels(project.sample_ids(), "b", progress=progress)
    os.kill(os.getpid(), signal.SIGKILL)  # "after": killed the moment the batch returned
    """
).format(rows=BATCH_ROWS)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_a_batch_killed_part_way_is_all_or_nothing(tmp_path: Path) -> None:
    count = 4 * BATCH_ROWS
    with many_samples_project(tmp_path / "p", count) as project:
        snapshot = store_dump(project)
    env = {**os.environ, "PYTHONPATH": str(Path(labeltune.__file__).resolve().parents[1])}

    def run(when: str) -> int:
        return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "p"), when], env=env).returncode

    assert run("during") == -signal.SIGKILL
    with Project.open(tmp_path / "p") as project:
        assert project._db().execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert store_dump(project) == snapshot  # none of it

    assert run("after") == -signal.SIGKILL
    with Project.open(tmp_path / "p") as project:
        assert project._db().execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert project.counts()["b"] == count  # all of it
        assert len(store_dump(project)["labels"]) == len(snapshot["labels"]) + count
