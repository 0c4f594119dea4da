"""Measured reference patterns in the library (ADR 0047): RIR, fractions, save/load, simulator, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import FCC_HKL, PRIMITIVE_HKL, cubic_phase  # tests/conftest.py
from labeltune.core.xrd.library import Library, Peaks, Phase, load_library, save_library
from labeltune.core.xrd.pattern import make_pattern
from labeltune.core.xrd.quantify import fit_phases
from labeltune.core.xrd.reference_build import add_measured_references, corundum
from labeltune.core.xrd.simulate import SimulationConfig, simulate

WAVELENGTH = 1.5406
SETTINGS = SimulationConfig(
    points=4501,
    wavelength=WAVELENGTH,
    texture_sigma=0.0,
    impurity_probability=0.0,
    crystallite_nm=(400.0, 400.0),
    crystallite_phase_sigma=0.0,
    instrument_fwhm_deg=(0.08, 0.08),
    eta=(0.5, 0.5),
    strain=0.0,
    displacement_deg=0.0,
    max_counts=(50000.0, 50000.0),
    background=(0.05, 0.05),
    ka2_probability=1.0,
)


def _library(*phases: tuple[Phase, Peaks]) -> Library:
    library = Library(wavelength=WAVELENGTH, two_theta_range=(10.0, 100.0))
    for phase, peaks in phases:
        library.phases.append(phase)
        library.peaks[phase.name] = peaks
    return library


@pytest.fixture(scope="module")
def phases() -> dict[str, tuple[Phase, Peaks]]:
    """Three made-up cubic phases and corundum; A scatters 2.5 x corundum (its RIR)."""
    standard = corundum(_library())
    power = standard[0].scattering_power
    return {
        "A": cubic_phase("A", 4.21, FCC_HKL, 2.5 * power, formula="AO"),
        "B": cubic_phase("B", 3.37, PRIMITIVE_HKL, 1.2 * power, formula="BO"),
        "C": cubic_phase("C", 5.63, FCC_HKL, 1.8 * power, formula="CO"),
        "corundum": standard,
    }


def _write_xy(path: Path, library: Library, composition: dict[str, float], seed: int) -> Path:
    batch = simulate(library, 1, SETTINGS, seed, composition=composition)
    rows = "\n".join(f"{x:.4f} {y * 50000:.1f}" for x, y in zip(batch.two_theta, batch.x[0], strict=True))
    path.write_text(rows + "\n", encoding="utf-8")
    return path


def _reference(folder: Path, phases: dict[str, tuple[Phase, Peaks]], sidecar: dict[str, object]) -> Path:
    """A's simulated pattern as a measured reference ``A_ref.xy`` with its sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    pure = _write_xy(folder / "A_ref.xy", _library(phases["A"]), {"A": 1.0}, seed=11)
    (folder / "A_ref.json").write_text(
        json.dumps({"name": "A_ref", "formula": "AO", "wavelength": WAVELENGTH, "density": 5.0, **sidecar}),
        encoding="utf-8",
    )
    return pure


def test_rir_from_a_weighed_mixture_with_corundum(tmp_path: Path, phases: dict) -> None:
    _write_xy(tmp_path / "mix.xy", _library(phases["A"], phases["corundum"]), {"A": 0.3, "corundum": 0.7}, 5)
    pure = _reference(tmp_path, phases, {"mixture": {"pattern": "mix.xy", "corundum_wt_percent": 70}})
    library = _library()
    add_measured_references(library, [pure])
    assert library.skipped == []
    phase = library.phase("A_ref")
    assert phase.kind == "measured"
    assert phase.rir == pytest.approx(2.5, rel=0.04)
    assert phase.scattering_power == pytest.approx(phase.rir * phases["corundum"][0].scattering_power)


def test_measured_reference_reproduces_the_cif_phase_fraction(tmp_path: Path, phases: dict) -> None:
    pure = _reference(tmp_path, phases, {"rir": 2.5})
    library = _library(phases["B"], phases["C"])
    add_measured_references(library, [pure])
    truth = {"A": 0.25, "B": 0.45, "C": 0.30}
    mixture = simulate(_library(phases["A"], phases["B"], phases["C"]), 1, SETTINGS, 3, composition=truth)
    pattern = make_pattern(
        mixture.two_theta, mixture.x[0] * 50000, source=Path("m.xy"), format="xy", wavelength=WAVELENGTH
    )
    result = fit_phases(pattern, library, ["A_ref", "B", "C"])
    fitted = {p.name: p.weight_fraction for p in result.phases}
    assert result.rwp < 0.06
    assert fitted["A_ref"] == pytest.approx(truth["A"], abs=0.015)
    assert fitted["B"] == pytest.approx(truth["B"], abs=0.015)
    assert fitted["C"] == pytest.approx(truth["C"], abs=0.015)
    # the same fit with the CIF phase gives the same answer: the two kinds share one weight rule
    cif = {
        p.name: p.weight_fraction
        for p in fit_phases(pattern, _library(*(phases[k] for k in "ABC")), "ABC").phases
    }
    assert fitted["A_ref"] == pytest.approx(cif["A"], abs=0.015)


