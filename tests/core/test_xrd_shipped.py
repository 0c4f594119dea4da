"""The shipped XRD model (models/xrd-li-mn-ti-o-f) on the 8 measured Li-Mn-Ti-O-F patterns of the demo."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest

from labeltune.cli import main
from labeltune.core.xrd.metrics import canonical_formula
from labeltune.core.xrd.shipped import shipped_model_dir

MODEL = shipped_model_dir()
pytestmark = pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")


def _demo_patterns() -> list[Path]:
    folder = Path(str(files("labeltune") / "resources" / "demos" / "xrd" / "patterns"))
    return sorted(folder.glob("*.xy"))


def test_the_shipped_model_is_small_and_complete() -> None:
    assert MODEL is not None
    config = json.loads((MODEL / "config.json").read_text())
    assert config["domain"] == "xrd" and len(config["phases"]) == 56
    assert config["grid"] == {"two_theta_min": 10.0, "two_theta_max": 100.0, "points": 4501}
    assert (MODEL / "model.safetensors").stat().st_size < 8_000_000
    assert (MODEL / "library" / "library.json").is_file()


def test_at_least_seven_of_eight_measured_phase_sets(capsys: pytest.CaptureFixture[str]) -> None:
    patterns = _demo_patterns()
    assert len(patterns) == 8
    assert main(["predict", str(MODEL), *map(str, patterns), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    exact = 0
    for result in results:
        truth = {canonical_formula(f) for f in Path(result["path"]).stem.split("+")}
        called = {canonical_formula(p["formula"]) for p in result["phases"]}
        exact += truth == called
        assert all(0.0 <= p["fraction"] <= 1.0 for p in result["phases"])
        assert sum(p["fraction"] for p in result["phases"]) == pytest.approx(1.0, abs=1e-3)
    assert exact >= 7, results
