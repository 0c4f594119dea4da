"""Labels from file names (``Li2CO3_0p9001-ZrO2_0p1000--8min.xrdml``): every dara name, other spellings."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_library
from labeltune.core.xrd.library import load_library
from labeltune.core.xrd.name_labels import NamePattern, formula_problem, match_phases, parse_name

DARA = Path("/work/shared/data/xrd/dara_mixtures/labeled")
# the 20 mixtures of the shared dara set, each scanned for 2 and 8 minutes (40 files)
DARA_MIXTURES = {
    "In2O3_0p3022-La(OH)3_0p5014-TiO2_0p2004": {"In2O3": 30.22, "La(OH)3": 50.14, "TiO2": 20.04},
    "In2O3_0p5002-MnCO3_0p5000": {"In2O3": 50.02, "MnCO3": 50.00},
    "Li2CO3_0p9001-ZrO2_0p1000": {"Li2CO3": 90.01, "ZrO2": 10.00},
    "NiO_0p1031-La(OH)3_0p2025-TiO2_0p7014": {"NiO": 10.31, "La(OH)3": 20.25, "TiO2": 70.14},
    "NiO_0p2030-Li2CO3_0p2999-TiO2_0p5025": {"NiO": 20.30, "Li2CO3": 29.99, "TiO2": 50.25},
    "NiO_0p3035-Bi2O3_0p3016-Li2CO3_0p3997": {"NiO": 30.35, "Bi2O3": 30.16, "Li2CO3": 39.97},
    "NiO_0p6007-Bi2O3_0p4008": {"NiO": 60.07, "Bi2O3": 40.08},
    "NiO_0p7028-La(OH)3_0p1010-ZnO_0p2000": {"NiO": 70.28, "La(OH)3": 10.10, "ZnO": 20.00},
    "TiO2_0p4009-ZnO_0p6010": {"TiO2": 40.09, "ZnO": 60.10},
    "V2O5_0p1012-In2O3_0p2008-TiO2_0p7001": {"V2O5": 10.12, "In2O3": 20.08, "TiO2": 70.01},
    "V2O5_0p2012-La(OH)3_0p5004-MnCO3_0p3013": {"V2O5": 20.12, "La(OH)3": 50.04, "MnCO3": 30.13},
    "V2O5_0p2013-La(OH)3_0p5000-ZrO2_0p3001": {"V2O5": 20.13, "La(OH)3": 50.00, "ZrO2": 30.01},
    "V2O5_0p3005-NiO_0p4020-TiO2_0p3020": {"V2O5": 30.05, "NiO": 40.20, "TiO2": 30.20},
    "V2O5_0p3015-TiO2_0p6998": {"V2O5": 30.15, "TiO2": 69.98},
    "V2O5_0p4005-NiO_0p6016": {"V2O5": 40.05, "NiO": 60.16},
    "V2O5_0p4013-In2O3_0p4021-La(OH)3_0p2014": {"V2O5": 40.13, "In2O3": 40.21, "La(OH)3": 20.14},
    "V2O5_0p6008-ZnO_0p4010": {"V2O5": 60.08, "ZnO": 40.10},
    "V2O5_0p7006-MnCO3_0p3001": {"V2O5": 70.06, "MnCO3": 30.01},
    "V2O5_0p8011-ZrO2_0p2012": {"V2O5": 80.11, "ZrO2": 20.12},
    "ZnO_0p4006-In2O3_0p6008": {"ZnO": 40.06, "In2O3": 60.08},
}
DARA_NAMES = [f"{m}--{t}.xrdml" for m in DARA_MIXTURES for t in ("2min", "8min")]


@pytest.mark.parametrize("name", DARA_NAMES)
def test_every_dara_name_gives_its_phases_and_weighed_fractions(name: str) -> None:
    label = parse_name(name)
    expected = DARA_MIXTURES[name.split("--")[0]]
    assert label.ok and label.problem == "" and label.notes == ()
    assert list(label.phases) == list(expected)  # in the order the name gives them
    assert label.fractions is not None
    assert [round(f * 100, 2) for f in label.fractions] == list(expected.values())


def test_the_shared_dara_folder_holds_exactly_these_names() -> None:
    if not DARA.is_dir():
        pytest.skip("shared dara data not present")
    assert sorted(p.name for p in DARA.glob("*.xrdml")) == sorted(DARA_NAMES)


def test_the_example_reads_as_the_issue_says() -> None:
    label = parse_name("Li2CO3_0p9001-ZrO2_0p1000--8min.xrdml")
    assert label.summary() == "Li2CO3 90.01 % + ZrO2 10.00 %"


def test_other_spellings_through_the_pattern() -> None:
    percent = NamePattern(
        phase_separator="+", amount_separator="=", decimal_mark=".", end_marker="__", percent=True
    )
    label = parse_name("Al2O3=95.5+SiO2=4.5__run3.xy", percent)
    assert label.phases == ("Al2O3", "SiO2") and label.fractions == pytest.approx((0.955, 0.045))
    assert parse_name("Al2O3-SiO2.xy").phases == ("Al2O3", "SiO2")  # phases without amounts
    assert parse_name("Al2O3-SiO2.xy").fractions is None
    with pytest.raises(ValueError):
        NamePattern(phase_separator="_", amount_separator="_")


def test_names_that_state_no_label_say_why() -> None:
    assert parse_name("sample 12.xy").problem == "'sample 12' is not a chemical formula"
    assert "no element Xx" in parse_name("Xx2_0p5-O2_0p5.xy").problem
    assert "'0pp5' is not an amount" in parse_name("NiO_0pp5-ZnO_0p5.xy").problem
    assert parse_name("NiO_0p5-NiO_0p5.xy").problem == "NiO is named twice"
    short = parse_name("NiO_0p5-ZnO_0p3.xy")  # 80 %: phases kept, fractions not
    assert short.ok and short.fractions is None and "add up to 80.0 %" in short.notes[0]
    assert formula_problem("La(OH)3") is None and formula_problem("Quartz") is not None


def test_phases_matched_against_a_library(tmp_path: Path) -> None:
    library = load_library(
        write_library(tmp_path / "lib", (("TiO2 (anatase)", "TiO2"), ("TiO2_136", "TiO2"), ("NiO", "NiO")))
    )
    matches = match_phases(["TiO2", "NiO", "In2O3"], library)
    assert [m.library_phases for m in matches] == [("TiO2 (anatase)", "TiO2_136"), ("NiO",), ()]
    assert [m.text() for m in matches] == [
        "TiO2 → TiO2 (anatase), TiO2_136",
        "NiO",
        "In2O3: not in the library",
    ]
    assert [m.known for m in match_phases(["NiO"], None)] == [False]
