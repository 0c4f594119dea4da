"""The shipped demos: what each one is, the files it ships and where the app keeps its copy.

The images (or patterns), their ``manifest.csv`` (``path,label[,group]``) and their credits are package
data under ``labeltune/resources/demos/<folder>/``, read with :mod:`importlib.resources`, so they are found
in a source checkout, an editable or regular install, and a PyInstaller bundle alike (the bundle must
collect ``labeltune``'s data files).  ``resources/make_demos.py`` rebuilds them from ``../shared/data``.

Writing a demo as a project is :func:`labeltune.core.demos.write_demo`; this catalogue is what both
writers (:mod:`labeltune.core.demos` for images, :mod:`labeltune.core.xrd.demo`) read, so neither imports
the other's internals.  Standard library only (no Qt, no torch, no numpy at import time).
"""

from __future__ import annotations

import csv
import functools
import io
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from labeltune.core.errors import UnusableInputError

__all__ = [
    "CREDITS",
    "DEMOS",
    "MANIFEST",
    "DemoItem",
    "DemoSpec",
    "demo_counts",
    "demo_credits",
    "demo_items",
    "demo_project_dir",
    "get_demo",
    "shipped_file",
    "shipped_folder",
]

MANIFEST = "manifest.csv"
CREDITS = "CREDITS.txt"


@dataclass(frozen=True)
class DemoSpec:
    """One shipped demo: what the start page shows and where its files are."""

    name: str  # short id used on the command line: ``labeltune demo corn``
    title: str  # project name and button text
    description: str  # one line
    credit: str  # one line; the full credits are in the demo's CREDITS.txt
    folder: str  # resource folder under ``labeltune/resources/demos``
    domain: str = "image"
    group_by: str = ""  # the Train tab's preset grouping (core/grouping.py), saved in the project


DEMOS: dict[str, DemoSpec] = {
    "corn": DemoSpec(
        name="corn",
        title="Corn leaf disease",
        description="Maize leaf photos: blight, common rust, gray leaf spot or healthy.",
        credit="Corn or Maize Leaf Disease Dataset (PlantVillage, PlantDoc), CC0; Mohanty et al. 2016.",
        folder="corn",
    ),
    "fish": DemoSpec(
        name="fish",
        title="Reef fish",
        description="Underwater video crops of six reef fish species, one image per fish track.",
        credit="Fish4Knowledge ground truth, University of Edinburgh; Boom et al., ICPR 2012.",
        folder="fish",
        # The file names are fish_<track>_<frame>.png: the track, also the manifest's group column.
        group_by=r"regex:fish_(\d+)_",
    ),
    "xrd": DemoSpec(
        name="xrd",
        title="XRD phases",
        description="Measured powder X-ray diffraction patterns of Li-Mn-Ti oxides and LiF, one to three "
        "phases each.",
        credit="XRD-AutoAnalyzer example patterns (MIT); Szymanski et al., Chem. Mater. 2021.",
        folder="xrd",
        domain="xrd",
    ),
}


@dataclass(frozen=True)
class DemoItem:
    """One image of a demo: its path inside the demo folder (POSIX), its label and its group."""

    path: str
    label: str
    group: str | None = None


def get_demo(name: str) -> DemoSpec:
    """The demo called ``name``; raises :class:`UnusableInputError` listing the known ones."""
    try:
        return DEMOS[name]
    except KeyError:
        raise UnusableInputError(f"unknown demo {name!r}; choose one of: {', '.join(DEMOS)}") from None


def shipped_folder(spec: DemoSpec) -> Traversable:
    """The demo's folder of shipped files (package data; read it, do not write)."""
    return resources.files("labeltune").joinpath("resources", "demos", spec.folder)


def shipped_file(spec: DemoSpec, relative: str) -> Traversable:
    """One shipped file of a demo, by its POSIX path inside the demo folder."""
    return shipped_folder(spec).joinpath(*PurePosixPath(relative).parts)


@functools.cache
def demo_items(name: str) -> tuple[DemoItem, ...]:
    """The images of a demo, as listed in its shipped ``manifest.csv``."""
    spec = get_demo(name)
    try:
        text = shipped_file(spec, MANIFEST).read_text(encoding="utf-8")
    except OSError as exc:
        raise UnusableInputError(f"demo {name!r} is missing from this installation ({exc})") from exc
    items = []
    for row in csv.DictReader(io.StringIO(text)):
        group = (row.get("group") or "").strip() or None
        items.append(DemoItem(row["path"].strip(), row["label"].strip(), group))
    return tuple(items)


def demo_counts(name: str) -> dict[str, int]:
    """Images per class of a demo, in the order the classes first appear in its manifest.

    For a multi-label demo (XRD: ``label`` = phases joined by ``;``) the count of patterns per phase.
    """
    return dict(Counter(label for item in demo_items(name) for label in item.label.split(";")))


def demo_credits(name: str) -> str:
    """The full credits text (source, licence, citation) shipped with a demo."""
    spec = get_demo(name)
    try:
        return shipped_file(spec, CREDITS).read_text(encoding="utf-8")
    except OSError:
        return spec.credit


def demo_project_dir(name: str) -> Path:
    """Where the app keeps its own copy of a demo project: ``<user data dir>/demos/<name>``.

    The user data dir is ``$LABELTUNE_DATA_DIR`` when set, else the platform's (see
    :func:`labeltune.core.weights.data_dir`).
    """
    get_demo(name)
    from labeltune.core.weights import data_dir  # imported here: http/urllib are not needed at startup

    return data_dir() / "demos" / name
