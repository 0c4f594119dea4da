"""core/use_model.py: a folder predicted with an XRD run, sorted by phase set; the CSV is written whole."""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import pytest

from labeltune.core import demos
from labeltune.core.errors import UnusableInputError
from labeltune.core.inference import write_csv_atomic
from labeltune.core.progress import StoppedError
from labeltune.core.use_model import XRD_NO_PHASE, predict_folder
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd

TINY = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}


@pytest.fixture(scope="module")
def xrd_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a tiny XRD run trained on the demo library, the demo's measured patterns)."""
    demo = demos.write_demo("xrd", tmp_path_factory.mktemp("xrd") / "demo")
    run = tmp_path_factory.mktemp("runs") / "tiny"
    train_xrd(demo / "library", XrdTrainConfig(epochs=1, **TINY), run)  # type: ignore[arg-type]
    return run, demo / "patterns"


def test_an_xrd_folder_is_predicted_written_and_sorted_by_phase_set(
    xrd_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, patterns = xrd_run
    (patterns / "notes.md").write_text("not a pattern", encoding="utf-8")
    result = predict_folder(
        run,
        [patterns],
        csv_path=tmp_path / "phases.csv",
        sort_dir=tmp_path / "sorted",
        min_confidence=0.3,
        wavelength=1.5406,  # the demo's files state none (the project says Cu Kα1)
        fit=False,  # the network's answers: the tiny run calls many phases, their fits take minutes
    )
    files = sorted(p.name for p in patterns.glob("*.xy"))
    with open(tmp_path / "phases.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert result.domain == "xrd" and result.predicted == len(rows) == len(files) - len(result.skipped)
    assert len(rows) >= len(files) - 1  # (a pattern may fall outside the library's 2θ range)
    named = [Path(r["path"]).name for r in rows] + [Path(path).name for path, _why in result.skipped]
    assert sorted(named) == files
    for row in rows:
        unfamiliar = row["unfamiliar"] == "true"
        if row["predicted"] == XRD_NO_PHASE:
            assert unfamiliar and float(row["confidence"]) == 0.0
        else:  # a phase set is as sure as its least sure phase
            assert len(row["fractions"].split(";")) == len(row["predicted"].split(";"))
        expected = (
            "unfamiliar"
            if unfamiliar
            else row["predicted"]
            if float(row["confidence"]) >= 0.3
            else "uncertain"
        )
        assert (tmp_path / "sorted" / expected / Path(row["path"]).name).is_file()
    assert sum(result.counts.values()) == result.copied == len(rows)


def test_a_stop_leaves_no_csv_and_a_bad_threshold_is_refused(
    xrd_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, patterns = xrd_run
    stop = threading.Event()
    stop.set()
    with pytest.raises(StoppedError):
        predict_folder(run, [patterns], csv_path=tmp_path / "phases.csv", stop_event=stop)
    assert not (tmp_path / "phases.csv").exists()
    with pytest.raises(UnusableInputError, match="between 0 and 1"):
        predict_folder(run, [patterns], min_confidence=1.5)


def test_the_csv_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "predictions.csv"
    target.write_text("old\n", encoding="utf-8")

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_csv_atomic(target, ["path", "predicted"], [["a.png", "cat"]])
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]
    monkeypatch.undo()
    write_csv_atomic(target, ["path", "predicted"], [["a.png", "cat"]])
    assert target.read_text(encoding="utf-8") == "path,predicted\na.png,cat\n"


def test_the_xrd_cli_sorts_into_phase_set_folders(xrd_run: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    from labeltune.cli import main

    run, patterns = xrd_run
    args = ["predict", str(run), str(patterns), "--wavelength", "1.5406", "--no-fit", "--json"]
    assert main([*args, "--sort-into", str(tmp_path / "sorted"), "--min-confidence", "0.3"]) == 0
    answers = [row for row in json.loads(capsys.readouterr().out) if "phases" in row]
    assert answers
    for row in answers:
        phases = [call["name"] for call in row["phases"]]
        sure = phases and min(call["probability"] for call in row["phases"]) >= 0.3
        folder = ";".join(phases) if sure else "uncertain" if phases else "unfamiliar"
        assert (tmp_path / "sorted" / folder / Path(row["path"]).name).is_file()
    assert main([*args, "--sort-into", str(tmp_path / "x"), "--min-confidence", "2"]) == 2
    assert "--min-confidence must be between 0 and 1" in capsys.readouterr().err
