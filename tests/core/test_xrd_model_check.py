"""A fine-tune is judged on held-out labeled measurements against the model it started from (issue 9.8)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from labeltune.cli import main
from labeltune.core import demos
from labeltune.core.progress import Progress
from labeltune.core.xrd.library import build_library
from labeltune.core.xrd.model_check import Comparison, MeasuredScore, fold_rows
from labeltune.core.xrd.model_list import ADDED, BUNDLED, RUN, list_models
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.training import XrdTrainConfig, train_xrd
from labeltune.core.xrd.xrd_project import XrdProject

CIFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs"
NAMES = ("1000017", "1530150", "9012601", "1000043", "1010942")  # corundum, rutile, quartz, fluorite, anatase
needs_data = pytest.mark.skipif(
    not all((CIFS / f"{n}.cif").is_file() for n in NAMES), reason="../shared/data/xrd is not present"
)
needs_bundled = pytest.mark.skipif(shipped_model_dir() is None, reason="the bundled XRD model is not here")
TINY = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}


# -- pure parts ---------------------------------------------------------------------------------------
def test_folds_hold_every_pattern_out_exactly_once() -> None:
    folds = fold_rows(8, 5, seed=0)
    assert len(folds) == 5 and sorted(i for f in folds for i in f) == list(range(8))
    assert [len(f) for f in fold_rows(3, 5, seed=0)] == [1, 1, 1]  # fewer patterns than folds: leave-one-out


def test_measured_score_counts_patterns_with_every_phase_right() -> None:
    score = MeasuredScore.of([{"TiO2"}, {"MnO", "LiF"}, {"Mn2O3"}], [{"TiO2"}, {"MnO"}, {"Mn2O3", "LiF"}])
    assert (score.patterns, score.exact) == (3, 1)
    assert score.precision == pytest.approx(3 / 4) and score.recall == pytest.approx(3 / 4)


def test_the_measured_score_decides_and_a_tie_goes_to_the_simulated_validation() -> None:
    def comparison(
        new: tuple[int, float], old: tuple[int, float], sim_new: float, sim_old: float
    ) -> Comparison:
        c = Comparison(
            previous="/runs/old",
            basis="measured",
            folds=4,
            new_score=MeasuredScore(8, new[0], 1.0, 1.0, new[1]),
            previous_score=MeasuredScore(8, old[0], 1.0, 1.0, old[1]),
            simulated_patterns=1024,
            simulated_new=sim_new,
            simulated_previous=sim_old,
        )
        c.decide()
        return c

    worse = comparison((5, 0.8), (6, 0.7), sim_new=0.9, sim_old=0.5)  # better simulated does not count
    assert not worse.adopt
    assert "found all phases in 5 of 8, the current one (old) in 6 of 8" in worse.text()
    assert comparison((6, 0.9), (6, 0.8), 0.1, 0.9).adopt  # equal patterns, better phase F1
    tie = comparison((6, 0.8), (6, 0.8), sim_new=0.690, sim_old=0.726)
    assert not tie.adopt and "69.0 % (fine-tuned) vs 72.6 % (current)" in tie.text()
    assert Comparison.from_json(json.loads(json.dumps(tie.to_json()))) == tie


# -- real fine-tunes ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demos.write_demo("xrd", tmp_path_factory.mktemp("xrd") / "demo")


@needs_bundled
def test_a_fine_tune_worse_on_held_out_measurements_is_not_recommended(
    demo_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundled = shipped_model_dir()
    assert bundled is not None and XrdProject.open(demo_project).model_dir == bundled
    out = tmp_path / "tuned"
    code = main(["train", str(demo_project), "--init", str(bundled), "--epochs", "1", "--lr", "0.05",
                 "--patterns-per-epoch", "32", "--batch-size", "16", "--folds", "2", "--threads", "2",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    comparison = json.loads((out / "metrics.json").read_text())["comparison"]
    assert comparison["basis"] == "measured" and comparison["folds"] == 2
    old, new = comparison["previous_score"], comparison["new_score"]
    assert old["patterns"] == new["patterns"] == 8  # the same eight held-out patterns for both
    assert old["exact"] == 7  # the bundled model misses only Li2MnO3 in the three-phase pattern
    assert new["exact"] < old["exact"] and comparison["adopt"] is False
    assert comparison["simulated"]["previous_exact_accuracy"] > comparison["simulated"]["new_exact_accuracy"]
    assert "the current one (xrd-li-mn-ti-o-f) in 7 of 8" in printed
    assert "verdict: keep xrd-li-mn-ti-o-f" in printed
    heldout = json.loads((out / "metrics.json").read_text())["measured_heldout"]
    assert heldout["exact"] == new["exact"] and heldout["folds"] == 2
    seen = json.loads((out / "config.json").read_text())["measured_patterns"]
    assert len(seen) == 8 and all(Path(p).is_absolute() for p in seen)


@needs_data
def test_a_fine_tune_better_on_held_out_measurements_wins(tmp_path: Path) -> None:
    library = build_library(
        [CIFS / f"{n}.cif" for n in NAMES], tmp_path / "lib", two_theta_range=(20.0, 70.0)
    )
    train_xrd(tmp_path / "lib", XrdTrainConfig(epochs=1, **TINY), tmp_path / "barely")  # type: ignore[arg-type]
    data = tmp_path / "measured"
    data.mkdir()
    sim = SimulationConfig(two_theta_min=20.0, two_theta_max=70.0, points=2501, monochromatic=True)
    rows = ["path,phases,fractions"]
    for i in range(6):
        batch = simulate(library, 1, sim, seed=20 + i, composition={"1000017": 1.0})
        lines = [f"{t:.3f} {v * 1000:.2f}" for t, v in zip(batch.two_theta, batch.x[0], strict=True)]
        (data / f"p{i}.xy").write_text("\n".join(lines) + "\n")
        rows.append(f"p{i}.xy,Al2O3,")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    config = XrdTrainConfig(
        epochs=3, patterns_per_epoch=96, batch_size=32, validation_patterns=64, threads=2,
        init=tmp_path / "barely", lr=5e-3, check_folds=3,
    )  # fmt: skip
    result = train_xrd(data, config, tmp_path / "tuned", default_wavelength=1.5406)
    comparison = result.metrics["comparison"]
    assert comparison["basis"] == "measured" and comparison["new_score"]["patterns"] == 6
    new, old = comparison["new_score"], comparison["previous_score"]
    assert (new["exact"], new["f1"]) > (old["exact"], old["f1"]) and comparison["adopt"] is True


@needs_bundled
def test_one_labeled_pattern_falls_back_to_simulated_validation_and_says_why(
    demo_project: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(demo_project, tmp_path / "one"))
    project = XrdProject.open(folder)
    for path in project.patterns()[1:]:
        project.set_label(path, [])
    assert project.labeled_count() == 1
    config = XrdTrainConfig(epochs=1, init=project.model_dir, **TINY)  # type: ignore[arg-type]
    result = train_xrd(folder, config, tmp_path / "run", default_wavelength=1.5406)
    comparison = result.metrics["comparison"]
    assert comparison["basis"] == "simulated" and comparison["new_score"] is None
    assert "only 1 pattern is labeled" in comparison["reason"]
    assert comparison["text"].startswith("Compared with the current model (xrd-li-mn-ti-o-f) on simulated")
    sims = comparison["simulated"]
    assert comparison["adopt"] is (sims["new_exact_accuracy"] >= sims["previous_exact_accuracy"])


# -- the list of models ------------------------------------------------------------------------------
def _fake_run(folder: Path, created: str, metrics: dict[str, object], init: str | None = None) -> Path:
    folder.mkdir(parents=True)
    config = {"domain": "xrd", "created": created, "train": {"init": init}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_the_model_list_reads_recorded_scores_and_keeps_added_models(
    demo_project: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(demo_project, tmp_path / "p"))
    project = XrdProject.open(folder)
    bundled = _fake_run(tmp_path / "bundled", "2026-01-01T00:00:00+00:00", {"simulated_validation": {
        "patterns": 1024, "exact_accuracy": 0.7256}})  # fmt: skip
    score = {"patterns": 8, "exact": 6, "precision": 1, "recall": 0.9, "f1": 0.95}
    _fake_run(
        project.runs_dir / "xrd-a",
        "2026-02-01T10:00:00+00:00",
        {
            "simulated_validation": {"patterns": 1024, "exact_accuracy": 0.69},
            "measured_heldout": {"patterns": 8, "exact": 5, "folds": 5},
            "comparison": {"previous": str(bundled), "previous_score": score, "adopt": False},
        },
        init=str(bundled),
    )
    other = _fake_run(tmp_path / "elsewhere" / "lab-model", "2026-03-01T10:00:00+00:00", {})
    project.set_model(other)  # added from another folder
    project.set_model(bundled)  # and switched back: it stays in the list
    entries = list_models(XrdProject.open(folder), bundled=bundled)
    assert [(e.name, e.origin, e.active) for e in entries] == [
        ("bundled", BUNDLED, True),
        ("xrd-a", RUN, False),
        ("lab-model", ADDED, False),
    ]
    first, run, added = entries
    assert (first.measured_exact, first.measured_patterns, first.simulated_exact) == (6, 8, 0.7256)
    assert (run.measured_exact, run.measured_patterns, run.simulated_exact) == (5, 8, 0.69)
    assert run.started_from == "bundled" and run.kept_previous
    assert added.measured_exact is None and added.created is not None and added.created.month == 3


@needs_bundled
def test_stop_during_the_check_keeps_the_folds_already_scored(demo_project: Path, tmp_path: Path) -> None:
    stop = threading.Event()

    def progress(p: Progress) -> None:
        if p.stage.startswith("Checking on held-out patterns: fold 2/2"):
            stop.set()

    config = XrdTrainConfig(epochs=1, init=shipped_model_dir(), check_folds=2, **TINY)  # type: ignore[arg-type]
    result = train_xrd(demo_project, config, tmp_path / "run", progress, stop, default_wavelength=1.5406)
    comparison = result.metrics["comparison"]
    assert not result.stopped and comparison["basis"] == "measured" and comparison["complete"] is False
    assert comparison["new_score"]["patterns"] == comparison["previous_score"]["patterns"] == 4  # fold 1 only
    assert "stopped early" in comparison["text"]
