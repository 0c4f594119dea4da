"""Teachers' pooled features as the student's targets (``--feature-loss``, Landro et al. 2021; issue 16)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import write_class_folder  # tests/conftest.py
from labeltune.cli import main
from labeltune.core.distill import DistillationTask, Teacher, teacher_feature_targets
from labeltune.core.train_config import TrainConfig

TINY = ["--weights", "none", "--batch-size", "16", "--threads", "1", "--backbone", "resnet18"]


def _student() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Linear(6, 5), nn.ReLU()), nn.Linear(5, 3))  # top, head


def test_the_feature_term_is_a_projection_fitted_to_the_teachers_features() -> None:
    x = torch.randn(8, 6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, -1, -1]).float().unsqueeze(1)
    soft = torch.softmax(torch.randn(8, 3), 1)
    target = torch.randn(8, 4)
    y = torch.cat([soft, target, labels], 1)
    grads = {}
    for weight in (0.0, 2.0):
        model = _student()
        config = TrainConfig(teachers=["t"], distill_feature_weight=weight)
        task = DistillationTask(nn.CrossEntropyLoss(), None, 3, config, model[1], (5, 4))
        out = task.loss(model, (x, y))
        assert out.scored == 6  # the unlabeled items count for no accuracy
        base = DistillationTask(nn.CrossEntropyLoss(), None, 3, TrainConfig(teachers=["t"]))
        plain = base.loss(model, (x, y)).loss
        if weight:
            assert task.projection is not None
            assert [p for g in task.extra_params() for p in g["params"]] == list(task.projection.parameters())
            pooled = model[0](x)
            expected = plain + weight * nn.functional.mse_loss(task.projection(pooled), target)
            assert torch.allclose(out.loss, expected)
        else:
            assert task.projection is None and task.extra_params() == []
            assert torch.allclose(out.loss, plain)  # weight 0: exactly the soft-target loss of ADR 0054
        out.loss.backward()
        grads[weight] = model[0][0].weight.grad.clone()
    assert not torch.allclose(grads[0.0], grads[2.0])  # the student's own features learn from the teachers'


def test_teachers_features_are_joined_and_standardised_on_the_training_items() -> None:
    a = Teacher("a", "x", 8, torch.zeros(0, 2).numpy(), features=(torch.arange(8.0).view(4, 2) * 10).numpy())
    b = Teacher("b", "x", 8, torch.zeros(0, 2).numpy(), features=torch.ones(4, 3).numpy())
    joined = teacher_feature_targets([a, b], n_train=2, n_rows=4)
    assert joined.shape == (4, 5)
    assert abs(joined[:2, :2].mean()) < 1e-6 and joined[:2, 0].std() == pytest.approx(1.0)
    assert (joined[:, 2:] == 0).all()  # a constant feature is centred, not blown up


def test_cli_feature_loss_trains_a_partial_student_on_the_teachers_features(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABELTUNE_CACHE_DIR", str(cache))
    data = write_class_folder(tmp_path / "data", classes=2, per_class=8, size=32)
    for seed, name in ((0, "t1"), (1, "t2")):
        argv = ["train", str(data), *TINY, "--input-size", "32", "--epochs", "2", "--seed", str(seed)]
        assert main([*argv, "--out", str(tmp_path / name), "--json"]) == 0, capsys.readouterr().err
        capsys.readouterr()
    argv = ["distill", str(data), "--teachers", str(tmp_path / "t1"), str(tmp_path / "t2"),
            "--student", "resnet18", "--strategy", "partial", "--input-size", "32", "--epochs", "2",
            "--weights", "none", "--batch-size", "8", "--threads", "1"]  # fmt: skip
    pooled_before = set((cache / "features").glob("resnet18-pooled-*.sqlite"))
    assert main([*argv, "--feature-loss", "0.5", "--out", str(tmp_path / "s"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["distill"]
    assert report["feature_weight"] == 0.5
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["distill"]["feature_weight"] == 0.5
    # each teacher ran once per image for its logits and its pooled features (cached side by side)
    assert len(list((cache / "features").glob("resnet18-logits-*.sqlite"))) == 2
    assert len(set((cache / "features").glob("resnet18-pooled-*.sqlite")) - pooled_before) == 2
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert json.dumps(config).count('"distill_feature_weight": 0.5') == 1
    # the student is an ordinary run: its model has no trace of the (discarded) projection
    assert main(["predict", str(tmp_path / "s"), str(data / "class0"), "--json"]) == 0
    capsys.readouterr()
    assert main([*argv, "--feature-loss", "-1", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "--feature-loss must be in [0, 100]" in err and "Traceback" not in err
