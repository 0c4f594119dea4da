"""Tests for labeltune.core.datasets: class folders, ``path,label[,group]`` CSV files and project folders."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltune import cli
from labeltune.core.datasets import Dataset, Sample, scan
from labeltune.core.errors import UnusableInputError
from labeltune.core.project import Project

CLASSES = {"alpha": (220, 40, 40), "beta": (40, 200, 40), "gamma": (40, 40, 220)}
PER_CLASS = 16


def _image(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 40) -> Image.Image:
    pixels = np.asarray(colour, dtype=np.float64)[None, None, :] + rng.normal(0, 20, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _truncated_jpeg(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    return data[: len(data) // 3]  # the header survives, the pixel data does not


def make_dataset(root: Path, seed: int = 0) -> dict[str, Path]:
    """Write 3 separable classes x 16 images plus the awkward files a real folder holds.

    alpha/  16 images (PNG and JPEG) + truncated.jpg (passes the header check, fails to decode)
    beta/   12 images + batch2/4 more (nested) + corrupt.jpg (random bytes)
    gamma/  14 images + 2 with an upper-case .JPG suffix
    top level: unlabeled.png, notes.txt, .DS_Store, a hidden folder with an image, an AppleDouble file
    """
    rng = np.random.default_rng(seed)
    for name, colour in CLASSES.items():
        for i in range(PER_CLASS):
            folder = root / name
            if name == "beta" and i >= 12:
                folder = folder / "batch2"
            folder.mkdir(parents=True, exist_ok=True)
            image = _image(colour, rng)
            if name == "gamma" and i >= 14:
                image.save(folder / f"{name}_sp{i // 2:02d}_{i % 2}.JPG", "JPEG", quality=90)
            elif i % 2:
                image.save(folder / f"{name}_sp{i // 2:02d}_{i % 2}.png")
            else:
                image.save(folder / f"{name}_sp{i // 2:02d}_{i % 2}.jpg", quality=90)
    truncated = root / "alpha" / "truncated.jpg"
    truncated.write_bytes(_truncated_jpeg(rng))
    corrupt = root / "beta" / "corrupt.jpg"
    corrupt.write_bytes(rng.bytes(600))
    unlabeled = root / "unlabeled.png"
    _image((128, 128, 128), rng).save(unlabeled)
    (root / "notes.txt").write_text("imaged on the 3rd, microscope B\n")
    (root / ".DS_Store").write_bytes(rng.bytes(64))
    (root / "alpha" / "._alpha_sp00_1.png").write_bytes(rng.bytes(64))  # macOS AppleDouble: not an image
    (root / ".thumbnails").mkdir()
    _image((0, 0, 0), rng).save(root / ".thumbnails" / "thumb.png")
    (root / "alpha" / ".cache").mkdir()
    _image((0, 0, 0), rng).save(root / "alpha" / ".cache" / "thumb.png")
    return {"truncated": truncated, "corrupt": corrupt, "unlabeled": unlabeled}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep caches and the weights store out of the user's folders; never go online."""
    base = tmp_path_factory.mktemp("env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELTUNE_CACHE_DIR", str(base / "cache"))
        mp.setenv("LABELTUNE_DATA_DIR", str(base / "data"))
        mp.setenv("LABELTUNE_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")
        yield


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, env: None) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("images")
    return root, make_dataset(root)


@pytest.fixture(scope="module")
def scanned(dataset: tuple[Path, dict[str, Path]]) -> Dataset:
    return scan(dataset[0])


def _skipped_paths(data: Dataset) -> set[Path]:
    return {Path(s.path) for s in data.skipped}


# ------------------------------------------------------------------------------------------ class folders


def test_folder_scan_counts(scanned: Dataset, dataset: tuple[Path, dict[str, Path]]) -> None:
    root, special = dataset
    assert scanned.kind == "folder"
    assert scanned.root == root.resolve()
    assert scanned.classes == ["alpha", "beta", "gamma"]
    counts = scanned.counts()
    # The truncated JPEG passes a header check, but the scan decodes it: it is not a sample.
    assert special["truncated"].resolve() not in {s.path for s in scanned.samples}
    assert counts == {"alpha": PER_CLASS, "beta": PER_CLASS, "gamma": PER_CLASS}
    assert len(scanned.labeled) == sum(counts.values())
    assert all(s.path.is_absolute() and s.path.exists() for s in scanned.samples)
    assert all(s.group is None for s in scanned.samples)


