"""Issue 15: a cached re-run (another learning rate, features cached) builds no backbone, imports no dynamo.

docs/adr/0059: the first *features* run keeps the frozen part in the cache; later runs build only the head,
train it without ``torch.optim`` and fit the unfamiliar-input score from a cheap eigendecomposition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import write_class_folder  # tests/conftest.py
from labeltune.core import backbones, lazy_backbone
from labeltune.core.datasets import scan
from labeltune.core.familiarity import _principal_directions
from labeltune.core.head_optim import HeadAdamW, HeadCosineSchedule
from labeltune.core.inference import predict_files
from labeltune.core.model import load_model
from labeltune.core.train_config import TrainConfig
from labeltune.core.training import train

REPO = Path(__file__).resolve().parents[2]
#: Small inputs keep the one backbone pass of the first run short (the bundled EfficientNet-Lite0).
SIZE = 64


def _config(**changes: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "backbone": "efficientnet_lite0",
        "weights": "imagenet",
        "strategy": "features",
        "epochs": 4,
        "input_size": SIZE,
        "val_fraction": 0.25,
        "augment": False,
        "seed": 3,
    }
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class_folder(tmp_path_factory.mktemp("cached") / "images", classes=3, per_class=10, size=32)


@pytest.fixture(scope="module")
def cache(data_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A feature cache after a first run on ``data_folder``: its features and its frozen backbone."""
    root = tmp_path_factory.mktemp("cache")
    first = train(scan(data_folder), _config(), root / "runs" / "first", cache_root=root)
    assert first.seconds_features > 0
    assert len(list((root / "backbones").glob("efficientnet_lite0-*.safetensors"))) == 1
    return root


