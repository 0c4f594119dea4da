"""Measured reference patterns and the Brindley correction, measured (issue 14, ADR 0047).

Run: ``.venv/bin/python bench/bench_xrd_refs.py``. Not a test: prints figures only.

1. Simulated: a measured reference made from a simulated single-phase pattern against its CIF phase in
   simulated 3-phase mixtures (weight-fraction error of both, points), and the RIR fitted from simulated
   weighed corundum mixtures (relative error).
2. Real (RRUFF processed profiles): how well the strongest-peak area of a net measured profile (what a
   sidecar's RIR number is applied to) matches the fitted CIF phase's strongest-reflection area.
3. Real (dara TiO2 40.09 / ZnO 60.10 wt %): fitted fractions before and after the Brindley correction
   for several grain sizes, and the size that removes the error.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "xrd_refs"))

from test_reference_patterns import FCC, PRIMITIVE, SETTINGS, _cubic, _library, _write_xy

from labeltune.core.xrd.absorption import brindley_correction
from labeltune.core.xrd.library import build_library
from labeltune.core.xrd.pattern import make_pattern
from labeltune.core.xrd.quantify import fit_phases
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.reference_build import add_measured_references, corundum
from labeltune.core.xrd.reference_patterns import strip_background, strongest_peak_area
from labeltune.core.xrd.simulate import simulate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd"


def simulated(tmp: Path) -> None:
    """Measured reference vs its CIF phase in simulated mixtures; RIR from corundum mixtures."""
    standard = corundum(_library())
    power = standard[0].scattering_power
    a, b = _cubic("A", 4.21, FCC, 2.5 * power), _cubic("B", 3.37, PRIMITIVE, 1.2 * power)
    c = _cubic("C", 5.63, FCC, 1.8 * power)
    rng = np.random.default_rng(0)
    ref_err, cif_err, rirs = [], [], []
    for seed in range(8):
        folder = tmp / f"s{seed}"
        folder.mkdir()
        _write_xy(folder / "A_ref.xy", _library(a), {"A": 1.0}, seed=100 + seed)
        w_cor = float(rng.uniform(0.2, 0.8))
        _write_xy(folder / "mix.xy", _library(a, standard), {"A": 1 - w_cor, "corundum": w_cor}, 200 + seed)
        sidecar = {"formula": "AO", "wavelength": 1.5406}
        mixture = {"pattern": "mix.xy", "corundum_wt_percent": 100 * w_cor}
        (folder / "A_ref.json").write_text(json.dumps({**sidecar, "mixture": mixture}), encoding="utf-8")
        fitted_rir = _library()
        add_measured_references(fitted_rir, [folder / "A_ref.xy"])
        rirs.append(fitted_rir.phases[0].rir / 2.5 - 1.0)
        (folder / "A_ref.json").write_text(json.dumps({**sidecar, "rir": 2.5}), encoding="utf-8")
        measured = _library(b, c)
        add_measured_references(measured, [folder / "A_ref.xy"])
        w = rng.dirichlet(np.ones(3))
        truth = {"A": w[0], "B": w[1], "C": w[2]}
        batch = simulate(_library(a, b, c), 1, SETTINGS, seed, composition=truth)
        pattern = make_pattern(
            batch.two_theta, batch.x[0] * 5e4, source=Path("m"), format="xy", wavelength=1.5406
        )
        with_ref = {
            p.name: p.weight_fraction for p in fit_phases(pattern, measured, ["A_ref", "B", "C"]).phases
        }
        with_cif = {p.name: p.weight_fraction for p in fit_phases(pattern, _library(a, b, c), "ABC").phases}
        ref_err += [abs(with_ref["A_ref"] - truth["A"]), abs(with_ref["B"] - truth["B"])]
        ref_err += [abs(with_ref["C"] - truth["C"])]
        cif_err += [abs(with_cif[k] - truth[k]) for k in "ABC"]
    print("1. simulated 3-phase mixtures, 8 seeds, Dirichlet fractions:")
    print(f"   measured reference + 2 CIF phases: fraction error mean {100 * np.mean(ref_err):.2f}, "
          f"max {100 * np.max(ref_err):.2f} points")  # fmt: skip
    print(f"   the same with the CIF phase:       fraction error mean {100 * np.mean(cif_err):.2f}, "
          f"max {100 * np.max(cif_err):.2f} points")  # fmt: skip
    rir_err = 100 * np.abs(rirs)
    print(f"   RIR from a weighed corundum mixture (20-80 wt %): error mean {np.mean(rir_err):.1f} %, "
          f"max {np.max(rir_err):.1f} %")  # fmt: skip


def rruff(tmp: Path) -> None:
    """Strongest-peak area of real net profiles against the CIF fit's strongest-reflection area."""
    pairs = {"Corundum": "1000017.cif", "Quartz": "9009666.cif", "Calcite": "1010928.cif"}
    print("2. RRUFF profiles: strongest-peak area of the net profile / fitted CIF strongest-reflection area")
    for mineral, cif in pairs.items():
        files = sorted((DATA / "rruff").glob(f"{mineral}__*.txt"))
        if not files or not (DATA / "cod_cifs" / cif).is_file():
            print(f"   {mineral}: data not present")
            continue
        pattern = read_pattern(files[0], default_wavelength=1.5406)
        library = build_library([DATA / "cod_cifs" / cif], tmp / mineral)
        fit = fit_phases(pattern, library, library.names)
        x = np.arange(max(10.0, pattern.two_theta[0]), min(100.0, pattern.two_theta[-1]), 0.01)
        y = np.interp(x, pattern.two_theta, pattern.intensity)
        net = np.maximum(y - strip_background(x, y, 6.0), 0.0)
        area = strongest_peak_area(x, net, 1.5406)
        scale = fit.phases[0].scale
        print(f"   {mineral:<9} ratio {area / scale:.3f} (fit Rwp {100 * fit.rwp:.1f} %, Kα2 {fit.ka2})")