def test_unlabeled_top_level_files(scanned: Dataset, dataset: tuple[Path, dict[str, Path]]) -> None:
    assert [s.path for s in scanned.unlabeled] == [dataset[1]["unlabeled"].resolve()]
    assert scanned.unlabeled[0].label is None


def test_corrupt_file_is_skipped_with_reason(scanned: Dataset, dataset: tuple[Path, dict[str, Path]]) -> None:
    corrupt = dataset[1]["corrupt"].resolve()
    assert corrupt not in {s.path for s in scanned.samples}
    (entry,) = [s for s in scanned.skipped if Path(s.path) == corrupt]
    assert entry.reason.strip()
    assert entry.to_json() == {"path": str(corrupt), "reason": entry.reason}


def test_truncated_file_is_never_dropped_silently(
    scanned: Dataset, dataset: tuple[Path, dict[str, Path]]
) -> None:
    # The scan decodes every file, so the truncated JPEG is reported with its reason, not a sample.
    truncated = dataset[1]["truncated"].resolve()
    assert truncated not in {s.path for s in scanned.samples}
    (entry,) = [s for s in scanned.skipped if Path(s.path) == truncated]
    assert entry.reason == "truncated JPEG (image data ends early)"


def test_nested_folders_count_for_their_class(scanned: Dataset) -> None:
    nested = [s for s in scanned.samples if s.path.parent.name == "batch2"]
    assert len(nested) == 4
    assert {s.label for s in nested} == {"beta"}


def test_upper_case_extension_accepted(scanned: Dataset) -> None:
    upper = [s for s in scanned.samples if s.path.suffix == ".JPG"]
    assert len(upper) == 2
    assert {s.label for s in upper} == {"gamma"}


def test_hidden_files_and_folders_ignored(scanned: Dataset) -> None:
    everything = [s.path for s in scanned.samples] + [Path(s.path) for s in scanned.skipped]
    for path in everything:
        assert not any(part.startswith(".") for part in path.parts[-3:]), path


def test_text_files_are_neither_samples_nor_skipped(scanned: Dataset) -> None:
    everything = [s.path for s in scanned.samples] + [Path(s.path) for s in scanned.skipped]
    assert all(p.name != "notes.txt" for p in everything)


