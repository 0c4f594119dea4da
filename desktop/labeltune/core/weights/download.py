"""Downloading a backbone's official ImageNet weights: streamed, hashed, stoppable, never half-written."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from labeltune.core.backbones import BackboneSpec, get_spec
from labeltune.core.errors import WeightsUnavailableError
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.weights.bundled import bundled_weights_file, installer_weights_file
from labeltune.core.weights.files import _load_any, validate_state_dict
from labeltune.core.weights.sources import BASE_URL_ENV, _needs_file, expected_sha256, weights_url
from labeltune.core.weights.store import _one_line, _write_store, weights_dir, weights_path

log = logging.getLogger("labeltune.core.weights")  # the name it had as one module


_CHUNK = 256 * 1024
_PROGRESS_INTERVAL_S = 0.1
#: A ``.part`` file untouched for this long belongs to a download that died; it is deleted.
_STALE_PART_S = 3600.0


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
                f"(its sha256 {digest[:16]}... does not start with {expected[:16]}), so it was deleted; "
                "try again, or",
                name,
                source,
            )
        check_stop(stop_event)
        downloaded = f"the file downloaded from {source} (deleted)"  # the .part name means nothing to users
        tensors = validate_state_dict(name, _load_any(part, downloaded), source=downloaded)
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
