"""``--radiation``: the anode of files that state none; a file stating another is refused (ADR 0058)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from labeltune.cli import main
from labeltune.core.xrd.radiation import (
    RadiationConflictError,
    RadiationError,
    parse_radiation,
    radiation_used,
    with_radiation,
)
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.results import XrdPrediction
from labeltune.core.xrd.shipped import shipped_model_dir

MODEL = shipped_model_dir()
DEMO = Path(str(files("labeltune") / "resources" / "demos" / "xrd" / "patterns"))
CO_KA1 = 1.78897


def test_radiation_names_and_wavelengths() -> None:
    co = parse_radiation("CoKa")
    assert (co.name, co.wavelength, co.wavelength2, co.ka2_ratio) == ("CoKa", CO_KA1, 1.79285, 0.5)
    mono = parse_radiation("cu Kα1")
    assert (mono.name, mono.wavelength, mono.ka2_ratio) == ("CuKa1", 1.54056, 0.0)
    assert parse_radiation("mo-ka").wavelength == 0.70930
    assert [parse_radiation(f"{a}Ka").wavelength for a in ("Cr", "Fe", "Ag")] == [2.28970, 1.93604, 0.55941]
    number = parse_radiation("0.7093")
    assert (number.wavelength, number.wavelength2) == (0.7093, None)
    assert "Mo Kα1" in number.name
    with pytest.raises(RadiationError, match="in nm"):
        parse_radiation("0.154056")
    with pytest.raises(RadiationError, match="CoKa"):
        parse_radiation("XyKa")
    with pytest.raises(RadiationError):
        parse_radiation("12")


def test_a_stated_wavelength_must_agree(tmp_path: Path) -> None:
    stated = _rruff(tmp_path / "stated.txt", 1.541838)
    pattern = read_pattern(stated)
    assert with_radiation(pattern, parse_radiation("CuKa1")).wavelength == 1.541838  # the file's own value
    with pytest.raises(RadiationConflictError, match=r"stated\.txt: the file states 1\.54184 Å.*CoKa"):
        with_radiation(pattern, parse_radiation("CoKa"))
    plain = read_pattern(_rruff(tmp_path / "plain.xy", None))
    co = with_radiation(plain, parse_radiation("CoKa"))
    assert (co.wavelength, co.wavelength2, co.ka2_ratio, co.wavelength_source) == (
        CO_KA1,
        1.79285,
        0.5,
        "setting",
    )
    assert radiation_used(co) == {
        "name": "CoKa",
        "wavelength": CO_KA1,
        "wavelength2": 1.79285,
        "source": "given",
    }
    saved = XrdPrediction(path="plain.xy", phases=[], radiation=radiation_used(co)).to_json()
    assert XrdPrediction.from_json(saved).radiation == saved["radiation"] == radiation_used(co)
    assert "radiation" not in XrdPrediction(path="x.xy", phases=[]).to_json()


def _rruff(path: Path, wavelength: float | None) -> Path:
    x = np.linspace(10, 80, 300)
    y = 100 + 1000 * np.exp(-(((x - 30.0) / 0.3) ** 2))
    head = f"##X-RAY WAVELENGTH={wavelength}\n" if wavelength else ""
    path.write_text(
        head + "".join(f"{a:.3f}, {b:.1f}\n" for a, b in zip(x, y, strict=True)), encoding="utf-8"
    )
    return path


def _predict(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["predict", str(MODEL), *args, "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    return result


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
def test_a_co_ka_pattern_as_xy_fits_only_with_radiation_coka(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = read_pattern(DEMO / "Mn2O3+LiF.xy", default_wavelength=1.5406)
    co = measured.converted(CO_KA1)  # the same sample as a Co-tube diffractometer records it
    path = tmp_path / "sample.xy"
    path.write_text("".join(f"{a:.5f} {b:.1f}\n" for a, b in zip(co.two_theta, co.intensity, strict=True)))
    assert co.two_theta[-1] > 110  # the pattern really sits at Co angles

    reference = _predict(capsys, str(DEMO / "Mn2O3+LiF.xy"))
    given = _predict(capsys, str(path), "--radiation", "CoKa")
    assumed = _predict(capsys, str(path))

    truth = {"Mn2O3", "LiF"}
    assert {p["formula"] for p in reference["phases"]} == truth
    assert {p["formula"] for p in given["phases"]} == truth
    assert given["residual"] == pytest.approx(reference["residual"], abs=0.005)
    assert given["radiation"] == {
        "name": "CoKa",
        "wavelength": CO_KA1,
        "wavelength2": 1.79285,
        "source": "given",
    }
    # read as the model's Cu Kα (what happened before --radiation): wrong d-spacings, wrong or poor fit
    assert assumed["radiation"]["source"] == "assumed"
    assert {p["formula"] for p in assumed["phases"]} != truth or assumed["residual"] > 2 * given["residual"]
    assert any("give --radiation" in w for w in assumed["warnings"])


@pytest.mark.skipif(MODEL is None, reason="the shipped XRD model is not in models/")
def test_a_conflicting_header_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stated = _rruff(tmp_path / "cu.txt", 1.54056)
    assert main(["predict", str(MODEL), str(stated), "--radiation", "CoKa"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert "cu.txt: the file states 1.54056 Å (Cu Kα1), not CoKa (1.78897 Å)" in line
    assert "Traceback" not in captured.err and captured.out == ""
    assert main(["predict", str(MODEL), str(stated), "--radiation", "Co"]) == 2
    assert "give an anode" in capsys.readouterr().err
    assert main(["predict", str(MODEL), str(stated), "--radiation", "CoKa", "--wavelength", "1.79"]) == 2
    assert "not both" in capsys.readouterr().err
    (tmp_path / "labels.csv").write_text("path,phases\ncu.txt,LiF\n", encoding="utf-8")
    assert main(["evaluate", str(MODEL), str(tmp_path), "--radiation", "CoKa"]) == 2  # evaluate too
    assert "not CoKa (1.78897 Å)" in capsys.readouterr().err
    agreed = _predict(capsys, str(stated), "--radiation", "CuKa", "--no-fit")
    assert agreed["radiation"] == {"name": "CuKa", "wavelength": 1.54056, "source": "file"}
