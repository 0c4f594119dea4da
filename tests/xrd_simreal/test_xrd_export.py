"""``labeltune export XRD_RUN --format onnx``: the 1-D CNN under onnxruntime, with its library and card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labeltune.cli import main
from labeltune.core.xrd.dara import dara_cifs
from labeltune.core.xrd.library import build_library, load_library
from labeltune.core.xrd.run_files import load_xrd_net
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd

TINY = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}


@pytest.fixture(scope="module")
def xrd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch run on three of the dara phases."""
    base = tmp_path_factory.mktemp("xrd-export")
    cifs = [p for p in dara_cifs() if p.stem in ("NiO", "TiO2", "ZnO")]
    library = build_library(cifs, base / "library", two_theta_range=(20.0, 70.0))
    run = base / "run"
    train_xrd(library.path, XrdTrainConfig(epochs=1, **TINY), run)  # type: ignore[arg-type]
    return run


def _patterns(run: Path, n: int) -> np.ndarray:
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    grid = config["grid"]
    sim = SimulationConfig(two_theta_min=grid["two_theta_min"], two_theta_max=grid["two_theta_max"],
                           points=grid["points"], max_phases=2)  # fmt: skip
    return simulate(load_library(run / "library"), n, sim, seed=7).x * 5000.0


def test_onnx_export_of_an_xrd_run_matches_pytorch_and_carries_its_library(
    xrd_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx
    import onnxruntime as ort

    out = tmp_path / "model.onnx"
    assert main(["export", str(xrd_run), "--format", "onnx", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    card = json.loads((tmp_path / "model.onnx.card.json").read_text(encoding="utf-8"))
    assert card["domain"] == "xrd"
    assert card["phases"] == ["NiO", "TiO2", "ZnO"]
    assert card["formulas"] == ["NiO", "TiO2", "ZnO"]
    assert card["wavelength"] == pytest.approx(1.5406, abs=1e-3)
    assert card["grid"]["two_theta_min"] == pytest.approx(20.0) and card["grid"]["points"] > 1000
    assert card["outputs"] == ["presence_logits", "probabilities", "fractions"]
    assert "| 1 | TiO2 | TiO2 | I 41/a m d | TiO2.cif |" in (tmp_path / "model.onnx.card.md").read_text(
        "utf-8"
    )
    assert load_library(tmp_path / "model.onnx.library").names == ["NiO", "TiO2", "ZnO"]
    embedded = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(embedded["labeltune"])["phases"] == ["NiO", "TiO2", "ZnO"]

    patterns = _patterns(xrd_run, 5).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits, probabilities, fractions = session.run(None, {"pattern": patterns})
    net, _, _ = load_xrd_net(xrd_run)
    with torch.no_grad():
        presence, _ = net(torch.from_numpy(patterns))
    np.testing.assert_allclose(logits, presence.numpy(), atol=1e-3)
    np.testing.assert_allclose(probabilities, torch.sigmoid(presence).numpy(), atol=1e-4)
    called = probabilities >= 0.5
    assert np.allclose(fractions[~called], 0.0)
    sums = fractions.sum(axis=1)
    assert np.allclose(sums[called.any(axis=1)], 1.0, atol=1e-5)


def test_torchscript_export_of_an_xrd_run_gives_the_same_outputs(xrd_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    assert main(["export", str(xrd_run), "--format", "torchscript", "--out", str(out)]) == 0
    with pytest.warns(FutureWarning):  # torch.jit is deprecated, still the format people ask for
        loaded = torch.jit.load(str(out))
    patterns = torch.from_numpy(_patterns(xrd_run, 3).astype(np.float32))
    net, _, _ = load_xrd_net(xrd_run)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(patterns)[0].numpy(), net(patterns)[0].numpy(), atol=1e-4)


def test_an_xrd_export_into_its_own_run_folder_is_one_line_exit_2(
    xrd_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(xrd_run), "--format", "onnx", "--out", str(xrd_run / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "outside the run folder" in err
    assert not (xrd_run / "m.onnx").exists()