def dara(tmp: Path) -> None:
    """TiO2-ZnO weighed mixture: fractions before and after Brindley's correction."""
    labeled = DATA / "dara_mixtures" / "labeled"
    zno = Path(__file__).resolve().parents[1] / "tests" / "xrd_refs" / "data" / "ZnO_wurtzite.cif"
    anatase = DATA / "cod_cifs" / "1010942.cif"
    files = sorted(labeled.glob("TiO2_0p4009-ZnO_0p6010--*.xrdml"))
    if not files or not anatase.is_file():
        print("3. dara TiO2-ZnO: data not present")
        return
    library = build_library([zno, anatase], tmp / "dara")
    print("3. dara TiO2 40.09 / ZnO 60.10 wt % (anatase COD 1010942 + ZnO written from Kisi & Elcombe 1989):")
    for path in files:
        fit = fit_phases(read_pattern(path), library, ["ZnO_wurtzite", "1010942"])
        raw = {p.name: p.weight_fraction for p in fit.phases}
        line = (
            f"   {path.name[-11:-6]}: Rwp {100 * fit.rwp:.1f} %, TiO2 uncorrected {100 * raw['1010942']:.1f}"
        )
        for size in (1.0, 2.0, 5.0, 10.0):
            line += f", {size:g} µm {100 * brindley_correction(raw, library, size).fractions['1010942']:.1f}"
        sizes = np.linspace(0.5, 20.0, 391)
        err = [abs(brindley_correction(raw, library, s).fractions["1010942"] - 0.4009) for s in sizes]
        print(line + f"; error is smallest at {sizes[int(np.argmin(err))]:.1f} µm")
    mu = brindley_correction({"ZnO_wurtzite": 0.6, "1010942": 0.4}, library, 5.0).mu
    print("   μ (1/cm, Cu Kα photoabsorption): " + ", ".join(f"{k} {v:.0f}" for k, v in mu.items()))


def main() -> int:
    """Print the three sets of figures."""
    with tempfile.TemporaryDirectory() as tmp:
        simulated(Path(tmp))
        rruff(Path(tmp))
        dara(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
