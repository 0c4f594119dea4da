"""Label next's reasons and Retrain's settings and wording (core/label_next.py; no training here)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from labeltune.core.errors import UnusableInputError
from labeltune.core.label_next import QueueItem, metric_change, retrain_plan
from labeltune.core.train_config import DEFAULT_EPOCHS, TrainConfig


def _run(folder: Path, config: TrainConfig, accuracy: float | None, images: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"train": asdict(config), "model": {"classes": ["a"]}}))
    if accuracy is not None:
        (folder / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "summary": {}}))
    rows = "".join(f"/data/img{i}.png,a,{'val' if i % 5 == 0 else 'train'}\n" for i in range(images))
    (folder / "manifest.csv").write_text("file,label,split\n" + rows)
    return folder


def test_the_reason_names_the_two_classes_the_model_hesitates_between() -> None:
    item = QueueItem(Path("a.png"), "Blight", 0.4149, 0.97, "Rust", 0.381)
    assert item.reason() == "Blight 41 % vs Rust 38 %"
    assert QueueItem(Path("a.png"), "Blight", 1.0, 1.0, None, 0.0).reason() == "Blight 100 %"


def test_retrain_keeps_a_features_run_as_it_was(tmp_path: Path) -> None:
    config = TrainConfig(backbone="alexnet", epochs=7, lr=0.01, input_size=63, seed=3, val_fraction=0.3)
    plan = retrain_plan(_run(tmp_path / "run", config, 0.5, 10))
    assert plan.config == config and plan.note == "" and plan.base_strategy == "features"


def test_retrain_of_a_fine_tuned_run_trains_a_features_head_and_says_why(tmp_path: Path) -> None:
    config = TrainConfig(backbone="resnet18", strategy="full", epochs=4, lr=0.05, input_size=64, seed=2)
    plan = retrain_plan(_run(tmp_path / "run", config, 0.5, 10))
    assert plan.config.strategy == "features" and plan.base_strategy == "full"
    assert (plan.config.backbone, plan.config.input_size, plan.config.seed) == ("resnet18", 64, 2)
    assert plan.config.epochs == DEFAULT_EPOCHS["features"] and plan.config.lr is None
    assert "fine-tuned its backbone (full)" in plan.note and "resnet18" in plan.note


def test_retrain_refuses_a_folder_without_settings(tmp_path: Path) -> None:
    with pytest.raises(UnusableInputError, match="cannot read the settings"):
        retrain_plan(tmp_path)


def test_the_change_is_worded_from_both_runs_files(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", TrainConfig(), 0.8612, 40)
    new = _run(tmp_path / "new", TrainConfig(), 0.9071, 52)
    assert metric_change(old, new) == "Validation accuracy 0.86 → 0.91 (+12 labels)"
    bare = _run(tmp_path / "bare", TrainConfig(), None, 40)
    assert metric_change(bare, new) == "Validation accuracy ? → 0.91 (+12 labels)"


def test_the_change_counts_images_left_out_in_words(tmp_path: Path) -> None:
    """Tried on the corn demo: relabel one, exclude one (X), Retrain said "(-1 labels)"."""
    old = _run(tmp_path / "old", TrainConfig(), 0.79, 120)
    assert metric_change(old, _run(tmp_path / "a", TrainConfig(), 0.8, 119)).endswith("(1 image fewer)")
    assert metric_change(old, _run(tmp_path / "b", TrainConfig(), 0.8, 117)).endswith("(3 images fewer)")
    assert metric_change(old, _run(tmp_path / "c", TrainConfig(), 0.8, 120)).endswith("(as many images)")
    assert metric_change(old, _run(tmp_path / "d", TrainConfig(), 0.8, 121)).endswith("(+1 label)")
