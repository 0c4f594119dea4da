"""A generated corpus of bad XRD pattern files and CIFs, each a `Kind` with the outcome it must have.

``write_pattern_corpus(folder)`` writes pattern files (text, XRDML, RASX, RAS, Bruker RAW, pdCIF) and
``write_cif_corpus(folder)`` crystal-structure CIFs. A kind is "used" (read, perhaps with a warning
holding ``reason``) or "refused" (one message naming the file and holding ``reason``). The good data
underneath is the shipped demo's measured TiO2 pattern (anatase, TiO2_141 in the shipped model's fit)
and rutile's reference CIF, so whatever is used can also be identified by the shipped model.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import labeltune

DEMO = Path(labeltune.__file__).resolve().parent / "resources" / "demos" / "xrd"
GOOD_PATTERN = DEMO / "patterns" / "TiO2.xy"
"""A measured TiO2 (anatase) pattern (Cu Kα, 10-100° 2θ, no wavelength in the file)."""
GOOD_CIF = DEMO / "references" / "TiO2_136.cif"
"""Rutile's structure, written by pymatgen in P 1."""
SECRET = "LABELTUNE-SECRET-7f3a"
"""Text in a local file that an XML external entity points at: it must never show up anywhere."""
ZIP_BOMB_BYTES = 2 * 1024**3
"""What the zip bomb's profile member inflates to."""


@dataclass(frozen=True)
class Kind:
    """One kind of bad input: its file, "used" or "refused", and a word its warning or reason holds."""

    name: str
    path: Path
    expected: str
    reason: str

    def __post_init__(self) -> None:
        """Only the two outcomes exist."""
        if self.expected not in ("used", "refused"):
            raise ValueError(self.expected)


def good_columns() -> tuple[np.ndarray, np.ndarray]:
    """2θ (degrees) and intensity of the good pattern."""
    data = np.loadtxt(GOOD_PATTERN)
    return data[:, 0], data[:, 1]


def _xy(path: Path, x: np.ndarray, y: np.ndarray, header: str = "", sep: str = "\t") -> Path:
    lines = [header] if header else []
    lines += [f"{a:.6g}{sep}{b:.6g}" for a, b in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def xrdml_text(x: np.ndarray, y: np.ndarray, unit: str = "Angstrom", k_alpha1: float = 1.540598) -> str:
    """A small but complete XRDML document for the given scan."""
    counts = " ".join(f"{v:g}" for v in y)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">\n'
        "<sample><id>corpus</id></sample>\n"
        '<xrdMeasurement measurementType="Scan">\n'
        '<usedWavelength intended="K-Alpha 1">'
        f'<kAlpha1 unit="{unit}">{k_alpha1}</kAlpha1>'
        f'<kAlpha2 unit="{unit}">{k_alpha1 * 1.0024848:.7f}</kAlpha2>'
        "<ratioKAlpha2KAlpha1>0.5</ratioKAlpha2KAlpha1></usedWavelength>\n"
        '<scan><dataPoints><positions axis="2Theta" unit="deg">'
        f"<startPosition>{x[0]:g}</startPosition><endPosition>{x[-1]:g}</endPosition></positions>"
        f'<counts unit="counts">{counts}</counts></dataPoints></scan>\n'
        "</xrdMeasurement>\n</xrdMeasurements>\n"
    )


def _local_header(name: bytes, crc: int, compressed: int, size: int) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, compressed, size, len(name), 0) + name


def raw_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip archive of deflated members given as (name, raw deflate stream, crc, stated size).

    Written by hand so a member can inflate to far more than it states, or than memory holds.
    """
    body = b""
    central = b""
    for name, stream, crc, size in members:
        encoded = name.encode("utf-8")
        offset = len(body)
        body += _local_header(encoded, crc, len(stream), size) + stream
        fields = (0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(stream), size, len(encoded), 0, 0, 0, 0, 0, offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", *fields) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0)
    return body + central + end


def deflated(data: bytes) -> tuple[bytes, int, int]:
    """(raw deflate stream, crc32, size) of ``data``."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(), zlib.crc32(data), len(data)


