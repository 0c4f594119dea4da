"""A library built from CIFs names its phases as a person would (mineral name + formula), not by number."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labeltune.core.xrd.library import build_library, load_library
from labeltune.core.xrd.phase_names import phase_name, unique_name

REFERENCES = Path(__file__).resolve().parents[2] / "desktop/labeltune/resources/demos/xrd/references"
COD = Path("/work/shared/data/xrd/cod_cifs")


def write_cif(folder: Path, stem: str, names: str = "", source: str = "MnO_225") -> Path:
    """A demo CIF saved as ``stem.cif`` with ``names`` (CIF lines) added after its data_ line."""
    text = (REFERENCES / f"{source}.cif").read_text(encoding="utf-8")
    head, rest = text.split("\n", 2)[:2], text.split("\n", 2)[2]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.cif"
    path.write_text("\n".join([*head, names, rest]) if names else text, encoding="utf-8")
    return path


def test_phases_are_named_from_mineral_or_common_name_and_formula(tmp_path: Path) -> None:
    cifs = [
        write_cif(tmp_path / "cifs", "9006758", "_chemical_name_mineral Manganosite"),
        write_cif(tmp_path / "cifs", "1000001", "_chemical_name_common 'manganese(II) oxide; green'"),
        write_cif(tmp_path / "cifs", "1000002", "_chemical_name_mineral Manganosite"),  # a second one
        write_cif(tmp_path / "cifs", "1530150", source="TiO2_141"),  # no name at all: formula + group
        write_cif(tmp_path / "cifs", "my_anatase", source="TiO2_141"),  # a person's file name is kept
    ]
    library = build_library(cifs, tmp_path / "lib", naming="cif")
    assert library.names == [
        "MnO (manganosite)",
        "MnO (manganese(II) oxide green)",  # ';' cannot be in a label: dropped
        "MnO (manganosite) 1000002",  # unique: the COD number tells the two apart
        "TiO2_1",  # the demo CIF is written in P 1
        "my_anatase",
    ]
    assert Path(library.phases[0].source).name == "9006758.cif"  # the COD number, as a detail
    reread = load_library(tmp_path / "lib")
    assert reread.names == library.names
    assert (tmp_path / "lib" / "peaks" / "MnO (manganosite).csv").is_file()


def test_file_naming_stays_the_default_and_existing_libraries_keep_their_names(tmp_path: Path) -> None:
    cif = write_cif(tmp_path / "cifs", "9006758", "_chemical_name_mineral Manganosite")
    library = build_library([cif], tmp_path / "lib")
    assert library.names == ["9006758"]  # the CLI's and the demo's libraries are built as before
    meta = json.loads((tmp_path / "lib" / "library.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in meta["phases"]] == ["9006758"]
    assert load_library(tmp_path / "lib").names == ["9006758"]  # loading never renames
    with pytest.raises(ValueError, match="naming"):
        build_library([cif], tmp_path / "other", naming="mineral")


def test_name_helpers() -> None:
    assert phase_name("Al2O3", "Corundum", 167) == "Al2O3 (corundum)"
    assert phase_name("SiO2", "", 152, "9009666") == "SiO2_152"
    assert phase_name("BaSO4", "BaSO4-HP", 62) == "BaSO4 (BaSO4-HP)"  # an acronym keeps its case
    assert unique_name("A", {"A"}, "123") == "A 123"
    assert unique_name("A", {"A", "A 123"}, "123") == "A 2"


@pytest.mark.skipif(not COD.is_dir(), reason="shared COD CIFs not present")
def test_the_shared_cod_cifs_get_mineral_names(tmp_path: Path) -> None:
    cifs = [COD / f"{n}.cif" for n in ("1000017", "1010942", "1530150", "9009666", "9012601")]
    for cif in cifs:
        shutil.copy(cif, tmp_path / cif.name)
    library = build_library(sorted(tmp_path.glob("*.cif")), tmp_path / "lib", naming="cif")
    assert library.names == [
        "Al2O3 (corundum)",
        "TiO2 (anatase)",
        "TiO2_136",  # rutile, but its CIF names no mineral
        "SiO2 (quartz)",
        "SiO2 (quartz) 9012601",
    ]


def test_xrd_library_names_cif_on_the_command_line(tmp_path: Path, capsys) -> None:
    from labeltune.cli import main

    cif = write_cif(tmp_path / "cifs", "9006758", "_chemical_name_mineral Manganosite")
    assert main(["xrd", "library", str(cif), "--out", str(tmp_path / "lib"), "--names", "cif", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in summary["phases"]] == ["MnO (manganosite)"]
    assert main(["xrd", "library", str(cif), "--out", str(tmp_path / "lib2"), "--json"]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)["phases"]] == ["9006758"]
