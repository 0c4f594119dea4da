"""refine_cell gives back the cell that made the d-spacings, in each crystal system (ADR 0055)."""

from __future__ import annotations

import itertools

import gemmi
import pytest

from labeltune.core.xrd.structure_check import crystal_system, refine_cell

CELLS = {
    "cubic": (10.117, 10.117, 10.117, 90.0, 90.0, 90.0),
    "tetragonal": (3.7842, 3.7842, 9.5146, 90.0, 90.0, 90.0),
    "hexagonal": (4.7682, 4.7682, 15.6354, 90.0, 90.0, 120.0),
    "orthorhombic": (11.512, 3.564, 4.368, 90.0, 90.0, 90.0),
    "monoclinic": (5.8496, 8.1648, 7.5101, 90.0, 112.977, 90.0),
}


@pytest.mark.parametrize("system", CELLS)
def test_the_cell_comes_back_from_its_own_d_spacings(system: str) -> None:
    cell = CELLS[system]
    assert crystal_system(cell) == system
    unit = gemmi.UnitCell(*cell)
    peaks = [
        (hkl, unit.calculate_d(list(hkl)))
        for hkl in itertools.product(range(-2, 3), range(0, 3), range(0, 3))
        if any(hkl)
    ]
    # a 1 % larger c, 0.5 % smaller a: refined as such, not averaged into one scale
    square = system in ("cubic", "tetragonal", "hexagonal")
    a, b = cell[0] * 0.995, cell[1] * (0.995 if square else 1.0)
    stretched = (a, b, cell[2] * (0.995 if system == "cubic" else 1.01), cell[3], cell[4], cell[5])
    strained = gemmi.UnitCell(*stretched)
    measured = [(hkl, strained.calculate_d(list(hkl))) for hkl, _ in peaks]
    assert refine_cell(cell, peaks) == pytest.approx(cell, rel=1e-6)
    assert refine_cell(cell, measured) == pytest.approx(stretched, rel=1e-6)


def test_too_few_peaks_or_an_unsupported_cell_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot refine a monoclinic cell"):
        refine_cell(CELLS["monoclinic"], [((1, 0, 0), 5.0), ((0, 1, 0), 8.0)])
    with pytest.raises(ValueError, match="only b-unique monoclinic"):
        crystal_system((5.0, 6.0, 7.0, 80.0, 90.0, 90.0))
