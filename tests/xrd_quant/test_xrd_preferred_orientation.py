"""March–Dollase preferred orientation in the phase fit (``fit_engine.Texture``, ``quantify``; ADR 0063)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import textured_peaks  # tests/conftest.py
from labeltune.core.xrd.dara import dara_cifs
from labeltune.core.xrd.fit_engine import Model, Texture, march_dollase
from labeltune.core.xrd.library import Library, Peaks, build_library
from labeltune.core.xrd.pattern import Pattern
from labeltune.core.xrd.quantify import fit_phases
from labeltune.core.xrd.results import PhaseCall

WAVELENGTH = 1.5406


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    cifs = [c for c in dara_cifs() if c.stem in ("Li2CO3", "NiO", "V2O5", "ZnO")]
    return build_library(cifs, tmp_path_factory.mktemp("po") / "library")


def _mixture(
    library: Library, names: tuple[str, str], fractions: tuple[float, float], peaks: list[Peaks]
) -> Any:
    x = np.arange(10.0, 80.0, 0.02)
    model = Model(peaks, [library.phase(n).cell for n in names], WAVELENGTH, 1.5444)
    profiles = model.profiles(x, model.initial(0.08), 0.5)
    y = profiles @ np.array(
        [f * library.phase(n).scattering_power for f, n in zip(fractions, names, strict=True)]
    )
    y = y / y.max() * 20_000 + 200 + 50 * np.exp(-(x - 10) / 20)
    y = np.random.default_rng(3).poisson(y).astype(float)
    return Pattern(x, y, source=Path("mix.xy"), format="xy", wavelength=WAVELENGTH)


def test_the_march_dollase_factor_keeps_the_powder_average() -> None:
    cos = np.linspace(0.0, 1.0, 200_001)  # uniform in cos α = uniform over the sphere
    for r in (0.6, 0.7, 1.0, 1.6):
        assert float(np.mean(march_dollase(r, cos**2))) == pytest.approx(1.0, abs=1e-3)
    assert march_dollase(0.7, np.array([1.0]))[0] == pytest.approx(0.7**-3)  # platelets: 00l stronger


def test_candidate_directions_are_deduplicated_by_symmetry(library: Library) -> None:
    nio = library.phase("NiO")
    cubic = Texture(library.peaks["NiO"], nio.cell, nio.space_group)
    assert cubic.directions() == [(0, 0, 1), (1, 1, 0), (1, 1, 1)]
    li = library.phase("Li2CO3")
    assert (
        len(Texture(library.peaks["Li2CO3"], li.cell, li.space_group).directions()) == 7
    )  # 2/m: all distinct


@pytest.mark.parametrize(
    ("names", "direction"), [(("Li2CO3", "NiO"), (0, 1, 0)), (("V2O5", "ZnO"), (0, 0, 1))]
)
def test_a_textured_mixture_is_fitted_with_its_direction_and_r(
    library: Library, names: tuple[str, str], direction: tuple[int, int, int]
) -> None:
    peaks = [textured_peaks(library, names[0], direction, 0.7), library.peaks[names[1]]]
    pattern = _mixture(library, names, (0.6, 0.4), peaks)
    fit = fit_phases(pattern, library, list(names), texture=True)
    textured, other = fit.phases
    assert textured.preferred_orientation is not None
    assert textured.preferred_orientation[0] == direction
    assert textured.preferred_orientation[1] == pytest.approx(0.7, abs=0.03)
    assert other.preferred_orientation is None
    assert fit.rwp < 0.06
    assert textured.weight_fraction == pytest.approx(0.6, abs=0.01)
    assert f"texture: {names[0]} r = 0.7" in " ".join(fit.warnings)
    without = fit_phases(pattern, library, list(names), texture=False)
    assert without.rwp > 2 * fit.rwp


def test_an_untextured_mixture_keeps_r_1(library: Library) -> None:
    names = ("Li2CO3", "NiO")
    pattern = _mixture(library, names, (0.6, 0.4), [library.peaks[n] for n in names])
    fit = fit_phases(pattern, library, list(names), texture=True)
    assert [p.preferred_orientation for p in fit.phases] == [None, None]
    assert not [w for w in fit.warnings if w.startswith("texture")]
    assert fit.phases[0].weight_fraction == pytest.approx(0.6, abs=0.01)


def test_the_prediction_json_carries_the_orientation() -> None:
    call = PhaseCall("Li2CO3", "Li2CO3", 0.99, fraction=0.3, preferred_orientation=((0, 1, 0), 0.7234))
    data = call.to_json()
    assert data["preferred_orientation"] == {"direction": [0, 1, 0], "r": 0.723}
    assert PhaseCall.from_json(data).preferred_orientation == ((0, 1, 0), 0.723)
    assert "preferred_orientation" not in PhaseCall("NiO", "NiO", 0.9).to_json()
