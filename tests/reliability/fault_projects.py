"""Small projects for the fault tests: an image project with three images, an XRD one with two patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from labeltune.core.datasets import Sample
from labeltune.core.project import Project
from labeltune.core.xrd.library import Library, Peaks, Phase, save_library
from labeltune.core.xrd.xrd_project import XrdProject

PHASES = (("A_1", "AO"), ("B_2", "BO2"))


def image_project(folder: Path) -> Project:
    """A project in ``folder`` with classes cat/dog and three images: img0 cat, img1 and img2 unlabeled."""
    images = folder.parent / f"{folder.name}-images"
    images.mkdir(parents=True)
    for i, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
        Image.new("RGB", (16, 16), colour).save(images / f"img{i}.png")
    project = Project.create(folder, classes=["cat", "dog"])
    project.add_samples([Sample(images / f"img{i}.png", "cat" if i == 0 else None) for i in range(3)])
    return project


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


def write_library(folder: Path) -> Path:
    """A two-phase peak library written by the real ``save_library``."""
    library = Library(wavelength=1.5406, two_theta_range=(10.0, 80.0))
    for i, (name, formula) in enumerate(PHASES):
        library.phases.append(_phase(name, formula))
        two_theta = np.array([20.0 + 5 * i, 40.0 + 5 * i])
        d = 1.5406 / (2 * np.sin(np.radians(two_theta) / 2))
        library.peaks[name] = Peaks(
            two_theta, d, np.array([100.0, 40.0]), np.ones((2, 3), int), np.ones(2, int)
        )
    save_library(library, folder)
    return folder


def write_xy(path: Path, peak: float) -> Path:
    """A measured-looking pattern with one peak."""
    two_theta = np.linspace(10, 80, 200)
    intensity = 100 + 1000 * np.exp(-(((two_theta - peak) / 0.3) ** 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x:.3f} {y:.1f}\n" for x, y in zip(two_theta, intensity, strict=True)))
    return path


def xrd_project(folder: Path) -> XrdProject:
    """An XRD project with two patterns; the first labeled A_1 (so labels.csv and the history exist)."""
    project = XrdProject.create(folder, "Faults", write_library(folder.parent / f"{folder.name}-lib"))
    sources = [write_xy(folder.parent / f"{folder.name}-in" / f"p{i}.xy", 20 + 5 * i) for i in range(2)]
    added, _ = project.import_patterns(sources)
    assert len(added) == 2
    project.set_label(project.patterns()[0], ["A_1"])
    return project