class Builds:
    """Counts constructions of a backbone architecture (the slow part the re-run must skip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = backbones.build_architecture

        def spy(name: str) -> Any:
            self.count += 1
            return original(name)

        monkeypatch.setattr(backbones, "build_architecture", spy)
        monkeypatch.setattr(lazy_backbone, "build_architecture", spy)


def _state(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_rerun_builds_no_backbone_and_saves_the_eager_model(
    data_folder: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = Builds(monkeypatch)
    lazy = train(scan(data_folder), _config(), tmp_path / "lazy", cache_root=cache)
    assert builds.count == 0 and lazy.seconds_features == 0
    again = train(scan(data_folder), _config(lr=3e-3), tmp_path / "other-lr", cache_root=cache)
    assert builds.count == 0 and again.seconds_features == 0

    # The same run built eagerly (as before ADR 0059): the same file, tensor for tensor.
    monkeypatch.setattr(lazy_backbone, "build_lazy", lambda job: None)
    eager = train(scan(data_folder), _config(), tmp_path / "eager", cache_root=cache)
    assert builds.count > 0
    lazy_state, eager_state = _state(tmp_path / "lazy"), _state(tmp_path / "eager")
    assert list(lazy_state) == list(eager_state)
    assert all(torch.equal(lazy_state[k], eager_state[k]) for k in eager_state)
    assert not torch.equal(_state(tmp_path / "other-lr")["head.1.weight"], eager_state["head.1.weight"])
    assert lazy.metrics["accuracy"] == eager.metrics["accuracy"]
    for run in ("lazy", "eager"):
        assert (tmp_path / run / "familiarity.safetensors").is_file()
    assert (
        json.loads((tmp_path / "lazy" / "config.json").read_text())["model"]
        == json.loads((tmp_path / "eager" / "config.json").read_text())["model"]
    )

    # predict reads the lazy run's folder as any other: the same answers and unfamiliar scores
    paths = sorted(data_folder.glob("*/*.png"))[:6]
    lazy_answers, _ = predict_files(tmp_path / "lazy", paths, device="cpu")
    eager_answers, _ = predict_files(tmp_path / "eager", paths, device="cpu")
    assert [(p.label, p.confidence, p.ood_score) for p in lazy_answers] == [
        (p.label, p.confidence, p.ood_score) for p in eager_answers
    ]


def test_new_images_build_the_backbone_from_the_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    more = write_class_folder(tmp_path / "more", classes=3, per_class=12, size=32, seed=5)
    builds = Builds(monkeypatch)
    result = train(scan(more), _config(epochs=1), tmp_path / "more-run", cache_root=cache)
    assert builds.count == 1 and result.seconds_features > 0  # built once, from the cached frozen part
    model, _ = load_model(tmp_path / "more-run")
    eager = _state(cache / "runs" / "first")
    for key, value in model.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(value, eager[key]), key


def test_cached_rerun_from_the_cli_imports_no_dynamo(data_folder: Path, cache: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "desktop"),
        "LABELTUNE_CACHE_DIR": str(cache),
        "LABELTUNE_DATA_DIR": str(tmp_path / "data"),
        "LABELTUNE_CONFIG_DIR": str(tmp_path / "config"),
    }
    args = ["train", str(data_folder), "--epochs", "2", "--input-size", str(SIZE), "--json"]
    script = (
        "import sys, json; from labeltune.cli import main; rc = main(sys.argv[1:]); "
        "print(json.dumps({'rc': rc, 'loaded': [m for m in ('torch._dynamo', 'torchvision') "
        "if m in sys.modules]}), file=sys.stderr)"
    )
    done = subprocess.run(  # the CLI's defaults are _config()'s backbone and weights: its cache serves
        [sys.executable, "-c", script, *args, "--out", str(tmp_path / "rerun"), "--lr", "0.002"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"rc": 0, "loaded": []}, done.stderr
    summary = json.loads((tmp_path / "rerun" / "metrics.json").read_text())["summary"]
    assert summary["seconds_features"] == 0 and summary["epochs_run"] == 2


def test_head_optimiser_is_torchs_adamw_step_for_step() -> None:
    def fit(ours: bool) -> tuple[list[torch.Tensor], list[float], dict[str, Any]]:
        torch.manual_seed(0)
        head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(12, 3))
        x, y = torch.randn(48, 12), torch.arange(48) % 3
        groups = [{"params": list(head.parameters())}]
        opt: Any = (
            HeadAdamW(groups, 0.01, 0.05) if ours else torch.optim.AdamW(groups, 0.01, weight_decay=0.05)
        )
        sched: Any = (
            HeadCosineSchedule(opt, 5) if ours else torch.optim.lr_scheduler.CosineAnnealingLR(opt, 5)
        )
        lrs = []
        for _ in range(7):  # past T_max: the schedule's second half-period too
            for start in range(0, 48, 16):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(
                    head(x[start : start + 16]), y[start : start + 16]
                ).backward()
                opt.step()
            lrs.append(opt.param_groups[-1]["lr"])
            sched.step()
        return [p.detach().clone() for p in head.parameters()], lrs, opt.state_dict()

    ours, theirs = fit(True), fit(False)
    assert all(torch.equal(a, b) for a, b in zip(ours[0], theirs[0], strict=True))
    assert ours[1] == theirs[1]
    assert ours[2]["state"].keys() == theirs[2]["state"].keys()
    assert ours[2]["param_groups"][0].keys() == theirs[2]["param_groups"][0].keys()
    # a checkpoint of either continues with the other
    resumed = HeadAdamW([{"params": [torch.nn.Parameter(p.clone()) for p in theirs[0]]}], 0.01)
    resumed.load_state_dict(theirs[2])
    assert float(next(iter(resumed.state.values()))["step"]) == 21.0


@pytest.mark.parametrize("shape", [(120, 300), (300, 40), (9, 9)])
def test_principal_directions_are_the_svds(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape) * np.linspace(4.0, 0.1, shape[1])
    values, vt = _principal_directions(x, 6)
    _, singular, svd_vt = np.linalg.svd(x, full_matrices=False)
    assert len(values) == min(shape)
    np.testing.assert_allclose(values, singular**2 / shape[0], rtol=1e-8, atol=1e-9 * singular[0] ** 2)
    np.testing.assert_allclose(np.abs((vt * svd_vt[: len(vt)]).sum(1)), 1.0, atol=1e-8)
