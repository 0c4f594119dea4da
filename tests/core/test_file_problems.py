"""Each bad file is named with its specific reason, decided in one place (issue 9, item 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import BAD_FILE_REASONS, write_bad_files, write_class_folder
from labeltune import cli
from labeltune.core.datasets import scan
from labeltune.core.errors import ImageDecodeError
from labeltune.core.file_problems import MISSING, os_error_reason
from labeltune.core.imaging import check_image, decode_rgb, file_problem, probe


@pytest.mark.parametrize("name", sorted(BAD_FILE_REASONS))
def test_each_bad_file_gets_its_own_reason(tmp_path: Path, name: str) -> None:
    path = write_bad_files(tmp_path)[name]
    assert file_problem(path) == BAD_FILE_REASONS[name]
    with pytest.raises(ImageDecodeError) as raised:
        decode_rgb(path)  # the gallery, training and predict decode: the same reason there
    assert str(raised.value) == BAD_FILE_REASONS[name]


def test_header_check_passes_the_truncated_jpeg_but_the_full_check_does_not(tmp_path: Path) -> None:
    cut = write_bad_files(tmp_path)["cut.jpg"]
    assert probe(cut) == (128, 96)  # why a header-only scan let it in
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        check_image(cut)


def test_other_reasons(tmp_path: Path) -> None:
    (tmp_path / "report.jpg").write_bytes(b"%PDF-1.7\n%binary\n")
    (tmp_path / "drawing.png").write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    assert file_problem(tmp_path / "report.jpg") == "not an image (a PDF document)"
    assert file_problem(tmp_path / "drawing.png") == "unsupported format (SVG drawing; export it as PNG)"
    assert file_problem(tmp_path / "gone.jpg") == MISSING == "missing (file not found)"
    assert file_problem(tmp_path / "ok.png") is None
    assert os_error_reason(PermissionError(13, "Permission denied")) == "cannot be read (permission denied)"


def test_scan_names_each_bad_file_and_keeps_the_truncated_jpeg_out(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "data", classes=2, per_class=3)
    write_bad_files(root / "class0")
    (root / "class1" / "spectrum.xyz").write_text("1 2")
    data = scan(root)
    reasons = {Path(s.path).name: s.reason for s in data.skipped}
    assert reasons == {**BAD_FILE_REASONS, "spectrum.xyz": "unsupported format (.xyz is not an image type)"}
    assert {s.path.name for s in data.samples}.isdisjoint(BAD_FILE_REASONS)
    assert data.counts() == {"class0": 3, "class1": 3}


def test_csv_names_a_missing_file(tmp_path: Path) -> None:
    write_class_folder(tmp_path, classes=1, per_class=1)
    (tmp_path / "list.csv").write_text("path,label\nclass0/img000.png,a\nclass0/gone.png,a\n")
    data = scan(tmp_path / "list.csv")
    assert [(Path(s.path).name, s.reason) for s in data.skipped] == [("gone.png", MISSING)]


def test_cli_scan_prints_each_file_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_class_folder(tmp_path / "data", classes=2, per_class=2)
    write_bad_files(root / "class1")
    assert cli.main(["scan", str(root)]) == 0
    err = capsys.readouterr().err
    for name, reason in BAD_FILE_REASONS.items():
        assert f"{root.resolve() / 'class1' / name}: {reason}" in err
    assert cli.main(["scan", str(root), "--json"]) == 0
    skipped = json.loads(capsys.readouterr().out)["skipped"]
    assert {Path(s["path"]).name: s["reason"] for s in skipped} == BAD_FILE_REASONS
