"""Texture only in the final refit of the decided phases (``predict --texture auto``; ADR 0065).

The phases are decided without preferred orientation; the decided set is refitted once with a
March–Dollase texture where significant. The network is a tiny one trained for one epoch: the tests give
``_decide`` the probabilities themselves, as ``tests/core/test_xrd_model.py`` does, so only the fit decides.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import textured_peaks  # tests/conftest.py
from labeltune.cli import main
from labeltune.core.xrd.dara import dara_cifs
from labeltune.core.xrd.fit_engine import Model
from labeltune.core.xrd.inference import XrdModel, load_xrd_model
from labeltune.core.xrd.library import Library, build_library
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd

CIFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs"
COD = ("1000017", "1530150", "9012601", "1000043", "1010942")  # corundum, rutile, quartz, fluorite, anatase
DARA = ("V2O5", "ZnO", "NiO")
WAVELENGTH = 1.5406
needs_data = pytest.mark.skipif(
    not all((CIFS / f"{n}.cif").is_file() for n in COD), reason="../shared/data/xrd is not present"
)
pytestmark = needs_data


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> XrdModel:
    """A run over the five COD phases and three dara ones; its network barely trained (probs are given)."""
    root = tmp_path_factory.mktemp("texrun")
    cifs = [CIFS / f"{n}.cif" for n in COD] + [c for c in dara_cifs() if c.stem in DARA]
    library = build_library(cifs, root / "lib", two_theta_range=(20.0, 70.0))
    assert library.path is not None
    config = XrdTrainConfig(epochs=1, patterns_per_epoch=64, batch_size=32, validation_patterns=32, seed=0)
    train_xrd(library.path, config, root / "run")
    return load_xrd_model(root / "run")


def _write_xy(path: Path, two_theta: np.ndarray, values: np.ndarray) -> Path:
    lines = [f"{t:.3f}\t{v:.2f}" for t, v in zip(two_theta, values, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _decide(model: XrdModel, pattern: Pattern, present: dict[str, float], texture: bool) -> object:
    probs = np.full(len(model.names), 0.001)
    for name, p in present.items():
        probs[model.names.index(name)] = p
    x = np.zeros(len(model.grid), dtype=np.float32)
    logits = np.zeros(len(model.names), dtype=np.float32)
    return model._decide(pattern, x, probs, logits, fit=True, activation=False, texture=texture)


def _textured_mixture(library: Library, tmp_path: Path) -> Path:
    """V2O5 60 wt % with r = 0.7 along [100] (platelets) + ZnO 40 wt %, Poisson counts, Kα1+2."""
    names = ("V2O5", "ZnO")
    x = np.arange(20.0, 70.0, 0.02)
    peaks = [textured_peaks(library, "V2O5", (1, 0, 0), 0.7), library.peaks["ZnO"]]
    model = Model(peaks, [library.phase(n).cell for n in names], WAVELENGTH, 1.5444)
    profiles = model.profiles(x, model.initial(0.08), 0.5)
    y = profiles @ np.array(
        [f * library.phase(n).scattering_power for f, n in zip((0.6, 0.4), names, strict=True)]
    )
    y = y / y.max() * 20_000 + 200 + 50 * np.exp(-(x - 20) / 20)
    y = np.random.default_rng(3).poisson(y).astype(float)
    return _write_xy(tmp_path / "textured.xy", x, y)


def test_random_intensity_errors_get_the_same_phases_with_texture_auto(run: XrdModel, tmp_path: Path) -> None:
    # ADR 0063's addendum: corundum 60 + quartz 40 with the simulator's random per-peak intensity errors;
    # texture during the decisions let a 1 wt % false anatase in
    cfg = SimulationConfig(two_theta_min=20.0, two_theta_max=70.0, points=2501, max_counts=(5e4, 5e4),
                           impurity_probability=0.0, monochromatic=True)  # fmt: skip
    batch = simulate(run.library, 1, cfg, seed=7, composition={"1000017": 0.6, "9012601": 0.4})
    path = _write_xy(tmp_path / "mix.xy", batch.two_theta, batch.x[0] * 1000)
    pattern = read_pattern(path, default_wavelength=WAVELENGTH)
    present = {"1000017": 0.99, "1000043": 0.95, "9012601": 0.3}  # fluorite absent, quartz unsure
    off = _decide(run, pattern, present, texture=False)
    auto = _decide(run, pattern, present, texture=True)
    assert [p.name for p in auto.phases] == [p.name for p in off.phases] == ["1000017", "9012601"]
    assert auto.texture == "auto" and off.texture == "off"
    for prediction in (off, auto):
        fractions = {p.name: p.fraction for p in prediction.phases}
        assert fractions["1000017"] == pytest.approx(0.6, abs=0.025), prediction.warnings
    assert all(p.fraction_esd is not None and p.fraction_esd > 0 for p in auto.phases)
    assert auto.alternatives == off.alternatives  # the competing sets are the decision's, texture off


def test_a_real_texture_is_refined_in_the_final_fit_and_fixes_the_fraction(
    run: XrdModel, tmp_path: Path
) -> None:
    pattern = read_pattern(_textured_mixture(run.library, tmp_path), default_wavelength=WAVELENGTH)
    present = {"V2O5": 0.99, "ZnO": 0.99}
    off = _decide(run, pattern, present, texture=False)
    auto = _decide(run, pattern, present, texture=True)
    assert {p.name for p in auto.phases} == {p.name for p in off.phases} == {"V2O5", "ZnO"}
    error = {
        mode: abs(next(p.fraction for p in prediction.phases if p.name == "V2O5") - 0.6)
        for mode, prediction in (("off", off), ("auto", auto))
    }
    assert error["auto"] < 0.015 and error["off"] > 2 * error["auto"], error
    v2o5 = next(p for p in auto.phases if p.name == "V2O5")
    assert v2o5.preferred_orientation is not None
    assert v2o5.preferred_orientation[0] == (1, 0, 0)
    assert v2o5.preferred_orientation[1] == pytest.approx(0.7, abs=0.05)
    off_v2o5 = next(p for p in off.phases if p.name == "V2O5")
    assert v2o5.fraction_esd is not None  # the model choice (texture or not) is part of the esd
    assert v2o5.fraction_esd >= abs(v2o5.fraction - off_v2o5.fraction) / 2 > 0.02
    assert all(p.preferred_orientation is None for p in off.phases)
    assert auto.residual is not None and off.residual is not None and auto.residual < off.residual / 2
    assert any(w.startswith("texture: V2O5 r = 0.7") for w in auto.warnings)


def test_cli_texture_option_reaches_the_fit_and_a_bad_value_exits_2(
    run: XrdModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _textured_mixture(run.library, tmp_path)
    rows = {}
    for mode in ("auto", "off", None):  # None: not given, off (ADR 0065)
        args = ["predict", str(run.run_dir), str(path), "--wavelength", "1.5406"]
        assert main([*args, *(["--texture", mode] if mode else []), "--json"]) == 0
        (rows[mode],) = json.loads(capsys.readouterr().out)
        assert rows[mode]["texture"] == (mode or "off")
    oriented = {m: [p["name"] for p in rows[m]["phases"] if "preferred_orientation" in p] for m in rows}
    assert oriented["off"] == oriented[None] == []
    assert "V2O5" in oriented["auto"], rows["auto"]
    v2o5 = next(p for p in rows["auto"]["phases"] if p["name"] == "V2O5")
    assert v2o5["preferred_orientation"]["direction"] == [1, 0, 0]
    assert main(["predict", str(run.run_dir), str(path), "--texture", "on"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--texture" in err[0] and "auto" in err[0] and "Traceback" not in err[0]
