"""``predict --internal-standard NAME=WT%``: absolute fractions and amorphous content (issue 14, ADR 0046)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labeltune.cli import main
from labeltune.core.errors import UnusableInputError
from labeltune.core.xrd.internal_standard import (
    apply_internal_standard,
    parse_internal_standard,
    resolve_standard,
)
from labeltune.core.xrd.library import load_library
from labeltune.core.xrd.results import PhaseCall, XrdPrediction
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.simulate import SimulationConfig, simulate

MODEL = shipped_model_dir()
needs_model = pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("LiF=20", ("LiF", 0.2)), (" Al2O3 = 12,5 % ", ("Al2O3", 0.125)), ("corundum=5.0%", ("corundum", 0.05))],
)
def test_the_spec_is_parsed(spec: str, expected: tuple[str, float]) -> None:
    name, value = parse_internal_standard(spec)
    assert (name, value) == (expected[0], pytest.approx(expected[1]))


@pytest.mark.parametrize("spec", ["LiF", "LiF=", "=20", "LiF=0", "LiF=100", "LiF=abc"])
def test_a_bad_spec_is_refused(spec: str) -> None:
    with pytest.raises(UnusableInputError, match="internal-standard"):
        parse_internal_standard(spec)


def test_absolute_fractions_and_amorphous_with_esds() -> None:
    # the standard, spiked at 20 %, reads 25 % of the crystalline phases: they are 80 % of the sample
    prediction = XrdPrediction(
        "s.xy",
        [
            PhaseCall("Std", "AB", 1.0, fraction=0.25, fraction_esd=0.01),
            PhaseCall("X", "X", 1.0, fraction=0.45, fraction_esd=0.02),
            PhaseCall("Y", "Y", 1.0, fraction=0.30, fraction_esd=0.015),
        ],
    )
    apply_internal_standard(prediction, "Std", 0.20)
    absolute = {p.name: p.absolute_fraction for p in prediction.phases}
    assert absolute == pytest.approx({"Std": 0.20, "X": 0.36, "Y": 0.24})
    assert prediction.amorphous == pytest.approx(0.20)
    assert prediction.amorphous_esd == pytest.approx(0.2 * 0.01 / 0.25**2)  # W σ_r / r²
    assert prediction.phases[1].absolute_fraction_esd == pytest.approx(
        0.36 * np.hypot(0.02 / 0.45, 0.01 / 0.25)
    )
    data = XrdPrediction.from_json(json.loads(json.dumps(prediction.to_json())))
    assert data.amorphous == pytest.approx(0.2) and data.internal_standard == ("Std", 0.2)
    assert data.phases[1].absolute_fraction == pytest.approx(0.36)
    assert data.phases[1].fraction_esd == pytest.approx(0.02)


def test_a_standard_the_fit_did_not_find_is_a_warning_not_a_number() -> None:
    prediction = XrdPrediction("s.xy", [PhaseCall("X", "X", 1.0, fraction=1.0)])
    apply_internal_standard(prediction, "Std", 0.1)
    assert prediction.amorphous is None
    assert any("internal standard Std was not found" in w for w in prediction.warnings)


@needs_model
def test_the_standard_is_found_by_name_or_unique_formula_and_refused_otherwise() -> None:
    assert MODEL is not None
    library = load_library(MODEL / "library")
    assert resolve_standard(library, "LiF_225") == "LiF_225"
    assert resolve_standard(library, "LiF") == "LiF_225"
    with pytest.raises(UnusableInputError, match="several library phases"):
        resolve_standard(library, "TiO2")
    with pytest.raises(UnusableInputError, match="not a phase of the model's library"):
        resolve_standard(library, "Al2O3")


@needs_model
def test_cli_refuses_a_standard_outside_the_library_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = tmp_path / "p.xy"
    pattern.write_text("\n".join(f"{10 + 0.1 * i:.2f} {100 + i % 7}" for i in range(900)) + "\n")
    assert main(["predict", str(MODEL), str(pattern), "--internal-standard", "Al2O3=20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Al2O3" in err[0] and "Traceback" not in err[0]
    assert main(["predict", str(MODEL), str(pattern), "--internal-standard", "LiF"]) == 2
    assert "NAME=WT%" in capsys.readouterr().err


@needs_model
def test_cli_reports_twenty_percent_amorphous_from_a_spiked_simulated_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert MODEL is not None
    library = load_library(MODEL / "library")
    # 20 % LiF standard, 60 % crystalline sample, 20 % amorphous (a broad hump the fit puts in background)
    config = SimulationConfig(
        texture_sigma=0.0, impurity_probability=0.0, crystallite_nm=(80.0, 300.0), max_counts=(2e4, 2e4),
        background=(0.05, 0.05), ka2_probability=1.0,
    )  # fmt: skip
    batch = simulate(library, 1, config, 5, composition={"LiF_225": 0.2, "TiO2_141": 0.35, "MnO_225": 0.25})
    x = batch.two_theta
    y = batch.x[0] * 2e4 + 1600.0 * np.exp(-0.5 * ((x - 25.0) / 4.0) ** 2)
    path = tmp_path / "spiked.xy"
    path.write_text("\n".join(f"{a:.3f} {b:.1f}" for a, b in zip(x, y, strict=True)) + "\n")
    args = ["predict", str(MODEL), str(path), "--wavelength", "1.5406", "--internal-standard", "LiF=20"]
    assert main([*args, "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["internal_standard"] == {"name": "LiF_225", "weight_fraction": 0.2}
    assert result["amorphous"] == pytest.approx(0.20, abs=0.04), result
    # without a particle size the esd holds what 5 µm grains would do (ADR 0068): LiF absorbs a tenth
    # of what TiO2 and MnO do, so the grain size could move the standard's share, and the amorphous
    # content with it, by far more than counting noise
    assert 0.05 < result["amorphous_esd"] < 0.25
    assert any("large absorption contrast" in w for w in result["warnings"]), result["warnings"]
    phases = {p["name"]: p for p in result["phases"]}
    assert set(phases) == {"LiF_225", "TiO2_141", "MnO_225"}, result
    assert phases["LiF_225"]["absolute_fraction"] == pytest.approx(0.2)
    assert sum(p["absolute_fraction"] for p in phases.values()) + result["amorphous"] == pytest.approx(
        1.0, abs=1e-3
    )
    assert all(p["fraction_esd"] > 0 for p in phases.values())
