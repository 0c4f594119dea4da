"""Demo projects that ship inside the app: small, licensed image sets that work offline.

The images, their ``manifest.csv`` (``path,label[,group]``) and their credits are package data under
``labeltune/resources/demos/<folder>/`` and are read with :mod:`importlib.resources`, so they are found
in a source checkout, an editable or regular install, and a PyInstaller bundle alike (the bundle must
collect ``labeltune``'s data files).  ``resources/make_demos.py`` rebuilds them from ``../shared/data``.

:func:`write_demo` turns a demo into an ordinary, self-contained project folder: the images are copied
into ``<folder>/images/<class>/`` and imported with their labels (and, for the fish, their track ids as
groups, so training splits keep each track on one side). The XRD demo (``domain="xrd"``, its manifest's
labels are phases joined by ``;``) becomes an XRD project instead: :mod:`labeltune.core.xrd.demo`.

Standard library only (no Qt, no torch, no numpy at import time).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import secrets
import shutil
import threading
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress

__all__ = [
    "DEMOS",
    "DemoItem",
    "DemoSpec",
    "demo_counts",
    "demo_credits",
    "demo_items",
    "demo_project_dir",
    "get_demo",
    "write_demo",
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


def _resource_dir(spec: DemoSpec) -> Traversable:
    return resources.files("labeltune").joinpath("resources", "demos", spec.folder)


def _resource(spec: DemoSpec, relative: str) -> Traversable:
    return _resource_dir(spec).joinpath(*PurePosixPath(relative).parts)


@functools.cache
def demo_items(name: str) -> tuple[DemoItem, ...]:
    """The images of a demo, as listed in its shipped ``manifest.csv``."""
    spec = get_demo(name)
    try:
        text = _resource(spec, MANIFEST).read_text(encoding="utf-8")
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
        return _resource(spec, CREDITS).read_text(encoding="utf-8")
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


def _check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UnusableInputError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UnusableInputError(f"{folder} exists and is not empty; choose another folder")


def _make_staging(target: Path) -> Path:
    """An empty, uniquely named sibling of ``target`` with the usual permissions (mkdtemp's are 0700)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        staging = target.parent / f".{target.name}.{secrets.token_hex(4)}.partial"
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        return staging


def write_demo(
    name: str,
    folder: str | os.PathLike[str],
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> Path:
    """Write demo ``name`` as a new project in ``folder`` (missing or empty) and return its path.

    The project is built in a temporary sibling folder and renamed into place at the end, so a failure
    or a stop leaves nothing behind.  Raises :class:`UnusableInputError` for an unknown demo or a
    ``folder`` that exists and is not empty.
    """
    spec = get_demo(name)
    if spec.domain == "xrd":
        from labeltune.core.xrd.demo import write_xrd_demo

        return write_xrd_demo(folder, progress, stop_event)

    from labeltune.core.datasets import Sample  # numpy/PIL: only when a demo is actually written
    from labeltune.core.project import Project

    target = Path(os.path.abspath(folder))
    _check_target(target)
    items = demo_items(name)
    try:
        staging = _make_staging(target)
    except OSError as exc:
        raise UnusableInputError(f"cannot write the demo to {target}: {exc}") from exc
    try:
        classes = list(demo_counts(name))
        # the project first, in the new empty staging folder; its images are then copied inside it
        Project.create(staging, name=spec.title, domain=spec.domain, classes=classes).close()
        samples = []
        for done, item in enumerate(items):
            check_stop(stop_event)
            destination = staging.joinpath(*PurePosixPath(item.path).parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(_resource(spec, item.path).read_bytes())
            samples.append(Sample(destination, item.label, item.group))
            if done % 16 == 0 or done + 1 == len(items):
                progress(Progress("copy demo", done + 1, len(items)))
        for extra in (MANIFEST, CREDITS, "LICENSE.CC0.txt"):
            resource = _resource(spec, extra)
            if resource.is_file():
                (staging / extra).write_bytes(resource.read_bytes())
        check_stop(stop_event)
        with Project.open(staging) as project:
            project.add_source(staging / "images")
            project.add_samples(samples, source="import")
            if spec.group_by:
                project.save_settings(train={"group_by": spec.group_by})
        if target.is_dir():  # empty (checked above): a rename replaces it on POSIX, not on Windows
            target.rmdir()
        os.replace(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnusableInputError(f"cannot write the demo to {target}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