def zeros_stream(total: int) -> bytes:
    """A raw deflate stream that inflates to ``total`` zero bytes (a multiple of 1 MiB), built cheaply."""
    chunk = 1024 * 1024
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)
    assert first != b"" and again != b""
    # after a full flush the compressor starts afresh: every further 1 MiB of zeros is `again`
    return first + again * (total // chunk - 1) + packer.flush()


def rasx_bytes(profile: str, extra: list[tuple[str, bytes, int, int]] | None = None) -> bytes:
    """A Rigaku .rasx archive with ``profile`` as Data0/Profile0.txt (and any extra members)."""
    return raw_zip([("Data0/Profile0.txt", *deflated(profile.encode("utf-8"))), *(extra or [])])


def _profile(x: np.ndarray, y: np.ndarray) -> str:
    return "".join(f"{a:.4f} {b:g} 1\n" for a, b in zip(x, y, strict=True))


def _raw4(steps_claimed: int, steps_written: int) -> bytes:
    """A Bruker RAW4.00 file whose range header claims ``steps_claimed`` records."""
    head = b"RAW4.00".ljust(61, b"\x00")
    rng = bytearray(160)
    struct.pack_into("<II", rng, 0, 0, 160)
    struct.pack_into("<dd", rng, 72, 10.0, 0.02)
    struct.pack_into("<I", rng, 88, steps_claimed)
    struct.pack_into("<II", rng, 136, 4, 0)
    records = np.full(steps_written, 100.0, dtype="<f4").tobytes()
    return head + bytes(rng) + records


def write_pattern_corpus(folder: Path) -> list[Kind]:
    """Write the bad (and awkward but usable) pattern files into ``folder``; return their kinds."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = good_columns()
    kinds: list[Kind] = []

    def add(name: str, expected: str, reason: str, path: Path) -> None:
        kinds.append(Kind(name, path, expected, reason))

    # two-column text
    add("empty file", "refused", "empty", folder / "empty.xy")
    (folder / "empty.xy").write_bytes(b"")
    add("blank lines only", "refused", "empty", folder / "blank.txt")
    (folder / "blank.txt").write_text("\n \n\t\n", encoding="utf-8")
    add("binary garbage", "refused", "binary", folder / "garbage.xy")
    (folder / "garbage.xy").write_bytes(np.random.default_rng(1).bytes(4096) + b"\x00")
    add("text that is not a table", "refused", "numeric", folder / "notes.csv")
    (folder / "notes.csv").write_text("10.0,5\n10.1,six\nhello world\n", encoding="utf-8")
    nan_y = y.copy()
    nan_y[500] = np.nan
    add("NaN intensity", "refused", "NaN", _xy(folder / "nan.xy", x, nan_y))
    inf_y = y.copy()
    inf_y[20] = np.inf
    add("infinite intensity", "refused", "infinite", _xy(folder / "inf.csv", x, inf_y, "2theta,I", ","))
    add("one column", "refused", "one column", folder / "one_column.txt")
    (folder / "one_column.txt").write_text("\n".join(f"{v:g}" for v in y) + "\n", encoding="utf-8")
    add("too few points", "refused", "data points", _xy(folder / "short.xy", x[:5], y[:5]))
    add("angles over 180°", "refused", "between 0 and 180", _xy(folder / "over180.xy", x * 2.5, y))
    add(
        "a scan that does not move",
        "refused",
        "same angle",
        _xy(folder / "still.xy", np.full(50, 30.0), y[:50]),
    )
    add("angles in radians", "refused", "radians", _xy(folder / "radians.xy", np.radians(x), y))
    d = 1.5406 / (2 * np.sin(np.radians(x / 2)))
    add(
        "d-spacings named in the header", "refused", "d-spacing",
        _xy(folder / "d_header.xy", d, y, "# d-spacing (A)  intensity"),
    )  # fmt: skip
    add("d-spacings without a header", "refused", "d-spacing", _xy(folder / "d_plain.xy", d, y))
    add("descending angles", "used", "descend", _xy(folder / "descending.xy", x[::-1], y[::-1]))
    dup_x = np.concatenate([x[:3000], x[2990:]])  # two scans overlapping by ten points
    dup_y = np.concatenate([y[:3000], y[2990:] * 1.02])
    add("duplicate angles", "used", "duplicate", _xy(folder / "duplicates.xy", dup_x, dup_y))
    add("negative intensities", "used", "negative", _xy(folder / "negative.xy", x, y - 2000.0))
    add(
        "wavelength in nm in a RRUFF header", "used", "nm",
        _xy(folder / "rruff_nm.txt", x, y, "##NAMES=Rutile\n##WAVELENGTH=0.15406 nm", ", "),
    )  # fmt: skip
    # XRDML
    good_xml = xrdml_text(x, y)
    add("XRDML wavelength in nm", "used", "nm", folder / "nm.xrdml")
    (folder / "nm.xrdml").write_text(xrdml_text(x, y, unit="nm", k_alpha1=0.1540598), encoding="utf-8")
    add("XRDML wavelength in an unknown unit", "refused", "unit", folder / "furlong.xrdml")
    (folder / "furlong.xrdml").write_text(xrdml_text(x, y, unit="furlong"), encoding="utf-8")
    entities = [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "lol"}">' for i in range(10)]
    laughs = "".join(entities)
    bomb = good_xml.replace("<xrdMeasurements", f"<!DOCTYPE lolz [{laughs}]>\n<xrdMeasurements", 1)
    add("XML bomb (billion laughs)", "refused", "DOCTYPE", folder / "laughs.xrdml")
    (folder / "laughs.xrdml").write_text(bomb.replace("<id>corpus</id>", "<id>&lol9;</id>"), encoding="utf-8")
    secret = folder.parent / f"{folder.name}-secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    xxe = good_xml.replace(
        "<xrdMeasurements", f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>\n<xrdMeasurements', 1
    ).replace("<id>corpus</id>", "<id>&xxe;</id>")
    add("XML external entity", "refused", "DOCTYPE", folder / "xxe.xrdml")
    (folder / "xxe.xrdml").write_text(xxe, encoding="utf-8")
    add("XML external entity in UTF-16", "refused", "DOCTYPE", folder / "xxe16.xrdml")
    (folder / "xxe16.xrdml").write_bytes(xxe.replace('"UTF-8"', '"UTF-16"').encode("utf-16"))
    add("truncated XRDML", "refused", "XML", folder / "truncated.xrdml")
    (folder / "truncated.xrdml").write_text(good_xml[: len(good_xml) // 2], encoding="utf-8")
    add("XRDML with text counts", "refused", "non-numeric", folder / "words.xrdml")
    (folder / "words.xrdml").write_text(
        good_xml.replace('<counts unit="counts">', '<counts unit="counts">many '), encoding="utf-8"
    )
    add("XRDML with a NaN count", "refused", "NaN", folder / "nan.xrdml")
    (folder / "nan.xrdml").write_text(xrdml_text(x, np.where(x == x[40], np.nan, y)), encoding="utf-8")
    add("empty XRDML", "refused", "empty", folder / "empty.xrdml")
    (folder / "empty.xrdml").write_bytes(b"")
    add("binary garbage named .xrdml", "refused", "binary", folder / "garbage.xrdml")
    (folder / "garbage.xrdml").write_bytes(b"\x00" + np.random.default_rng(3).bytes(2048))
    add("unknown binary .raw", "refused", "unknown binary", folder / "garbage.raw")
    (folder / "garbage.raw").write_bytes(b"XYZ\x00" + np.random.default_rng(4).bytes(2048))
    # RASX (zip)
    profile = _profile(x, y)
    add("RASX member compressed with bzip2", "refused", "unsupported method", folder / "bzip2.rasx")
    with zipfile.ZipFile(folder / "bzip2.rasx", "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("Data0/Profile0.txt", profile)
    add("RASX zip bomb", "refused", "large", folder / "bomb.rasx")
    (folder / "bomb.rasx").write_bytes(
        raw_zip([("Data0/Profile0.txt", zeros_stream(ZIP_BOMB_BYTES), 0, ZIP_BOMB_BYTES)])
    )
    add("RASX zip bomb with a lying size", "refused", "rasx", folder / "liar.rasx")
    (folder / "liar.rasx").write_bytes(
        raw_zip([("Data0/Profile0.txt", zeros_stream(ZIP_BOMB_BYTES), 0, 4096)])
    )
    add("RASX member named ../../evil", "refused", "unsafe", folder / "traversal.rasx")
    (folder / "traversal.rasx").write_bytes(
        rasx_bytes(profile, [("../../evil", *deflated(b"evil")), ("/tmp/evil2", *deflated(b"evil"))])
    )
    add("RASX profile behind ../", "refused", "unsafe", folder / "traversal2.rasx")
    (folder / "traversal2.rasx").write_bytes(
        raw_zip([("../../Data0/Profile0.txt", *deflated(profile.encode()))])
    )
    add("truncated RASX", "refused", "zip", folder / "truncated.rasx")
    (folder / "truncated.rasx").write_bytes(rasx_bytes(profile)[:300])
    add("RASX with an XML bomb", "refused", "DOCTYPE", folder / "xmlbomb.rasx")
    (folder / "xmlbomb.rasx").write_bytes(
        rasx_bytes(profile, [("Data0/MesurementConditions0.xml", *deflated(bomb.encode()))])
    )
    # Rigaku RAS, Bruker RAW, pdCIF
    add("RAS stating Cu Kα1 in nm without a unit", "used", "in nm", folder / "nm.ras")
    (folder / "nm.ras").write_text(
        '*RAS_DATA_START\n*HW_XG_WAVE_LENGTH_ALPHA1 "0.154056"\n*HW_XG_WAVE_LENGTH_ALPHA2 "0.154439"\n'
        f"*RAS_INT_START\n{profile}*RAS_INT_END\n",
        encoding="utf-8",
    )
    add("RAS without a data block", "refused", "RAS_INT_START", folder / "nodata.ras")
    (folder / "nodata.ras").write_text(
        '*RAS_DATA_START\n*HW_XG_WAVE_LENGTH_ALPHA1 "1.5406"\n', encoding="utf-8"
    )
    add("RAW4 claiming more steps than it holds", "refused", "more than the file holds", folder / "short.raw")
    (folder / "short.raw").write_bytes(_raw4(10**9, 20))
    add("RAW4 truncated in its header", "refused", "truncated", folder / "header.raw")
    (folder / "header.raw").write_bytes(_raw4(20, 20)[:100])
    add("STOE binary raw", "refused", "STOE", folder / "stoe.raw")
    (folder / "stoe.raw").write_bytes(b"RAW_1.06" + bytes(500))
    add("a structure CIF given as a pattern", "refused", "crystal structure", folder / "structure.cif")
    (folder / "structure.cif").write_bytes(GOOD_CIF.read_bytes())
    add("pdCIF with garbage numbers", "refused", "pdcif", folder / "garbage_pd.cif")
    (folder / "garbage_pd.cif").write_text(
        "data_p\n_pd_meas_2theta_range_min 10\nloop_\n_pd_meas_2theta_scan\n_pd_meas_counts_total\n"
        + "".join(f"{a:.2f} x{b:g}\n" for a, b in zip(x[:50], y[:50], strict=True)),
        encoding="utf-8",
    )
    return kinds


def _good_cif() -> str:
    return GOOD_CIF.read_text(encoding="utf-8")


def write_cif_corpus(folder: Path) -> list[Kind]:
    """Write broken crystal-structure CIFs (and rutile's good one, kind "used") into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    good = _good_cif()
    kinds: list[Kind] = []

    def add(name: str, expected: str, reason: str, file: str, text: str | bytes) -> None:
        path = folder / file
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        kinds.append(Kind(name, path, expected, reason))

    add("good rutile", "used", "", "rutile.cif", good)
    add(
        "broken symmetry loop", "refused", "symmetry", "bad_symop.cif",
        good.replace("_symmetry_space_group_name_H-M   'P 1'", "_symmetry_space_group_name_H-M   'P 4 2/q'")
        .replace("_symmetry_Int_Tables_number   1", "_symmetry_Int_Tables_number   999")
        .replace("1  'x, y, z'", "1  'x, y, z'\n  2  'q+1/2, y, banana'"),
    )  # fmt: skip
    add(
        "symmetry loop with a missing value", "refused", "number of values in loop", "short_symop.cif",
        good.replace("1  'x, y, z'", "1  'x, y, z'\n  2"),
    )  # fmt: skip
    atoms = good.index("loop_\n _atom_site_type_symbol")
    add("no atom sites", "refused", "atom sites", "no_atoms.cif", good[:atoms])
    add(
        "occupancy over 1",
        "refused",
        "occupancy",
        "overfull.cif",
        good.replace("0.00000000  1.0\n", "0.00000000  1.7\n", 1),
    )
    add(
        "garbage numbers in the cell", "refused", "cell", "garbage_cell.cif",
        good.replace("_cell_length_a   4.60920000", "_cell_length_a   four"),
    )  # fmt: skip
    add(
        "garbage atom coordinates", "refused", "not numbers", "garbage_xyz.cif",
        good.replace("0.19580000  0.80420000", "0.1958zz  0.8042!!"),
    )  # fmt: skip
    add(
        "an absurd cell (a = 10^6 Å)", "refused", "cell", "huge_cell.cif",
        good.replace("_cell_length_a   4.60920000", "_cell_length_a   1000000")
        .replace("_cell_length_b   4.60920000", "_cell_length_b   1000000"),
    )  # fmt: skip
    add(
        "a protein-sized cell (400 Å)", "refused", "too large", "big_cell.cif",
        good.replace("_cell_length_a   4.60920000", "_cell_length_a   400")
        .replace("_cell_length_b   4.60920000", "_cell_length_b   400"),
    )  # fmt: skip
    add("empty CIF", "refused", "empty", "empty.cif", b"")
    add(
        "binary garbage named .cif",
        "refused",
        "not a readable CIF",
        "garbage.cif",
        np.random.default_rng(2).bytes(2048),
    )
    return kinds
