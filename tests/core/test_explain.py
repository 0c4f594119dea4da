"""Grad-CAM points at the region that decides the class, for every seed backbone and the bundled one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltune.core.backbones import BACKBONES
from labeltune.core.datasets import scan
from labeltune.core.errors import UnusableInputError
from labeltune.core.explain import MIN_CELLS, class_index, explain, explain_image
from labeltune.core.train_config import TrainConfig
from labeltune.core.training import train


def marked_image(size: int, corner: tuple[int, int] | None, rng: np.random.Generator) -> np.ndarray:
    """Flat grey noise; with ``corner``, a checkered patch a third of the image wide at (row, column)."""
    pixels = rng.integers(100, 140, (size, size, 3)).astype(np.uint8)
    if corner is not None:
        side = size // 3
        yy, xx = np.mgrid[0:side, 0:side]
        y, x = corner
        pixels[y : y + side, x : x + side] = (((yy // 2 + xx // 2) % 2) * 255)[:, :, None]
    return pixels


def write_marked_set(root: Path, size: int, per_class: int = 8, seed: int = 0) -> Path:
    """``marked/`` (the patch anywhere) and ``plain/`` (no patch): only the patch decides the class."""
    rng = np.random.default_rng(seed)
    side = size // 3
    for name in ("marked", "plain"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            corner = tuple(int(v) for v in rng.integers(0, size - side, 2)) if name == "marked" else None
            Image.fromarray(marked_image(size, corner, rng)).save(root / name / f"{i:02d}.png")  # type: ignore[arg-type]
    return root


def train_marked(
    tmp_path: Path,
    backbone: str,
    size: int,
    weights: str = "none",
    accuracy: float | None = 1.0,
    **kwargs: object,
) -> Path:
    """A tiny run (features unless ``strategy`` is given) that tells ``marked`` from ``plain``."""
    values: dict[str, object] = dict(
        backbone=backbone, weights=weights, epochs=15, batch_size=8, input_size=size, patience=0, lr=3e-3
    )
    values.update(augment=False, device="cpu", **kwargs)
    result = train(scan(write_marked_set(tmp_path / "data", size)), TrainConfig(**values), tmp_path / "run")  # type: ignore[arg-type]
    if accuracy is not None:
        assert result.metrics["accuracy"] == accuracy
    return tmp_path / "run"


def hot_centre(heatmap: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of the hottest tenth of the map."""
    hot = heatmap >= np.quantile(heatmap, 0.9)
    rows, cols = np.nonzero(hot)
    return float(rows.mean()), float(cols.mean())


def assert_points_at_patch(run: Path, tmp_path: Path, size: int) -> list[str]:
    """Explain a patch top-left and one bottom-right: the heat follows the patch. Returns the layers."""
    rng = np.random.default_rng(99)
    side, half = size // 3, size // 2
    layers = []
    for name, corner in (("top-left", (2, 2)), ("bottom-right", (size - side - 2, size - side - 2))):
        path = tmp_path / f"{name}.png"
        Image.fromarray(marked_image(size, corner, rng)).save(path)
        result = explain_image(run, path, "marked")
        heat = result.heatmap
        assert heat.shape == (size, size) and heat.dtype == np.float32
        assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)
        quarters = {"top-left": heat[:half, :half].mean(), "bottom-right": heat[half:, half:].mean()}
        other = "bottom-right" if name == "top-left" else "top-left"
        assert quarters[name] > quarters[other], (name, quarters, result.layer)
        row, col = hot_centre(heat)
        inside = (row < half and col < half) if name == "top-left" else (row >= half and col >= half)
        assert inside, (name, row, col, result.layer)
        layers.append(result.layer)
    return layers


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "size", "weights"),
    [
        ("efficientnet_lite0", 128, "imagenet"),  # its ImageNet weights ship with the app
        ("alexnet", 128, "none"),
        ("densenet201", 128, "none"),
        ("inception_v3", 160, "none"),
    ],
)
def test_heatmap_follows_the_deciding_region(tmp_path: Path, backbone: str, size: int, weights: str) -> None:
    run = train_marked(tmp_path, backbone, size, weights)
    layers = assert_points_at_patch(run, tmp_path, size)
    assert set(layers) <= set(BACKBONES[backbone].cam_layers)


def test_tiny_inputs_fall_back_to_an_earlier_layer(tmp_path: Path) -> None:
    # at 64 px ResNet-18's last map is 2x2 and says little about where: an earlier, larger map is used
    run = train_marked(tmp_path, "resnet18", 64)
    layers = assert_points_at_patch(run, tmp_path, 64)
    assert layers[0] != BACKBONES["resnet18"].cam_layers[0]
    assert MIN_CELLS >= 2


def test_every_backbone_names_layers_that_exist() -> None:
    from labeltune.core.model import ModelConfig, build_classifier

    for name, spec in BACKBONES.items():
        model = build_classifier(ModelConfig.for_backbone(name, ["a", "b"]))
        modules = dict(model.named_modules())
        assert spec.cam_layers, name
        assert all(layer in modules for layer in spec.cam_layers), name


def test_class_is_the_predicted_one_or_a_named_one() -> None:
    probs = np.array([0.1, 0.7, 0.2])
    assert class_index(["a", "b", "c"], probs, None) == 1
    assert class_index(["a", "b", "c"], probs, "c") == 2
    with pytest.raises(UnusableInputError, match="unknown class 'd'; the run's classes are: a, b, c"):
        class_index(["a", "b", "c"], probs, "d")


def test_explain_picks_the_domain_and_names_the_class(tmp_path: Path) -> None:
    run = train_marked(tmp_path, "resnet18", 32, epochs=3)
    image = tmp_path / "data" / "marked" / "00.png"
    result = explain(run, image)
    assert result.domain == "image" and result.class_name == result.predicted
    other = explain(run, image, "plain")
    assert other.class_name == "plain" and other.predicted == result.predicted
    assert other.to_json()["class"] == "plain"


@pytest.mark.parametrize("strategy", ["partial", "full"])
def test_runs_of_every_strategy_are_explained(tmp_path: Path, strategy: str) -> None:
    # every strategy saves the same classifier (normalize, trunk, top, head): the same layers are hooked
    run = train_marked(tmp_path, "resnet18", 64, epochs=2, strategy=strategy, accuracy=None)
    result = explain_image(run, tmp_path / "data" / "marked" / "00.png", "marked")
    assert result.heatmap.shape == (64, 64) and result.layer in BACKBONES["resnet18"].cam_layers
    assert result.heatmap.max() == pytest.approx(1.0) or result.heatmap.max() == 0.0


def test_a_large_image_gets_a_smaller_map_of_the_same_shape(tmp_path: Path) -> None:
    run = train_marked(tmp_path, "resnet18", 32, epochs=1, accuracy=None)
    big = tmp_path / "big.png"
    Image.fromarray(np.full((600, 900, 3), 120, np.uint8)).save(big)
    assert explain_image(run, big).heatmap.shape == (600, 900)
    assert explain_image(run, big, max_side=300).heatmap.shape == (200, 300)
