"""Small projects for the fault tests: an image project with three images, an XRD one with two patterns."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import write_library, write_xy  # tests/conftest.py
from labeltune.core.datasets import Sample
from labeltune.core.project import Project
from labeltune.core.xrd.xrd_project import XrdProject


def image_project(folder: Path) -> Project:
    """A project in ``folder`` with classes cat/dog and three images: img0 cat, img1 and img2 unlabeled."""
    images = folder.parent / f"{folder.name}-images"
    images.mkdir(parents=True)
    for i, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
        Image.new("RGB", (16, 16), colour).save(images / f"img{i}.png")
    project = Project.create(folder, classes=["cat", "dog"])
    project.add_samples([Sample(images / f"img{i}.png", "cat" if i == 0 else None) for i in range(3)])
    return project


def xrd_project(folder: Path) -> XrdProject:
    """An XRD project with two patterns; the first labeled A_1 (so labels.csv and the history exist)."""
    project = XrdProject.create(folder, "Faults", write_library(folder.parent / f"{folder.name}-lib"))
    sources = [write_xy(folder.parent / f"{folder.name}-in" / f"p{i}.xy", 20 + 5 * i) for i in range(2)]
    added, _ = project.import_patterns(sources)
    assert len(added) == 2
    project.set_label(project.patterns()[0], ["A_1"])
    return project
