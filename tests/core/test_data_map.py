"""Issue 12, the data map's core: PCA coordinates of a run's features, predictions, lasso membership."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_class_folder  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune.core.audit_run import pooled_run_features
from labeltune.core.data_map import image_map, map_coordinates, points_in_polygon
from labeltune.core.datasets import scan
from labeltune.core.projection import project
from labeltune.core.training import TrainConfig, train


def test_points_in_polygon_square_and_concave() -> None:
    points = np.array([[0.5, 0.5], [1.5, 0.5], [-0.1, 0.2], [0.5, 0.9], [0.9, 0.1]])
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    assert points_in_polygon(points, square).tolist() == [True, False, False, True, True]
    # a "C": the notch (x in 0.3..1, y in 0.3..0.7) is outside
    c_shape = np.array([[0, 0], [1, 0], [1, 0.3], [0.3, 0.3], [0.3, 0.7], [1, 0.7], [1, 1], [0, 1]])
    assert points_in_polygon(points, c_shape).tolist() == [False, False, False, True, True]
    assert not points_in_polygon(points, square[:2]).any()  # two vertices enclose nothing


def test_map_coordinates_are_the_projection() -> None:
    features = np.random.default_rng(1).normal(size=(50, 16)).astype(np.float16)
    np.testing.assert_array_equal(map_coordinates(features), project(features.astype(np.float32)))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("map")
    data = write_class_folder(root / "data", classes=3, per_class=8, size=32)
    config = TrainConfig(backbone="resnet18", weights="none", input_size=32, epochs=2, batch_size=8)
    train(scan(data), config, root / "run", cache_root=root / "cache")
    return root / "run", sorted(data.rglob("*.png"))


def test_image_map_projects_the_runs_pooled_features(run: tuple[Path, list[Path]], tmp_path: Path) -> None:
    run_dir, paths = run
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = image_map(run_dir, [*paths, broken], device="cpu")
    assert result.paths == paths
    assert result.skipped and result.skipped[0][0] == str(broken)
    features = pooled_run_features(run_dir, paths, "cpu").extracted.features.astype(np.float32)
    np.testing.assert_allclose(result.coords, project(features), rtol=1e-5, atol=1e-5)
    assert result.coords.shape == (len(paths), 2)
    assert set(result.predicted) <= set(result.classes) and result.classes == ["class0", "class1", "class2"]
