"""The "XRD phases" demo: eight measured patterns, labeled from their file names, as an XRD project.

The patterns, the reference CIFs of their chemical system, the credits and the MIT licence ship as
package data under ``labeltune/resources/demos/xrd/`` (see :mod:`labeltune.core.demo_catalog`). Writing
the demo copies them into a new project folder, computes the peak library from the CIFs (``library/``), labels
each pattern with the phases its file name gives (``Mn2O3+LiF.xy`` → ``Mn2O3;LiF``, formulas: the
source does not say which polymorph) and points the project at the app's shipped XRD model, if any.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from labeltune.core.demo_catalog import CREDITS, DemoSpec, demo_items, get_demo, shipped_file, shipped_folder
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.staging import build_folder

if TYPE_CHECKING:
    from labeltune.core.xrd.library import Library

__all__ = ["XRD_DEMO", "shipped_model", "write_xrd_demo"]

XRD_DEMO = "xrd"
LICENCE = "LICENSE.MIT.txt"
REFERENCES = "references"
LIBRARY = "library"


def shipped_model() -> Path | None:
    """The app's own pretrained XRD model run folder, or ``None`` while there is none."""
    try:
        from labeltune.core.xrd.shipped import shipped_model_dir
    except ImportError:
        return None
    return shipped_model_dir()


def write_xrd_demo(
    target: str | os.PathLike[str],
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> Path:
    """Write the XRD demo as a new XRD project in ``target`` (missing or empty) and return its path.

    Built in a temporary sibling folder and renamed into place, so a failure or a stop leaves nothing.
    """
    spec = get_demo(XRD_DEMO)
    return build_folder(target, lambda staging: _build_xrd_demo(spec, staging, progress, stop_event))


def _build_xrd_demo(
    spec: DemoSpec, staging: Path, progress: ProgressCallback, stop_event: threading.Event | None
) -> None:
    """The XRD project in the empty ``staging`` folder: patterns, references, library, labels."""
    from labeltune.core.xrd.library import build_library, save_library
    from labeltune.core.xrd.xrd_project import CU_KA1, PATTERNS_DIR, XrdProject

    items = demo_items(XRD_DEMO)
    patterns = staging / PATTERNS_DIR
    patterns.mkdir()
    for done, item in enumerate(items):
        check_stop(stop_event)
        (patterns / PurePosixPath(item.path).name).write_bytes(shipped_file(spec, item.path).read_bytes())
        progress(Progress("copy demo", done + 1, len(items)))
    for extra in (CREDITS, LICENCE):
        (staging / extra).write_bytes(shipped_file(spec, extra).read_bytes())
    references = staging / REFERENCES
    references.mkdir()
    for cif in sorted(shipped_folder(spec).joinpath(REFERENCES).iterdir(), key=lambda t: t.name):
        if cif.name.endswith(".cif"):
            (references / cif.name).write_bytes(cif.read_bytes())
    check_stop(stop_event)
    progress(Progress("library", 0, 0, "computing reference peaks"))
    library = _shipped_library(sorted(references.glob("*.cif")))
    if library is None:
        library = build_library(sorted(references.glob("*.cif")), staging / LIBRARY)
    if not library.phases:
        raise UnusableInputError("the demo's reference structures gave no usable phases")
    library.phases = [  # project-relative sources, so the folder can move
        dataclasses.replace(p, source=f"{REFERENCES}/{Path(p.source).name}") for p in library.phases
    ]
    save_library(library, staging / LIBRARY)
    project = XrdProject.create(
        staging,
        name=spec.title,
        library_dir=staging / LIBRARY,
        model_dir=shipped_model(),
        wavelength=CU_KA1,
        wavelength_confirmed=True,  # the source states Cu K-alpha
        prepared=(PATTERNS_DIR, CREDITS, LICENCE, REFERENCES),
    )
    for item in items:
        project.set_label(f"{PATTERNS_DIR}/{PurePosixPath(item.path).name}", item.label.split(";"))
    check_stop(stop_event)


def _shipped_library(cifs: list[Path]) -> Library | None:
    """The shipped model's library when it was built from these same CIFs, else None.

    Reading it is instant; computing the 56 peak lists takes ~0.5 s.
    """
    from labeltune.core.xrd.library import LibraryError, load_library
    from labeltune.core.xrd.xrd_project import CU_KA1

    model = shipped_model()
    if model is None:
        return None
    try:
        library = load_library(model / "library")
    except LibraryError:
        return None
    same = sorted(library.names) == sorted(p.stem for p in cifs) and abs(library.wavelength - CU_KA1) < 1e-4
    return library if same else None
