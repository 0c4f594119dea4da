"""Demo projects that ship inside the app: small, licensed image sets that work offline.

:func:`write_demo` turns a demo into an ordinary, self-contained project folder: the images are copied
into ``<folder>/images/<class>/`` and imported with their labels (and, for the fish, their track ids as
groups, so training splits keep each track on one side). The XRD demo (``domain="xrd"``, its manifest's
labels are phases joined by ``;``) becomes an XRD project instead: :mod:`labeltune.core.xrd.demo`.

What the demos are and the files they ship is :mod:`labeltune.core.demo_catalog` (which the XRD writer
reads too, so that module never imports this one); its names stay importable from here, where the app,
the command line and the tests have always found them.

Standard library only (no Qt, no torch, no numpy at import time).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path, PurePosixPath

from labeltune.core.demo_catalog import (
    CREDITS,
    DEMOS,
    MANIFEST,
    DemoItem,
    DemoSpec,
    demo_counts,
    demo_credits,
    demo_items,
    demo_project_dir,
    get_demo,
    shipped_file,
)
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.staging import build_folder

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
    return build_folder(folder, lambda staging: _build_image_demo(spec, staging, progress, stop_event))


def _build_image_demo(
    spec: DemoSpec, staging: Path, progress: ProgressCallback, stop_event: threading.Event | None
) -> None:
    """The image project in the empty ``staging`` folder: project, copied images, credits, labels."""
    from labeltune.core.datasets import Sample  # numpy/PIL: only when a demo is actually written
    from labeltune.core.project import Project

    items = demo_items(spec.name)
    classes = list(demo_counts(spec.name))
    # the project first, in the new empty staging folder; its images are then copied inside it
    Project.create(staging, name=spec.title, domain=spec.domain, classes=classes).close()
    samples = []
    for done, item in enumerate(items):
        check_stop(stop_event)
        destination = staging.joinpath(*PurePosixPath(item.path).parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(shipped_file(spec, item.path).read_bytes())
        samples.append(Sample(destination, item.label, item.group))
        if done % 16 == 0 or done + 1 == len(items):
            progress(Progress("copy demo", done + 1, len(items)))
    for extra in (MANIFEST, CREDITS, "LICENSE.CC0.txt"):
        resource = shipped_file(spec, extra)
        if resource.is_file():
            (staging / extra).write_bytes(resource.read_bytes())
    check_stop(stop_event)
    with Project.open(staging) as project:
        project.add_source(staging / "images")
        project.add_samples(samples, source="import")
        if spec.group_by:
            project.save_settings(train={"group_by": spec.group_by})
