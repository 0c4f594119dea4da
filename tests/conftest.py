"""Shared fixtures: isolated user directories and generated image datasets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labeltune.core.xrd.library import Library, Peaks, Phase, save_library

#: Clearly different mean colours per class, so even random-weight features separate them.
CLASS_COLOURS = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 200, 30), (200, 50, 210)]


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep weights, feature caches and imported folders out of the real user directories.

    Session-wide, so module fixtures (which run before any function-scoped fixture) see it too: a
    project a module fixture creates records its folders where the tests that open it look (ADR 0043).
    """
    base = tmp_path_factory.getbasetemp()
    saved = {name: os.environ.get(name) for name in ("LABELTUNE_DATA_DIR", "LABELTUNE_CACHE_DIR")}
    os.environ["LABELTUNE_DATA_DIR"] = str(base / "user-data")
    os.environ["LABELTUNE_CACHE_DIR"] = str(base / "user-cache")
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


_GC_GUARD: list[object] = []


@pytest.fixture(autouse=True)
def _garbage_collected_in_the_gui_thread(request: pytest.FixtureRequest) -> object:
    """Qt tests run as the app does: cycles are collected in the GUI thread, never in a worker thread.

    (workers/gc_guard.py: a collection in a worker thread that frees a previous test's widget crashes.)
    """
    if "qtbot" not in request.fixturenames and "qapp" not in request.fixturenames:
        yield None
        return
    request.getfixturevalue("qapp")
    from labeltune.workers.gc_guard import GuiThreadCollector

    if not _GC_GUARD:
        _GC_GUARD.append(GuiThreadCollector())  # lives for the session, in the GUI (main) thread
    yield None
    import gc

    gc.collect()  # this test's widgets go now, in this thread


def drop_paths(widget: object, paths: list[Path]) -> None:
    """Drop ``paths`` on ``widget`` as a file manager would (Qt imported here: core tests run without it)."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)  # type: ignore[attr-defined]


def write_class_folder(
    root: Path, classes: int = 3, per_class: int = 16, size: int = 40, seed: int = 0, fmt: str = "png"
) -> Path:
    """Write ``root/class<k>/img<i>.<fmt>``: noisy images whose colour depends on the class."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        folder = root / f"class{k}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array(CLASS_COLOURS[k % len(CLASS_COLOURS)], dtype=np.int16)
        for i in range(per_class):
            noise = rng.integers(-40, 40, (size, size, 3))
            pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"img{i:03d}.{fmt}")
    return root


#: The bad files of a user trial and the reason each must be shown with (issue 9, item 9).
BAD_FILE_REASONS = {
    "empty.jpg": "empty file (0 bytes)",
    "notes.jpg": "not an image (looks like text)",
    "cut.jpg": "truncated JPEG (image data ends early)",
}


