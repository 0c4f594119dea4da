"""One staging helper for every ready-made project folder (``core/staging.py``), and no demo import cycle."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import grimp
import pytest

import labeltune.core
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import StoppedError
from labeltune.core.staging import build_folder, check_empty_target, make_staging


def _write_two_files(staging: Path) -> None:
    assert staging.is_dir() and not any(staging.iterdir())  # an empty, hidden sibling of the target
    assert staging.name.startswith(".") and staging.name.endswith(".partial")
    (staging / "a.txt").write_text("a")
    (staging / "sub").mkdir()
    (staging / "sub" / "b.txt").write_text("b")


def test_build_folder_renames_the_complete_folder_into_place(tmp_path: Path) -> None:
    seen: list[Path] = []

    def build(staging: Path) -> None:
        seen.append(staging)
        assert staging.parent == tmp_path / "deep"
        _write_two_files(staging)

    folder = build_folder(os.path.relpath(tmp_path / "deep" / "new"), build)
    assert folder == tmp_path / "deep" / "new" and folder.is_absolute()
    assert (folder / "a.txt").read_text() == "a" and (folder / "sub" / "b.txt").read_text() == "b"
    assert not seen[0].exists()
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["new"]


def test_build_folder_fills_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    folder = build_folder(tmp_path / "empty", _write_two_files)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "sub"]
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


@pytest.mark.parametrize("error", [StoppedError(), ValueError("broken"), KeyboardInterrupt()])
def test_a_failed_or_stopped_build_leaves_nothing(tmp_path: Path, error: BaseException) -> None:
    def build(staging: Path) -> None:
        _write_two_files(staging)
        raise error

    with pytest.raises(type(error)):
        build_folder(tmp_path / "new", build)
    assert list(tmp_path.iterdir()) == []


def test_an_os_error_is_worded_with_what_and_where(tmp_path: Path) -> None:
    def build(staging: Path) -> None:
        raise PermissionError(13, "Permission denied", str(staging / "x"))

    with pytest.raises(UnusableInputError, match=r"cannot write the library to .*new: .*Permission denied"):
        build_folder(tmp_path / "new", build, what="the library")
    assert list(tmp_path.iterdir()) == []


def test_the_target_must_be_missing_or_an_empty_folder(tmp_path: Path) -> None:
    check_empty_target(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnusableInputError, match="exists and is not a folder"):
        check_empty_target(tmp_path / "file")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UnusableInputError, match="not empty; choose another folder"):
        build_folder(tmp_path / "full", _write_two_files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full"]  # no staging folder made


def test_staging_folders_are_unique_siblings(tmp_path: Path) -> None:
    one, two = make_staging(tmp_path / "a" / "t"), make_staging(tmp_path / "a" / "t")
    assert one != two and one.parent == two.parent == tmp_path / "a"
    assert one.is_dir() and two.is_dir()


def test_the_demo_writers_import_each_other_one_way_only() -> None:
    """demos.write_demo dispatches to the XRD writer; the XRD writer reads the catalogue, never demos."""
    graph = grimp.build_graph("labeltune")
    assert graph.chain_exists(importer="labeltune.core.demos", imported="labeltune.core.xrd.demo")
    assert not graph.chain_exists(importer="labeltune.core.xrd.demo", imported="labeltune.core.demos")
    for module in ("labeltune.core.demos", "labeltune.core.xrd.demo"):
        assert graph.direct_import_exists(importer=module, imported="labeltune.core.staging")


@pytest.mark.parametrize("module", ["demos", "demo_catalog", "staging", "xrd/demo"])
def test_the_demo_modules_import_no_private_names(module: str) -> None:
    source = Path(labeltune.core.__file__).parent / f"{module}.py"
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labeltune")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []
