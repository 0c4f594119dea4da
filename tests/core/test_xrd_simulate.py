"""Simulated multi-phase training patterns (``core.xrd.simulate``) and ``labeltune xrd simulate``."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labeltune.cli import main
from labeltune.core.xrd.library import Library, build_library
from labeltune.core.xrd.simulate import CU_KA2, SimulationConfig, simulate, write_simulated

CIFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs"
NAMES = ("1000017", "1530150", "9012601")  # corundum, rutile, quartz

pytestmark = pytest.mark.skipif(
    not all((CIFS / f"{n}.cif").is_file() for n in NAMES), reason="../shared/data/xrd is not present"
)

# Everything random switched off: single crystallite size, no strain, shift, texture, noise, extras.
CLEAN = SimulationConfig(
    crystallite_nm=(1000.0, 1000.0),
    crystallite_phase_sigma=0.0,
    instrument_fwhm_deg=(0.05, 0.05),
    eta=(0.5, 0.5),
    strain=0.0,
    displacement_deg=0.0,
    texture_sigma=0.0,
    noise=False,
    background=(0.0, 0.0),
    impurity_probability=0.0,
    monochromatic=True,
)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    out = tmp_path_factory.mktemp("lib") / "lib"
    return build_library([CIFS / f"{n}.cif" for n in NAMES], out)


def _fwhm(x: np.ndarray, tth: np.ndarray, i: int) -> float:
    half = x[i] / 2
    lo = i
    while lo > 0 and x[lo] > half:
        lo -= 1
    hi = i
    while hi < len(x) - 1 and x[hi] > half:
        hi += 1
    left = np.interp(half, [x[lo], x[lo + 1]], [tth[lo], tth[lo + 1]])
    right = np.interp(half, [x[hi], x[hi - 1]], [tth[hi], tth[hi - 1]])
    return float(right - left)


def test_shapes_dtypes_and_fractions(library: Library) -> None:
    batch = simulate(library, 300, SimulationConfig(max_phases=3), seed=1)
    assert batch.x.shape == (300, 4501) and batch.x.dtype == np.float32
    assert batch.present.shape == (300, 3) and batch.present.dtype == bool
    assert batch.fractions.shape == (300, 3) and batch.fractions.dtype == np.float32
    assert np.all(np.isfinite(batch.x)) and batch.x.min() >= 0
    assert np.allclose(batch.x.max(axis=1), 1.0)
    assert np.allclose(batch.fractions.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(batch.fractions[~batch.present] == 0)
    assert np.all(batch.fractions[batch.present] > 0)
    assert set(batch.present.sum(axis=1)) == {1, 2, 3}
    assert batch.two_theta[0] == 10 and batch.two_theta[-1] == 100
    one = simulate(library, 50, SimulationConfig(max_phases=1), seed=2)
    assert np.all(one.present.sum(axis=1) == 1)
    assert len(simulate(library, 0, seed=0)) == 0


def test_min_fraction_floors_every_present_phase(library: Library) -> None:
    batch = simulate(library, 400, SimulationConfig(max_phases=3, min_fraction=0.1), seed=3)
    present = batch.fractions[batch.present]
    assert present.min() >= 0.1 - 1e-6
    assert np.allclose(batch.fractions.sum(axis=1), 1.0, atol=1e-5)
    loose = simulate(library, 400, SimulationConfig(max_phases=3), seed=3)
    assert loose.fractions[loose.present].min() < 0.05  # without the floor, faint phases happen


def test_seeded(library: Library) -> None:
    a = simulate(library, 40, seed=7)
    b = simulate(library, 40, seed=7)
    c = simulate(library, 40, seed=8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.fractions, b.fractions)
    assert not np.array_equal(a.x, c.x)


def test_strongest_peak_position(library: Library) -> None:
    batch = simulate(library, 1, CLEAN, seed=0, composition={"1000017": 1.0})
    peaks = library.peaks["1000017"]
    expected = peaks.two_theta[np.argmax(peaks.intensity)]
    assert abs(batch.two_theta[np.argmax(batch.x[0])] - expected) < 0.1


def test_sharp_peaks(library: Library) -> None:
    batch = simulate(library, 1, CLEAN, seed=0, composition={"1000017": 1.0})
    i = int(np.argmax(batch.x[0]))
    assert _fwhm(batch.x[0], batch.two_theta, i) <= 0.1
    # broad: 10 nm crystallites give a Scherrer FWHM of about 0.84° at 35° 2θ
    broad = replace(CLEAN, crystallite_nm=(10.0, 10.0), instrument_fwhm_deg=(0.0, 0.0))
    b = simulate(library, 1, broad, seed=0, composition={"1000017": 1.0})
    theta = math.radians(batch.two_theta[i] / 2)
    scherrer = math.degrees(0.9 * 1.54056 / (100.0 * math.cos(theta)))
    ib = int(np.argmax(b.x[0]))
    assert _fwhm(b.x[0], b.two_theta, ib) == pytest.approx(scherrer, rel=0.15)


def test_ka2_doublet(library: Library) -> None:
    peaks = library.peaks["1000017"]
    high = peaks.two_theta > 50
    tth1 = peaks.two_theta[high][np.argmax(peaks.intensity[high])]  # (116) near 57.5°
    d = peaks.d[high][np.argmax(peaks.intensity[high])]
    tth2 = math.degrees(2 * math.asin(CU_KA2 / (2 * d)))
    sharp = replace(CLEAN, instrument_fwhm_deg=(0.03, 0.03))
    mono = simulate(library, 1, sharp, seed=0, composition={"1000017": 1.0})
    doublet = simulate(
        library,
        1,
        replace(sharp, monochromatic=False, ka2_probability=1.0),
        seed=0,
        composition={"1000017": 1.0},
    )
    assert bool(doublet.ka2[0]) and not bool(mono.ka2[0])
    tth = mono.two_theta
    near1 = np.abs(tth - tth1) < 0.03
    near2 = np.abs(tth - tth2) < 0.03
    for batch in (mono, doublet):
        x = batch.x[0]
        assert abs(tth[np.argmax(np.where(np.abs(tth - tth1) < 0.1, x, 0))] - tth1) < 0.025
    x_mono, x_dbl = mono.x[0], doublet.x[0]
    assert x_mono[near2].max() < 0.1 * x_mono[near1].max()
    i2 = np.flatnonzero(near2)[np.argmax(x_dbl[near2])]
    assert x_dbl[i2] > x_dbl[i2 - 1] and x_dbl[i2] > x_dbl[i2 + 1]  # a resolved local maximum
    assert 0.3 < x_dbl[i2] / x_dbl[near1].max() < 0.7
    assert abs(tth[i2] - tth2) < 0.025


def test_weight_fractions_map_through_scattering_power(library: Library) -> None:
    cor, rut = library.phase("1000017"), library.phase("1530150")
    a = simulate(library, 1, CLEAN, seed=0, composition={"1000017": 1.0})
    b = simulate(library, 1, CLEAN, seed=0, composition={"1530150": 1.0})
    mix = simulate(library, 1, CLEAN, seed=0, composition={"1000017": 0.5, "1530150": 0.5})
    assert mix.fractions[0].tolist() == pytest.approx([0.5, 0.5, 0.0])
    # absolute integrated intensity of a single phase = scattering_power x sum of relative intensities
    for batch, phase in ((a, cor), (b, rut)):
        area = float(batch.x[0].sum() * batch.scale[0])
        expected = phase.scattering_power * library.peaks[phase.name].intensity.sum() / 100
        assert area == pytest.approx(expected, rel=0.03)
    # decompose the 50/50 mixture into the two single-phase shapes by least squares
    basis = np.stack([a.x[0], b.x[0]], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(basis, mix.x[0].astype(np.float64), rcond=None)
    ratio = (coef[0] * a.x[0].sum()) / (coef[1] * b.x[0].sum())
    expected = (cor.scattering_power * library.peaks[cor.name].intensity.sum()) / (
        rut.scattering_power * library.peaks[rut.name].intensity.sum()
    )
    assert ratio == pytest.approx(expected, rel=0.03)
    # strongest-peak ratio = the RIR-like ratio of scattering powers (peaks are equally sharp)
    assert coef[0] / coef[1] == pytest.approx(cor.scattering_power / rut.scattering_power, rel=0.05)


def test_realistic_defaults_vary(library: Library) -> None:
    batch = simulate(library, 200, seed=3)
    assert 0.5 < batch.ka2.mean() < 0.9
    assert batch.crystallite_nm[batch.present].min() >= 5 and batch.crystallite_nm.max() <= 1000
    assert batch.n_impurities.max() <= 2 and batch.n_impurities.max() > 0
    assert np.abs(batch.strain).max() <= 0.01 and np.abs(batch.displacement).max() <= 0.1
    # noisy patterns: neighbouring points differ; the noise-free ones do not jump
    assert np.abs(np.diff(batch.x, axis=1)).mean() > 1e-3


def test_write_and_cli(library: Library, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = simulate(library, 5, seed=0)
    out = write_simulated(batch, library, tmp_path / "direct")
    assert np.load(out / "patterns.npy").shape == (5, 4501)
    assert library.path is not None
    code = main(["xrd", "simulate", str(library.path), "--n", "30", "--max-phases", "2", "--seed", "4",
                 "--out", str(tmp_path / "data"), "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 30
    x = np.load(tmp_path / "data" / "patterns.npy")
    assert x.shape == (30, 4501)
    with (tmp_path / "data" / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30 and set(rows[0]) == {"index", "phases", *NAMES}
    for row in rows:
        present = row["phases"].split(";")
        assert 1 <= len(present) <= 2
        assert sum(float(row[n]) for n in NAMES) == pytest.approx(1.0, abs=1e-4)
        assert all(float(row[n]) > 0 for n in present)
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["seed"] == 4 and meta["grid"]["points"] == 4501 and meta["config"]["max_phases"] == 2
    assert Path(meta["library"]) == library.path


@pytest.mark.parametrize(
    "args",
    [
        ["xrd", "simulate", "LIB", "--n", "0", "--out", "OUT"],
        ["xrd", "simulate", "LIB", "--n", "5", "--max-phases", "0", "--out", "OUT"],
        ["xrd", "simulate", "/nonexistent/lib", "--n", "5", "--out", "OUT"],
        ["xrd", "simulate", "LIB", "--out", "OUT"],
    ],
)
def test_cli_usage_errors(
    library: Library, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    args = [str(library.path) if a == "LIB" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()
