"""Training runs learn, stop, resume, reuse the cache and report bad files."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from labeltune.core.datasets import scan
from labeltune.core.errors import UnusableInputError
from labeltune.core.image_task import class_weights
from labeltune.core.model import load_model
from labeltune.core.train_config import DEFAULT_LR, TrainConfig
from labeltune.core.trainer import Callback, EpochRecord, Trainer
from labeltune.core.training import resume, train

SMALL = {"resnet18": 32, "alexnet": 63, "densenet201": 32, "inception_v3": 107, "mobilenet_v3_large": 32}


def config(backbone: str = "resnet18", **kwargs: object) -> TrainConfig:
    values: dict[str, object] = dict(
        backbone=backbone, weights="none", epochs=6, batch_size=16, input_size=SMALL[backbone], patience=0
    )
    values.update(kwargs)
    return TrainConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("strategy", "backbone"),
    [
        ("features", "resnet18"),
        ("features", "densenet201"),
        ("partial", "alexnet"),
        ("partial", "inception_v3"),
        ("full", "resnet18"),
        ("partial", "resnet18"),
    ],
)
def test_each_strategy_learns_a_separable_set(image_folder, tmp_path, strategy, backbone):
    data = scan(image_folder(classes=3, per_class=16))
    epochs = 8 if strategy == "full" else 6
    result = train(data, config(backbone, strategy=strategy, epochs=epochs, lr=3e-3), tmp_path / "run")
    assert result.train_size + result.val_size == 48
    assert result.val_size == 9  # 20 % of 16 per class, rounded
    # chance is 1/3; 7 of 9 right has p < 0.01 for a guesser (binomial), so this is real learning
    assert result.metrics["accuracy"] >= 0.77, result.metrics
    assert result.history[-1].train_loss < result.history[0].train_loss
    for name in ("config.json", "history.csv", "metrics.json", "model.safetensors", "manifest.csv"):
        assert (tmp_path / "run" / name).is_file(), name
    # the saved model reproduces the validation accuracy on its own
    _, model_config = load_model(tmp_path / "run")
    assert model_config.classes == ["class0", "class1", "class2"]
    with open(tmp_path / "run" / "manifest.csv") as handle:
        val_rows = [r for r in csv.DictReader(handle) if r["split"] == "val"]
    from labeltune.core.inference import predict_files

    predictions, skipped = predict_files(tmp_path / "run", [Path(r["file"]) for r in val_rows], device="cpu")
    assert not skipped
    correct = sum(p.label == r["label"] for p, r in zip(predictions, val_rows, strict=True))
    assert correct / len(val_rows) == pytest.approx(result.metrics["accuracy"], abs=0.12)


def test_second_run_reuses_cached_features(image_folder, tmp_path):
    data = scan(image_folder())
    first = train(data, config(lr=1e-3), tmp_path / "a", cache_root=tmp_path / "cache")
    second = train(data, config(lr=5e-3), tmp_path / "b", cache_root=tmp_path / "cache")
    assert first.seconds_features > 0
    assert second.seconds_features == 0.0
    files = list((tmp_path / "cache" / "features").glob("*-pooled-*.sqlite"))
    assert len(files) == 1
    # the probe statistics of the unfamiliar-input score are cached beside them, once
    assert len(list((tmp_path / "cache" / "features").glob("*-probes-*.sqlite"))) == 1
    # the two models share the frozen backbone exactly (including calibrated BatchNorm statistics)
    a, b = (
        load_file(str(tmp_path / "a" / "model.safetensors")),
        load_file(str(tmp_path / "b" / "model.safetensors")),
    )
    trunk_keys = [k for k in a if k.startswith(("trunk.", "top."))]
    assert trunk_keys and all(torch.equal(a[k], b[k]) for k in trunk_keys)
    assert not torch.equal(a["head.1.weight"], b["head.1.weight"])


def test_runs_are_deterministic_for_a_seed(image_folder, tmp_path):
    data = scan(image_folder())
    r1 = train(data, config(strategy="full", epochs=2, seed=3), tmp_path / "a")
    r2 = train(data, config(strategy="full", epochs=2, seed=3), tmp_path / "b")
    assert [h.train_loss for h in r1.history] == pytest.approx([h.train_loss for h in r2.history], rel=1e-5)
    a, b = (
        load_file(str(tmp_path / "a" / "model.safetensors")),
        load_file(str(tmp_path / "b" / "model.safetensors")),
    )
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


class StopAfter(Callback):
    def __init__(self, event: threading.Event, epoch: int) -> None:
        self.event, self.epoch = event, epoch

    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None:
        if trainer.state.epoch + 1 == self.epoch:  # first batch of this epoch
            self.event.set()


def test_stop_keeps_best_model_and_resume_finishes(image_folder, tmp_path):
    data = scan(image_folder())
    stop = threading.Event()
    run = tmp_path / "run"
    stopped = train(
        data, config(strategy="full", epochs=5), run, stop_event=stop, callbacks=[StopAfter(stop, 3)]
    )
    assert stopped.stopped and stopped.epochs_run == 2
    assert 1 <= stopped.best_epoch <= 2
    model, _ = load_model(run)  # a usable model exists
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 3)
    with open(run / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2

    resumed = resume(run)
    assert not resumed.stopped
    assert resumed.epochs_run == 5
    assert [h.epoch for h in resumed.history] == [1, 2, 3, 4, 5]
    assert [h.train_loss for h in resumed.history[:2]] == [h.train_loss for h in stopped.history]
    with open(run / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 5
    summary = json.loads((run / "metrics.json").read_text())["summary"]
    assert summary["epochs_run"] == 5


def test_unreadable_images_are_skipped_and_reported(image_folder, tmp_path):
    root = image_folder()
    good = (root / "class0" / "img000.png").read_bytes()
    (root / "class0" / "truncated.png").write_bytes(good)
    (root / "class1" / "garbage.jpg").write_bytes(b"not an image at all")
    data = scan(root)
    assert [(Path(s.path).name, s.reason) for s in data.skipped] == [
        ("garbage.jpg", "not an image (looks like text)")
    ]
    (root / "class0" / "truncated.png").write_bytes(good[: len(good) // 2])  # damaged after the scan
    result = train(data, config(), tmp_path / "run")
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons == {
        "garbage.jpg": "not an image (looks like text)",
        "truncated.png": "truncated PNG (image data ends early)",
    }
    assert result.train_size + result.val_size == 48


def test_no_readable_images_left_names_the_files(image_folder, tmp_path):
    root = image_folder(classes=2, per_class=2)
    data = scan(root)
    for sample in data.samples:
        sample.path.write_bytes(b"")  # emptied after the scan (a sync tool, a full disk)
    with pytest.raises(UnusableInputError, match=r"img000\.png: empty file \(0 bytes\)") as raised:
        train(data, config(), tmp_path / "run")
    assert "and 1 more" in str(raised.value)


def test_grouped_split_keeps_groups_together(image_folder, tmp_path):
    root = image_folder(classes=2, per_class=20)
    for path in root.rglob("img*.png"):  # 4 frames per "track": img000..003 -> track 0
        index = int(path.stem[3:])
        path.rename(path.with_name(f"fish_{path.parent.name}{index // 4}_{index:03d}.png"))
    result = train(scan(root), config(group_by=r"fish_([a-z0-9]+)_"), tmp_path / "run")
    with open(tmp_path / "run" / "manifest.csv") as handle:
        rows = list(csv.DictReader(handle))
    sides: dict[str, set[str]] = {}
    for row in rows:
        sides.setdefault(Path(row["file"]).name.split("_")[1], set()).add(row["split"])
    assert len(sides) == 10
    assert all(len(s) == 1 for s in sides.values())
    assert result.val_size % 4 == 0 and result.val_size > 0
    # The run records its grouping: in the summary (metrics.json, the runs list) and in config.json.
    expected = {
        "kind": "pattern",
        "spec": "regex:fish_([a-z0-9]+)_",
        "pattern": "fish_([a-z0-9]+)_",
        "groups": 10,
        "ungrouped_images": 0,
        "train_images": result.train_size,
        "val_images": result.val_size,
        "text": "grouped by file-name pattern fish_([a-z0-9]+)_ — 10 groups",
    }
    assert result.to_json()["grouping"] == expected
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["summary"]["grouping"] == expected
    assert json.loads((tmp_path / "run" / "config.json").read_text())["grouping"] == expected


def test_a_grouping_that_leaves_nothing_to_validate_is_refused(image_folder, tmp_path):
    data = scan(image_folder(classes=2, per_class=6))  # class folders: the folder of each image is its class
    with pytest.raises(UnusableInputError, match="no image for validation"):
        train(data, config(group_by="folder"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_ungrouped_run_says_so(image_folder, tmp_path):
    result = train(scan(image_folder(classes=2, per_class=6)), config(epochs=1), tmp_path / "run")
    assert result.to_json()["grouping"]["text"] == "not grouped"
    assert result.to_json()["grouping"]["kind"] == "none"


def test_cached_augmented_views_are_stored(image_folder, tmp_path):
    data = scan(image_folder(classes=2, per_class=10))
    result = train(data, config(cached_views=2, epochs=2), tmp_path / "run", cache_root=tmp_path / "cache")
    import sqlite3

    (db,) = (tmp_path / "cache" / "features").glob("*-pooled-*.sqlite")
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM features").fetchone()[0]
    assert rows == 20 * 3  # original + 2 augmented views per image
    assert result.train_size == 16


def test_one_class_is_a_usage_error(image_folder, tmp_path):
    with pytest.raises(UnusableInputError, match="at least 2 classes"):
        train(scan(image_folder(classes=1)), config(), tmp_path / "run")


def test_early_stopping_stops_when_nothing_improves(image_folder, tmp_path):
    data = scan(image_folder())
    result = train(data, config(lr=1e-9, patience=2, epochs=10), tmp_path / "run")
    assert result.stopped_early
    assert result.epochs_run < 10


def test_class_weights_balance_the_loss():
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, 3)
    assert weights[0] * 90 == pytest.approx(weights[1] * 10)
    assert weights[2] == 1.0  # absent class


def test_trainer_callbacks_fire_in_order():
    events: list[str] = []

    class Recorder(Callback):
        def on_fit_start(self, trainer: Trainer) -> None:
            events.append("start")

        def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
            events.append(f"epoch{record.epoch}")

        def on_fit_end(self, trainer: Trainer) -> None:
            events.append("end")

    from labeltune.core.trainer import TensorBatches

    torch.manual_seed(0)
    x = torch.randn(40, 4)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(4, 2)
    batches = TensorBatches(x, y, 8, torch.device("cpu"), shuffle=True)
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.5), torch.nn.functional.cross_entropy,
        batches, TensorBatches(x, y, 8, torch.device("cpu")), 3, 2, callbacks=[Recorder()],
    )  # fmt: skip
    state = trainer.fit()
    assert events == ["start", "epoch1", "epoch2", "epoch3", "end"]
    assert state.history[-1].val_accuracy > 0.8


def test_trainer_reports_exceptions_to_callbacks():
    seen: list[BaseException] = []

    class Watcher(Callback):
        def on_exception(self, trainer: Trainer, error: BaseException) -> None:
            seen.append(error)

    from labeltune.core.trainer import TensorBatches

    x, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    model = torch.nn.Linear(3, 2)  # wrong input size: the first batch fails
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.functional.cross_entropy,
        TensorBatches(x, y, 4, torch.device("cpu")), None, 1, 2, callbacks=[Watcher()],
    )  # fmt: skip
    with pytest.raises(RuntimeError):
        trainer.fit()
    assert len(seen) == 1 and isinstance(seen[0], RuntimeError)


@pytest.mark.parametrize("frozen", [True, False])
def test_frozen_batchnorm_keeps_the_pretrained_statistics_while_the_layers_learn(frozen: bool) -> None:
    import torch

    from labeltune.core.trainer import TensorBatches, Trainer

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    bn = model[1]
    bn.running_mean.fill_(0.0)
    before_mean, before_weight = bn.running_mean.clone(), bn.weight.detach().clone()
    x = torch.randn(32, 4) * 3 + 5  # far from the "pretrained" statistics
    y = (x[:, 0] > 5).long()
    batches = TensorBatches(x, y, 8, torch.device("cpu"), shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(
        model, optimizer, torch.nn.functional.cross_entropy, batches, None, 2, 2, frozen_batchnorm=frozen
    ).fit()
    assert torch.equal(bn.running_mean, before_mean) is frozen  # statistics kept only when frozen
    assert not torch.equal(bn.weight.detach(), before_weight)  # its scale learns either way


def test_full_fine_tuning_freezes_batchnorm_of_pretrained_weights_only(tmp_path: Path, image_folder) -> None:
    data = scan(image_folder(classes=2, per_class=6, size=40))
    config = TrainConfig(
        backbone="resnet18", weights="none", strategy="full", input_size=32, epochs=1, batch_size=4
    )
    train(data, config, tmp_path / "random")
    stored = json.loads((tmp_path / "random" / "config.json").read_text())
    assert stored["train"]["freeze_batchnorm"] is False  # random weights: statistics must follow them
    assert TrainConfig().freeze_batchnorm is None and DEFAULT_LR["full"] == 1e-3