def test_unknown_file_type_is_reported(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _image((0, 0, 0), rng).save(tmp_path / name / "x.png")
    (tmp_path / "a" / "spectrum.xyz").write_text("1 2 3")
    data = scan(tmp_path)
    assert data.counts() == {"a": 1, "b": 1}
    (entry,) = data.skipped
    assert Path(entry.path).name == "spectrum.xyz"
    assert ".xyz" in entry.reason


def test_symlinked_class_folders_are_followed_without_loops(
    tmp_path: Path, dataset: tuple[Path, dict[str, Path]]
) -> None:
    root = tmp_path / "linked"
    root.mkdir()
    try:
        (root / "alpha").symlink_to(dataset[0] / "gamma", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("cannot make symlinks here")
    (root / "beta").mkdir()
    _image((0, 0, 0), np.random.default_rng(4)).save(root / "beta" / "x.png")
    (root / "beta" / "loop").symlink_to(root, target_is_directory=True)  # a link back to the top
    data = scan(root)
    assert data.counts() == {"alpha": PER_CLASS, "beta": 1}


def test_summary_is_json(scanned: Dataset) -> None:
    summary = json.loads(json.dumps(scanned.summary()))
    assert summary["classes"] == scanned.counts()
    assert summary["unlabeled"] == 1
    assert summary["labeled"] == len(scanned.labeled)
    assert all(set(item) == {"path", "reason"} for item in summary["skipped"])


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(UnusableInputError, match="does not exist"):
        scan(tmp_path / "nope")


def test_plain_file_is_not_a_dataset(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(UnusableInputError):
        scan(path)


def test_empty_folder(tmp_path: Path) -> None:
    data = scan(tmp_path)
    assert data.samples == [] and data.skipped == [] and data.classes == []


def test_check_false_reads_no_headers(dataset: tuple[Path, dict[str, Path]]) -> None:
    data = scan(dataset[0], check=False)
    paths = {s.path for s in data.samples}
    assert dataset[1]["corrupt"].resolve() in paths  # not opened, so not detected
    assert dataset[1]["truncated"].resolve() in paths


# ------------------------------------------------------------------------------------------ CSV files


def _write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_relative_paths_labels_and_groups(dataset: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, special = dataset
    absolute = root / "gamma" / "gamma_sp00_0.jpg"
    csv_path = _write_csv(
        root / "labels.csv",
        [
            "path,label,group",
            "alpha/alpha_sp00_0.jpg,alpha,plate1",
            "alpha/alpha_sp00_1.png,alpha,plate1",
            "beta/beta_sp00_0.jpg,beta,plate2",
            "beta/batch2/beta_sp06_0.jpg,beta,",
            f"{absolute},gamma,plate3",
            "unlabeled.png,,",
        ],
    )
    data = scan(csv_path)
    assert data.kind == "csv"
    assert data.root == csv_path.resolve()
    assert data.counts() == {"alpha": 2, "beta": 2, "gamma": 1}
    by_name = {s.path.name: s for s in data.samples}
    assert by_name["alpha_sp00_0.jpg"] == Sample(
        (root / "alpha/alpha_sp00_0.jpg").resolve(), "alpha", "plate1"
    )
    assert by_name["beta_sp06_0.jpg"].group is None  # empty cell: no group
    assert by_name["gamma_sp00_0.jpg"].path == absolute.resolve()
    assert [s.path for s in data.unlabeled] == [special["unlabeled"].resolve()]
    assert data.skipped == []


def test_csv_without_group_column(dataset: tuple[Path, dict[str, Path]]) -> None:
    root = dataset[0]
    csv_path = _write_csv(root / "nogroup.csv", ["path,label", "alpha/alpha_sp01_0.jpg,alpha"])
    (sample,) = scan(csv_path).samples
    assert sample.label == "alpha" and sample.group is None


def test_csv_missing_and_corrupt_files_reported(dataset: tuple[Path, dict[str, Path]]) -> None:
    root = dataset[0]
    csv_path = _write_csv(
        root / "missing.csv",
        [
            "path,label",
            "alpha/alpha_sp00_0.jpg,alpha",
            "alpha/gone.jpg,alpha",
            "beta/corrupt.jpg,beta",
            "gamma/gamma_sp00_0.jpg,gamma",
        ],
    )
    data = scan(csv_path)
    assert data.counts() == {"alpha": 1, "gamma": 1}
    reasons = {Path(s.path).name: s.reason for s in data.skipped}
    assert set(reasons) == {"gone.jpg", "corrupt.jpg"}
    assert "not found" in reasons["gone.jpg"]
    assert reasons["corrupt.jpg"]


def test_csv_without_path_column(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "bad.csv", ["file,label", "a.png,x"])
    with pytest.raises(UnusableInputError, match="path"):
        scan(csv_path)


def test_csv_empty_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "empty.csv"
    csv_path.write_text("")
    with pytest.raises(UnusableInputError, match="path"):
        scan(csv_path)


def test_csv_header_only_is_an_empty_dataset(tmp_path: Path) -> None:
    data = scan(_write_csv(tmp_path / "header.csv", ["path,label,group"]))
    assert data.samples == [] and data.skipped == []


def test_csv_header_case_and_spaces(dataset: tuple[Path, dict[str, Path]]) -> None:
    root = dataset[0]
    csv_path = _write_csv(root / "excel.csv", ["Path, Label", "alpha/alpha_sp02_0.jpg, alpha"])
    (sample,) = scan(csv_path).samples
    assert sample.label == "alpha"


def test_csv_with_bom(dataset: tuple[Path, dict[str, Path]]) -> None:
    root = dataset[0]
    csv_path = root / "bom.csv"
    csv_path.write_text("path,label\nalpha/alpha_sp02_0.jpg,alpha\n", encoding="utf-8-sig")
    assert scan(csv_path).counts() == {"alpha": 1}


def test_csv_upper_case_suffix(dataset: tuple[Path, dict[str, Path]]) -> None:
    root = dataset[0]
    csv_path = _write_csv(root / "upper.CSV", ["path,label", "alpha/alpha_sp02_0.jpg,alpha"])
    assert scan(csv_path).kind == "csv"


def test_csv_not_utf8(tmp_path: Path) -> None:
    csv_path = tmp_path / "latin.csv"
    csv_path.write_bytes(b"path,label\n\xff\xfe\xfa.png,x\n")
    with pytest.raises(UnusableInputError):
        scan(csv_path)


# ------------------------------------------------------------------------------------------ projects


def test_project_folder_scan(tmp_path: Path, dataset: tuple[Path, dict[str, Path]]) -> None:
    root = dataset[0]
    rng = np.random.default_rng(2)
    folder = tmp_path / "proj"
    Project.create(folder, name="Plankton", classes=["zeta", "alpha"]).close()  # a new, empty folder
    inside = folder / "images"  # images kept inside the project folder are found there too
    inside.mkdir(parents=True)
    for i in range(3):
        _image((200, 0, 0), rng).save(inside / f"inside{i}.png")
    gone = inside / "gone.png"
    _image((0, 0, 0), rng).save(gone)
    outside = [root / "beta" / "beta_sp00_0.jpg", root / "beta" / "beta_sp00_1.png"]
    with Project.open(folder) as project:
        project.add_samples(
            [
                Sample(inside / "inside0.png", "alpha", "plate1"),
                Sample(inside / "inside1.png", None),
                Sample(inside / "inside2.png", None),
                Sample(gone, "alpha"),
                Sample(outside[0], "beta"),
                Sample(outside[1], None),
            ]
        )
        project.set_label(inside / "inside1.png", "zeta")
        project.set_label(outside[1], "beta")
    gone.unlink()

    data = scan(folder)
    assert data.kind == "project"
    assert data.root == folder.resolve()
    # declared order first (zeta, alpha), then labels added by import
    assert data.classes == ["zeta", "alpha", "beta"]
    assert data.counts() == {"zeta": 1, "alpha": 1, "beta": 2}
    labels = {s.path: s.label for s in data.samples}
    assert labels[(inside / "inside0.png").resolve()] == "alpha"
    assert labels[(inside / "inside1.png").resolve()] == "zeta"
    assert labels[outside[1].resolve()] == "beta"
    assert [s.path.name for s in data.unlabeled] == ["inside2.png"]
    assert {s.path.name: s.group for s in data.samples}["inside0.png"] == "plate1"
    (entry,) = data.skipped
    assert Path(entry.path).name == "gone.png" and entry.reason == "missing (moved or deleted since import)"


def test_project_scan_via_cli(
    tmp_path: Path, dataset: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    root = dataset[0]
    folder = tmp_path / "proj2"
    with Project.create(folder, classes=["alpha", "beta"]) as project:
        project.add_samples([Sample(root / "alpha" / "alpha_sp00_0.jpg", "alpha")])
        project.add_samples([Sample(root / "beta" / "beta_sp00_0.jpg", None)])
    assert cli.main(["scan", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "project"
    assert summary["classes"] == {"alpha": 1}
    assert summary["unlabeled"] == 1


def test_the_project_store_does_not_import_the_scanners(tmp_path: Path) -> None:
    """``datasets`` uses ``project`` (to scan a project folder), never the reverse: no import cycle."""
    import subprocess
    import sys

    from labeltune.core import datasets, sample

    code = (
        "import sys\n"
        "from labeltune.core.project import Project\n"
        "from labeltune.core.sample import Sample\n"
        f"with Project.create({str(tmp_path / 'p')!r}, classes=['a']) as project:\n"
        "    project.add_samples([Sample(project.folder / 'x.png', 'a')])\n"
        "    listed = project.samples() + [project.sample('x.png')]\n"
        "found = [m for m in ('labeltune.core.datasets', 'numpy', 'PIL') if m in sys.modules]\n"
        "print(sorted(found), len(listed))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] 2"
    assert datasets.Sample is sample.Sample  # one Sample, whichever module a caller takes it from