def test_library_with_both_kinds_saves_and_loads(tmp_path: Path, phases: dict) -> None:
    pure = _reference(tmp_path / "refs", phases, {"rir": 2.5})
    library = _library(phases["B"])
    add_measured_references(library, [pure])
    save_library(library, tmp_path / "lib")
    assert (tmp_path / "lib" / "profiles" / "A_ref.csv").is_file()
    loaded = load_library(tmp_path / "lib")
    assert [(p.name, p.kind) for p in loaded.phases] == [("B", "cif"), ("A_ref", "measured")]
    assert loaded.phase("A_ref").rir == pytest.approx(2.5)
    assert list(loaded.profiles) == ["A_ref"]
    np.testing.assert_allclose(
        loaded.profiles["A_ref"].intensity, library.profiles["A_ref"].intensity, rtol=1e-5
    )
    assert len(loaded.peaks["A_ref"]) >= 5  # the profile's maxima, for the stick overlay


def test_simulator_draws_measured_references(tmp_path: Path, phases: dict) -> None:
    pure = _reference(tmp_path, phases, {"rir": 2.5})
    library = _library(phases["B"])
    add_measured_references(library, [pure])
    drawn = simulate(library, 64, SimulationConfig(max_phases=2), seed=1)
    assert drawn.present[:, 1].sum() > 10 and drawn.present[:, 0].sum() > 10
    alone = simulate(library, 1, SETTINGS, 2, composition={"A_ref": 1.0}).x[0]
    cif = simulate(_library(phases["A"]), 1, SETTINGS, 2, composition={"A": 1.0}).x[0]
    assert float(np.corrcoef(alone, cif)[0, 1]) > 0.97
    # in a mixture the reference's share of intensity follows weight x RIR as a CIF phase's does
    mix_ref = simulate(library, 1, SETTINGS, 4, composition={"A_ref": 0.5, "B": 0.5})
    mix_cif = simulate(_library(phases["A"], phases["B"]), 1, SETTINGS, 4, composition={"A": 0.5, "B": 0.5})
    assert float(np.corrcoef(mix_ref.x[0], mix_cif.x[0])[0, 1]) > 0.97


def test_cli_builds_a_library_of_cifs_and_measured_references(
    tmp_path: Path, phases: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    from labeltune.cli import main

    folder = tmp_path / "refs"
    _reference(folder, phases, {"rir": 2.5})
    _write_xy(folder / "stray.xy", _library(phases["B"]), {"B": 1.0}, 1)  # no sidecar: not a reference
    cif = Path(phases["corundum"][0].source)
    (folder / "corundum.cif").write_bytes(cif.read_bytes())
    assert main(["xrd", "library", str(folder), "--out", str(tmp_path / "lib"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [(p["name"], p.get("kind", "cif")) for p in summary["phases"]] == [
        ("corundum", "cif"),
        ("A_ref", "measured"),
    ]
    assert summary["phases"][1]["rir"] == pytest.approx(2.5)
    assert load_library(tmp_path / "lib").phase("A_ref").formula == "AO"
    # a pattern named directly without a sidecar is skipped with the reason; a bad sidecar exits 2
    assert main(["xrd", "library", str(folder / "stray.xy"), "--out", str(tmp_path / "lib2")]) == 2
    assert "needs a sidecar stray.json" in capsys.readouterr().err
    (folder / "A_ref.json").write_text('{"formula": "AO"}', encoding="utf-8")
    assert main(["xrd", "library", str(folder / "A_ref.xy"), "--out", str(tmp_path / "lib3")]) == 2
    err = capsys.readouterr().err
    assert "A_ref.json: give either rir (against corundum) or a mixture with corundum" in err
    assert "Traceback" not in err


def test_toml_sidecar_and_a_reference_without_wavelength(tmp_path: Path, phases: dict) -> None:
    _write_xy(tmp_path / "clay.xy", _library(phases["A"]), {"A": 1.0}, 3)
    (tmp_path / "clay.toml").write_text(
        'name = "clay"\nformula = "Al2Si2O5(OH)4"\nrir = 1.5\ndensity = 2.6\nwavelength = 1.5406\n',
        encoding="utf-8",
    )
    library = _library()
    add_measured_references(library, [tmp_path / "clay.xy"])
    phase = library.phase("clay")
    assert (phase.rir, phase.density, phase.element_counts["Si"]) == (1.5, 2.6, 2.0)
    (tmp_path / "clay.toml").write_text('formula = "SiO2"\nrir = 1.5\n', encoding="utf-8")
    library = _library()
    add_measured_references(library, [tmp_path / "clay.xy"])
    assert library.phases == []
    assert library.skipped == [
        (str(tmp_path / "clay.xy"), 'clay.xy: the file states no wavelength; add "wavelength" to its sidecar')
    ]
