"""Run folders carry a layout version: both domains write it; legacy folders load, newer ones are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeltune.core.errors import UnusableInputError
from labeltune.core.run_schema import RUN_SCHEMA, RUN_SCHEMA_KEY, run_schema_problem


def set_schema(run_dir: Path, version: int | None) -> None:
    path = run_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.pop(RUN_SCHEMA_KEY, None)
    if version is not None:
        config[RUN_SCHEMA_KEY] = version
    path.write_text(json.dumps(config), encoding="utf-8")


def assert_refused(error: pytest.ExceptionInfo[UnusableInputError], run_dir: Path) -> None:
    text = str(error.value)
    assert str(run_dir) in text and "newer LabelTune" in text and "\n" not in text


def test_missing_version_is_legacy_and_a_newer_one_is_a_problem(tmp_path: Path) -> None:
    assert run_schema_problem(tmp_path, {}) is None  # written before the key existed
    assert run_schema_problem(tmp_path, {RUN_SCHEMA_KEY: RUN_SCHEMA}) is None
    problem = run_schema_problem(tmp_path, {RUN_SCHEMA_KEY: RUN_SCHEMA + 1})
    assert problem is not None and str(tmp_path) in problem and "update LabelTune" in problem


@pytest.fixture
def image_run(tmp_path: Path, image_folder) -> Path:
    from labeltune.core.datasets import scan
    from labeltune.core.train_config import TrainConfig
    from labeltune.core.training import train

    config = TrainConfig(backbone="resnet18", weights="none", input_size=32, epochs=1, batch_size=4)
    train(scan(image_folder(classes=2, per_class=5, size=40)), config, tmp_path / "run")
    return tmp_path / "run"


def test_image_runs_write_the_version_and_readers_check_it(image_run: Path) -> None:
    from labeltune.core.datasets import scan
    from labeltune.core.export import export_model
    from labeltune.core.inference import evaluate_run
    from labeltune.core.model import load_model
    from labeltune.core.training import resume

    assert json.loads((image_run / "config.json").read_text())[RUN_SCHEMA_KEY] == RUN_SCHEMA
    set_schema(image_run, None)  # a legacy run still loads
    assert load_model(image_run)[1].classes == ["class0", "class1"]
    set_schema(image_run, RUN_SCHEMA + 1)
    with pytest.raises(UnusableInputError) as error:
        load_model(image_run)
    assert_refused(error, image_run)
    with pytest.raises(UnusableInputError) as error:
        export_model(image_run, image_run.parent / "model.pt", "torchscript")
    assert_refused(error, image_run)
    with pytest.raises(UnusableInputError) as error:
        evaluate_run(image_run, scan(image_run.parent / "data"))
    assert_refused(error, image_run)
    with pytest.raises(UnusableInputError) as error:
        resume(image_run)
    assert_refused(error, image_run)


def test_a_newer_stopped_run_is_not_offered_for_continuing(image_run: Path) -> None:
    from labeltune.core.run_state import stopped_run

    metrics = json.loads((image_run / "metrics.json").read_text())
    metrics["summary"]["stopped"] = True
    (image_run / "metrics.json").write_text(json.dumps(metrics))
    assert stopped_run(image_run) is not None
    set_schema(image_run, None)
    assert stopped_run(image_run) is not None  # legacy
    set_schema(image_run, RUN_SCHEMA + 1)
    assert stopped_run(image_run) is None


def test_xrd_runs_write_the_version_and_readers_check_it(tmp_path: Path) -> None:
    from labeltune.core import demos
    from labeltune.core.train_step import EpochRecord
    from labeltune.core.xrd.run_files import load_xrd_net
    from labeltune.core.xrd.train_config import XrdTrainConfig
    from labeltune.core.xrd.training import train_xrd
    from labeltune.core.xrd.xrd_project import xrd_run_problem

    demo = demos.write_demo("xrd", tmp_path / "demo")
    run = tmp_path / "run"
    config = XrdTrainConfig(epochs=1, patterns_per_epoch=64, batch_size=32, validation_patterns=32, threads=2)
    train_xrd(demo / "library", config, run)
    assert json.loads((run / "config.json").read_text())[RUN_SCHEMA_KEY] == RUN_SCHEMA
    header = (run / "history.csv").read_text().splitlines()[0]  # the same writer as image runs
    assert header == ",".join(EpochRecord.__dataclass_fields__)
    set_schema(run, None)  # a legacy run still loads
    assert load_xrd_net(run)[1]["domain"] == "xrd" and xrd_run_problem(run) is None
    set_schema(run, RUN_SCHEMA + 1)
    with pytest.raises(UnusableInputError) as error:
        load_xrd_net(run)
    assert_refused(error, run)
    problem = xrd_run_problem(run)
    assert problem is not None and str(run) in problem and "newer LabelTune" in problem