def write_bad_files(folder: Path) -> dict[str, Path]:
    """Write a 0-byte file, a text file renamed .jpg and a truncated JPEG into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("sample notes: leaf 12 was photographed twice\n" * 10)
    rng = np.random.default_rng(7)
    pixels = np.clip(rng.normal(120, 40, (96, 128, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(folder / "whole.jpg", quality=90)
    data = (folder / "whole.jpg").read_bytes()
    (folder / "whole.jpg").unlink()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    return {name: folder / name for name in BAD_FILE_REASONS}


@pytest.fixture
def image_folder(tmp_path: Path) -> Callable[..., Path]:
    """Factory for generated class folders under a fresh temporary directory."""

    def make(**kwargs: object) -> Path:
        return write_class_folder(tmp_path / "data", **kwargs)  # type: ignore[arg-type]

    return make


_XDG_FOLDERS: dict[pytest.Config, str] = {}


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Qt tests run offscreen unless a display was asked for (QT_QPA_PLATFORM set by the caller), and
    never write to the user's own Qt settings."""
    import os
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Qt's own settings (window geometry) go to a throw-away folder, not the user's ~/.config (Linux),
    # removed when the session ends (pytest_unconfigure)
    os.environ["XDG_CONFIG_HOME"] = _XDG_FOLDERS.setdefault(
        config, tempfile.mkdtemp(prefix="labeltune-tests-xdg-")
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's throw-away Qt settings folder goes with it."""
    import shutil

    folder = _XDG_FOLDERS.pop(config, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings files, and new projects by default, go to a per-test directory."""
    monkeypatch.setenv("LABELTUNE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LABELTUNE_PROJECTS_DIR", str(tmp_path / "LabelTune projects"))


def train_small_project(root: Path, relabel: dict[str, str], data: Path | None = None) -> tuple[Path, Path]:
    """A project of ``write_class_folder(root / "data")`` (or ``data``), relabeled, with one short run.

    ``relabel`` maps a file (relative to the data folder) to the class it is given instead (planted
    mistakes); returns the project folder and its run folder (resnet18, random weights, 32 px, 3 epochs).
    """
    from labeltune.core.datasets import scan
    from labeltune.core.project import Project
    from labeltune.core.training import TrainConfig, train

    data = data if data is not None else write_class_folder(root / "data", classes=3, per_class=16, size=40)
    folder = root / "project"
    config = TrainConfig(backbone="resnet18", weights="none", input_size=32, epochs=3, batch_size=8)
    run_dir = folder / "runs" / "run-1"
    with Project.create(folder) as project:
        found = scan(data)
        project.add_source(found.root)
        project.add_samples(found.samples)
        for name, label in relabel.items():
            project.set_label(data / name, label)
        done = train(scan(folder), config, run_dir, cache_root=root / "cache")
        project.record_run(run_dir.name, run_dir, done.backbone, done.strategy, done.to_json())
    return folder, run_dir


def open_image_page(qtbot: object, folder: Path) -> object:
    """An ImagePage (Label and Results tabs) on a new session with the project in ``folder``, shown."""
    from labeltune.core.settings import Settings
    from labeltune.ui.image_page import ImagePage
    from labeltune.ui.session import ProjectSession

    session = ProjectSession(Settings())
    session.open(folder)
    widget = ImagePage(session)
    qtbot.addWidget(widget)  # type: ignore[attr-defined]
    widget.resize(1280, 800)
    widget.show()
    return widget


def open_xrd_page(qtbot: object, folder: Path) -> object:
    """An XrdPage on a session of its own with the XRD project in ``folder``, shown."""
    from labeltune.ui.xrd_page import XrdPage

    widget = XrdPage()
    qtbot.addWidget(widget)  # type: ignore[attr-defined]
    widget.resize(1300, 850)
    widget.show()
    widget.open(folder)
    return widget


# -- XRD: a tiny library and measured-looking patterns (tests/core, tests/ui, tests/reliability) --------
def _phase(name: str, formula: str) -> Phase:
    return Phase(
        name=name,
        formula=formula,
        space_group="P1",
        space_group_number=1,
        cell=(4.0, 4.0, 4.0, 90.0, 90.0, 90.0),
        volume=64.0,
        density=4.0,
        z=1,
        source=f"{name}.cif",
        abs_intensity_max=100.0,
        abs_intensity_sum=200.0,
        scattering_power=1.0,
        n_peaks=2,
    )


def write_library(folder: Path, names: tuple[tuple[str, str], ...] = (("A_1", "AO"), ("B_2", "BO2"))) -> Path:
    """A tiny peak library written by the real ``save_library``."""
    library = Library(wavelength=1.5406, two_theta_range=(10.0, 80.0))
    for i, (name, formula) in enumerate(names):
        library.phases.append(_phase(name, formula))
        two_theta = np.array([20.0 + 5 * i, 40.0 + 5 * i])
        d = 1.5406 / (2 * np.sin(np.radians(two_theta) / 2))
        library.peaks[name] = Peaks(
            two_theta, d, np.array([100.0, 40.0]), np.ones((2, 3), int), np.ones(2, int)
        )
    save_library(library, folder)
    return folder


def write_xy(path: Path, peak: float = 30.0, points: int = 200, header: str = "") -> Path:
    """A measured-looking pattern with one peak (``header``: a first line)."""
    two_theta = np.linspace(10, 80, points)
    intensity = 100 + 1000 * np.exp(-(((two_theta - peak) / 0.3) ** 2))
    lines = [header] if header else []
    lines += [f"{x:.3f} {y:.1f}" for x, y in zip(two_theta, intensity, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Made-up cubic phases for the XRD fit tests (tests/core/test_xrd_quantify.py, tests/xrd_refs/...).
FCC_HKL = [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2), (4, 0, 0), (3, 3, 1), (4, 2, 0), (4, 2, 2)]
PRIMITIVE_HKL = [
    (1, 0, 0),
    (1, 1, 0),
    (1, 1, 1),
    (2, 0, 0),
    (2, 1, 0),
    (2, 1, 1),
    (2, 2, 0),
    (3, 0, 0),
    (3, 1, 0),
]


def cubic_phase(
    name: str, a: float, hkls: list[tuple[int, int, int]], power: float, formula: str | None = None
) -> tuple[Any, Any]:
    """A made-up cubic phase at Cu Kα1: d from the cell, intensities falling with angle (strongest = 100)."""
    from labeltune.core.xrd.bragg import two_theta_of_d
    from labeltune.core.xrd.library import Peaks, Phase

    hkl = np.array(hkls, dtype=np.int64)
    d = a / np.sqrt((hkl**2).sum(axis=1))
    two_theta, ok = two_theta_of_d(d, 1.5406)
    keep = ok & (two_theta > 10) & (two_theta < 100)
    intensity = 100.0 * np.exp(-0.03 * (two_theta[keep] - two_theta[keep].min()))
    intensity *= 1 + 0.5 * np.cos(np.arange(keep.sum()))
    intensity = 100.0 * intensity / intensity.max()
    order = np.argsort(two_theta[keep])
    n = int(keep.sum())
    peaks = Peaks(two_theta[keep][order], d[keep][order], intensity[order], hkl[keep][order], np.full(n, 8))
    phase = Phase(
        name=name, formula=formula or name, space_group="P 1", space_group_number=1,
        cell=(a, a, a, 90.0, 90.0, 90.0), volume=a**3, density=5.0, z=4, source="test",
        abs_intensity_max=power, abs_intensity_sum=power, scattering_power=power, n_peaks=n,
    )  # fmt: skip
    return phase, peaks


def textured_peaks(library: Library, name: str, direction: tuple[int, int, int], r: float) -> Peaks:
    """The phase's peaks with March–Dollase intensities, computed here independently of ``Texture``."""
    from dataclasses import replace

    import gemmi

    phase = library.phase(name)
    recip = np.array(gemmi.UnitCell(*phase.cell).frac.mat.tolist())  # rows a*, b*, c*
    ops = gemmi.find_spacegroup_by_name(phase.space_group).operations()
    u = np.array(direction, float) @ recip
    u /= np.linalg.norm(u)
    peaks = library.peaks[name]
    factors = []
    for hkl in peaks.hkl:
        g = np.array(sorted({tuple(op.apply_to_hkl([int(v) for v in hkl])) for op in ops}), float) @ recip
        cos2 = ((g @ u) / np.linalg.norm(g, axis=1)) ** 2
        factors.append(float(np.mean((r * r * cos2 + (1 - cos2) / r) ** -1.5)))
    return replace(peaks, intensity=peaks.intensity * np.array(factors))
