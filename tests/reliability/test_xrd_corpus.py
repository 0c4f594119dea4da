"""Bad XRD pattern files and CIFs (corpus_xrd.py) through the readers, a project's import, the CLI's predict
and library commands: each refused file gets one line naming it and the reason, the rest is used."""

from __future__ import annotations

import json
import shutil
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from corpus_xrd import GOOD_CIF, GOOD_PATTERN, SECRET, Kind, write_cif_corpus, write_pattern_corpus

from labeltune.cli import main
from labeltune.core.xrd import readers_vendor
from labeltune.core.xrd.library import build_library
from labeltune.core.xrd.pattern import PatternReadError
from labeltune.core.xrd.readers import read_pattern
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.core.xrd.xrd_project import XrdProject

_OPENED: list[str] = []
_WATCHING: list[bool] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING and event == "open" and args and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one only records while a test watches


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Kind]]:
    """The pattern corpus plus the good measured pattern, in one folder."""
    folder = tmp_path_factory.mktemp("xrd-corpus") / "patterns"
    kinds = write_pattern_corpus(folder)
    shutil.copyfile(GOOD_PATTERN, folder / "good.xy")
    return folder, kinds


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Every path the process opens while the test runs."""
    _OPENED.clear()
    _WATCHING.append(True)
    yield _OPENED
    _WATCHING.clear()


def _one_line(text: str) -> bool:
    return "\n" not in text.strip() and "Traceback" not in text


def test_the_corpus_covers_the_kinds_the_issue_names(corpus: tuple[Path, list[Kind]], tmp_path: Path) -> None:
    _folder, kinds = corpus
    names = " ".join(k.name for k in kinds + write_cif_corpus(tmp_path)).lower()
    for wanted in (
        "nan", "one column", "descending", "duplicate", "negative", "radians", "d-spacings", "nm", "empty",
        "binary garbage", "xml bomb", "external entity", "zip bomb", "../../evil", "symmetry", "no atom",
        "occupancy over 1", "garbage numbers",
    ):  # fmt: skip
        assert wanted in names
    assert len(kinds) >= 30


def test_every_pattern_kind_is_used_with_its_warning_or_refused_naming_the_file(
    corpus: tuple[Path, list[Kind]],
) -> None:
    _folder, kinds = corpus
    for kind in kinds:
        if kind.expected == "refused":
            with pytest.raises(PatternReadError) as caught:
                read_pattern(kind.path)
            message = str(caught.value)
            assert message.startswith(f"{kind.path.name}: "), (kind.name, message)
            assert kind.reason.lower() in message.lower(), (kind.name, message)
            assert _one_line(message) and SECRET not in message, (kind.name, message)
        else:
            pattern = read_pattern(kind.path)
            assert len(pattern) >= 1000, kind.name
            assert any(kind.reason in w for w in pattern.warnings), (kind.name, pattern.warnings)
            assert pattern.two_theta.min() >= 10 and pattern.two_theta.max() <= 100, kind.name
            assert all(d > 0 for d in (pattern.two_theta[1:] - pattern.two_theta[:-1])), kind.name


def test_awkward_files_are_read_as_a_rietveld_user_expects(corpus: tuple[Path, list[Kind]]) -> None:
    folder, _kinds = corpus
    good = read_pattern(folder / "good.xy")
    assert good.warnings == ()
    descending = read_pattern(folder / "descending.xy")
    assert (descending.two_theta == good.two_theta).all() and (descending.intensity == good.intensity).all()
    merged = read_pattern(folder / "duplicates.xy")  # ten angles measured twice: one point each, averaged
    assert len(merged) == len(good)
    assert merged.intensity[2995] == pytest.approx(good.intensity[2995] * 1.01)
    negative = read_pattern(folder / "negative.xy")  # kept as given (background-subtracted data)
    assert negative.intensity == pytest.approx(good.intensity - 2000.0)
    for name in ("nm.xrdml", "rruff_nm.txt", "nm.ras"):  # a wavelength stated in nm is 10x that in Å
        assert read_pattern(folder / name).wavelength == pytest.approx(1.5406, abs=1e-4)
    assert read_pattern(folder / "nm.ras").wavelength2 == pytest.approx(1.54439)


def test_an_external_entity_never_opens_its_target(
    corpus: tuple[Path, list[Kind]], opened: list[str]
) -> None:
    folder, _kinds = corpus
    for name in ("xxe.xrdml", "xxe16.xrdml", "laughs.xrdml"):
        with pytest.raises(PatternReadError, match="DOCTYPE"):
            read_pattern(folder / name)
    assert any(path.endswith("xxe.xrdml") for path in opened)  # the hook does see the reader's opens
    assert not [path for path in opened if path.endswith("-secret.txt")]


def test_a_zip_bomb_is_never_inflated_past_the_bound(
    corpus: tuple[Path, list[Kind]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _kinds = corpus
    inflated: list[int] = []  # what the zip's deflate decompressor put out, call by call
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args: int) -> None:
            self.inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    monkeypatch.setattr(readers_vendor, "MAX_ZIP_MEMBER_BYTES", 1024 * 1024)
    with pytest.raises(PatternReadError, match="implausibly large"):  # its header says 2 GiB
        read_pattern(folder / "bomb.rasx")
    assert inflated == []
    with pytest.raises(PatternReadError, match=r"liar\.rasx: cannot read"):  # says 4 kB, inflates to 2 GiB
        read_pattern(folder / "liar.rasx")
    assert 0 < sum(inflated) <= 2 * 1024 * 1024


def test_a_path_traversing_member_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "er"
    kinds = [k for k in write_pattern_corpus(folder) if "rasx" in k.path.name and "../" in k.name]
    assert kinds
    before = sorted(p for p in tmp_path.rglob("*"))
    for kind in kinds:
        with pytest.raises(PatternReadError, match="unsafe path"):
            read_pattern(kind.path)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not list(tmp_path.rglob("evil*"))


def test_importing_the_corpus_into_a_project_keeps_the_good_and_names_each_bad_file(
    corpus: tuple[Path, list[Kind]], tmp_path: Path
) -> None:
    folder, kinds = corpus
    library = build_library([], tmp_path / "library")
    project = XrdProject.create(tmp_path / "project", "corpus", library.path or tmp_path / "library")
    added, skipped = project.import_patterns([folder])
    used = {k.path.name for k in kinds if k.expected == "used"} | {"good.xy"}
    assert {p.name for p in added} == used
    assert sorted(p.name for p in project.patterns()) == sorted(used)
    reasons = {Path(path).name: why for path, why in skipped}
    for kind in kinds:
        if kind.expected == "refused":
            assert reasons[kind.path.name].startswith(kind.path.name), kind.name
            assert kind.reason.lower() in reasons[kind.path.name].lower(), (
                kind.name,
                reasons[kind.path.name],
            )
    assert len(skipped) == sum(k.expected == "refused" for k in kinds)
    again, skipped_again = project.import_patterns([folder])  # the second time: copies, all skipped
    assert again == [] and sorted(p.name for p in project.patterns()) == sorted(used)
    assert sum("already in the project" in why for _p, why in skipped_again) == len(used)


@pytest.mark.skipif(shipped_model_dir() is None, reason="the shipped XRD model is not in this checkout")
def test_predict_identifies_the_usable_files_and_names_each_refused_one(
    corpus: tuple[Path, list[Kind]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, kinds = corpus
    run = str(shipped_model_dir())
    code = main(["predict", run, str(folder), "--wavelength", "1.5406", "--no-fit", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    rows = {Path(row["path"]).name: row for row in json.loads(out)}
    assert len(rows) == len(kinds) + 1
    for kind in kinds:
        row = rows[kind.path.name]
        if kind.expected == "used":  # TiO2, whatever was odd about the file, and the oddity said (the
            # network alone, --no-fit: the shipped model may call both TiO2 polymorphs of the library)
            assert {c["formula"] for c in row["phases"]} == {"TiO2"}, (kind.name, row)
            assert any(kind.reason in w for w in row["warnings"]), (kind.name, row)
        else:
            assert "phases" not in row and kind.reason.lower() in row["error"].lower(), (kind.name, row)
    assert {c["formula"] for c in rows["good.xy"]["phases"]} == {"TiO2"}
    refused = [k for k in kinds if k.expected == "refused"][::4]
    files = [str(folder / "descending.xy"), *(str(k.path) for k in refused)]
    code = main(["predict", run, *files, "--wavelength", "1.5406", "--no-fit"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 0 and len(lines) == len(refused) and "Traceback" not in err
    for kind in refused:
        assert sum(line.startswith(f"skipped {kind.path}: {kind.path.name}: ") for line in lines) == 1
    assert "! the 2θ values descend" in out


@pytest.mark.skipif(shipped_model_dir() is None, reason="the shipped XRD model is not in this checkout")
def test_predict_with_only_bad_files_exits_2_with_one_line_each(
    corpus: tuple[Path, list[Kind]], capsys: pytest.CaptureFixture[str]
) -> None:
    _folder, kinds = corpus
    bad = [k for k in kinds if k.expected == "refused"][:6]
    code = main(["predict", str(shipped_model_dir()), *(str(k.path) for k in bad), "--wavelength", "1.5406"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == len(bad)


def test_a_library_from_a_folder_of_bad_cifs_uses_the_good_one_and_names_each_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kinds = write_cif_corpus(tmp_path / "cifs")
    code = main(["xrd", "library", str(tmp_path / "cifs"), "--out", str(tmp_path / "lib"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    summary = json.loads(out)
    assert [(p["name"], p["formula"]) for p in summary["phases"]] == [("rutile", "TiO2")]
    reasons = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    for kind in kinds:
        if kind.expected == "refused":
            why = reasons[kind.path.name]
            assert why.startswith(f"{kind.path.name}: ") and _one_line(why), (kind.name, why)
            assert kind.reason.lower() in why.lower(), (kind.name, why)
            assert str(tmp_path) not in why  # the file's name, not the parser's full path
    assert len(reasons) == len(kinds) - 1
    (tmp_path / "cifs" / "rutile.cif").unlink()
    code = main(["xrd", "library", str(tmp_path / "cifs"), "--out", str(tmp_path / "lib2")])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == len(kinds) - 1


@pytest.mark.parametrize(
    "command",
    [["predict", "RUN", "PATTERN"], ["xrd", "library", "CIF", "--out", "OUT"]],
    ids=["predict", "library"],
)
def test_a_wavelength_given_in_nm_is_refused_with_one_line(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shipped_model_dir() is None:
        pytest.skip("the shipped XRD model is not in this checkout")
    things = {
        "RUN": str(shipped_model_dir()),
        "PATTERN": str(GOOD_PATTERN),
        "CIF": str(GOOD_CIF),
        "OUT": str(tmp_path),
    }
    assert main([things.get(a, a) for a in command] + ["--wavelength", "0.15406"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and _one_line(err) and "ångström" in err
    assert not (tmp_path / "library.json").exists()


def test_only_a_first_column_named_d_or_q_is_refused(tmp_path: Path) -> None:
    rows = "".join(
        f"{10 + i * 0.02:.2f} {1.5406 / 2 / np.sin(np.radians(5 + i * 0.01)):.4f}\n" for i in range(200)
    )
    for header, refused in (
        ("# 2theta d(A)", False),
        ("# d (A)  I", True),
        ("Q(1/A),I", True),
        ("# data", False),
    ):
        path = tmp_path / "table.xy"
        path.write_text(f"{header}\n{rows}", encoding="utf-8")
        if refused:
            with pytest.raises(PatternReadError, match="the header says the first column is"):
                read_pattern(path)
        else:
            assert len(read_pattern(path)) == 200


@pytest.mark.skipif(shipped_model_dir() is None, reason="the shipped XRD model is not in this checkout")
def test_fine_tuning_on_labeled_bad_files_names_each_once_and_leaves_no_run_folder(
    corpus: tuple[Path, list[Kind]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, kinds = corpus
    refused = [k for k in kinds if k.expected == "refused"][:4]
    labeled = tmp_path / "labeled"
    labeled.mkdir()
    rows = ["path,phases"]
    for source in [folder / "good.xy", folder / "descending.xy", *(k.path for k in refused)]:
        shutil.copyfile(source, labeled / source.name)
        rows.append(f"{source.name},TiO2_136")
    (labeled / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    run = tmp_path / "runs" / "fine-tune"
    args = ["train", str(labeled), "--domain", "xrd", "--init", str(shipped_model_dir()), "--epochs", "1"]
    assert main([*args, "--wavelength", "1.5406", "--out", str(run)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and _one_line(err) and f"{len(refused)} labeled pattern(s) cannot be used" in err
    for kind in refused:
        assert err.count(f"{kind.path.name}:") == 1, (kind.name, err)
    assert not run.exists() and not (tmp_path / "runs").exists()
