"""Tests of the weights store: download over a real local HTTP server, import, validation, resolve."""

from __future__ import annotations

import builtins
import hashlib
import http.server
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from labeltune.core import weights as W
from labeltune.core.backbones import backbone_state_keys, build_architecture, get_spec
from labeltune.core.errors import (
    INCOMPLETE,
    NOT_WEIGHTS,
    InvalidWeightsError,
    UnusableInputError,
    WeightsUnavailableError,
)
from labeltune.core.progress import Progress, StoppedError
from labeltune.core.weights import download as weights_download

NAME = "mobilenet_v3_large"
SPEC = get_spec(NAME)


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory; nothing touches the real user dir."""
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LABELTUNE_WEIGHTS_BASE_URL", raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real torchvision-format files (random weights): mobilenet .pth/.safetensors, resnet18 .pth."""
    root = tmp_path_factory.mktemp("weights-files")
    torch.manual_seed(0)
    mobilenet = build_architecture(NAME).state_dict()
    torch.save(mobilenet, root / SPEC.weights_filename)
    save_file({k: v.contiguous() for k, v in mobilenet.items()}, str(root / "mobilenet.safetensors"))
    torch.save(build_architecture("resnet18").state_dict(), root / "resnet18.pth")
    return {
        "pth": root / SPEC.weights_filename,
        "safetensors": root / "mobilenet.safetensors",
        "resnet18": root / "resnet18.pth",
    }


@pytest.fixture(scope="module")
def original(files: dict[str, Path]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(files["pth"], weights_only=True)
    return state


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_leftovers(data_dir: Path) -> list[str]:
    store = data_dir / "weights"
    return sorted(p.name for p in store.iterdir()) if store.exists() else []


@dataclass
class Route:
    body: bytes
    #: Content-Length to announce (default: the real length).
    claimed: int | None = None
    #: Bytes to send before waiting on ``release`` (default: all).
    send: int | None = None
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(route.claimed or len(route.body)))
        self.end_headers()
        body = route.body if route.send is None else route.body[: route.send]
        try:
            for start in range(0, len(body), 64 * 1024):
                self.wfile.write(body[start : start + 64 * 1024])
            self.wfile.flush()
            if route.send is not None:
                route.release.wait(10)
        except OSError:  # the client hung up (a stopped download)
            pass
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes = {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    for route in srv.routes.values():
        route.release.set()
    srv.shutdown()
    srv.server_close()


def base_url(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------- basics


def test_module_does_not_import_torch() -> None:
    code = "import sys, labeltune.core.weights; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _names_callers_use() -> set[str]:
    """The names outside core/weights/ that come from the package: imported from it, or read off it."""
    root = Path(__file__).resolve().parents[2]
    names: set[str] = set()
    for folder in ("desktop", "tests", "bench", "scripts"):
        for file in (root / folder).rglob("*.py"):
            if "core/weights/" in file.as_posix():
                continue
            text = file.read_text(encoding="utf-8")
            for block in re.findall(r"from labeltune\.core\.weights import (\([^)]*\)|[^#\n]+)", text):
                names.update(part.split()[0] for part in block.strip("()").split(",") if part.strip())
            if re.search(r"from labeltune\.core import [\w, ]*\bweights\b", text):
                names.update(re.findall(r"\b(?:W|weights)\.([A-Za-z]\w*)", text))
    return names


def test_the_package_keeps_the_names_callers_import_and_its_log_name() -> None:
    from labeltune.core.weights import bundled, catalogue, download, files, load, sources, store

    used = _names_callers_use()
    assert {"resolve_weights", "weights_present", "data_dir", "BUNDLED_DIR_ENV", "file_sha256"} <= used
    assert all(hasattr(W, name) for name in used | set(W.__all__))
    # one definition each, in the module of its responsibility
    assert W.download_weights is download.download_weights and W.resolve_weights is load.resolve_weights
    assert W.import_weights is files.import_weights and W.list_weights is catalogue.list_weights
    assert W.weights_path is store.weights_path and W.weights_url is sources.weights_url
    assert W.bundled_weights_file is bundled.bundled_weights_file
    assert {download.log.name, files.log.name} == {"labeltune.core.weights"}


def test_locations_follow_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert W.weights_dir() == data_dir / "weights"
    assert W.weights_path(NAME) == data_dir / "weights" / f"{NAME}-imagenet.safetensors"
    assert W.weights_url(NAME) == SPEC.weights_url
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", "http://mirror.example/models")
    assert W.weights_url(NAME) == f"http://mirror.example/models/{SPEC.weights_filename}"
    assert W.expected_sha256(NAME) == SPEC.sha256_prefix
    with pytest.raises(UnusableInputError, match="unknown backbone"):
        W.weights_path("vgg99")


def test_absent_weights(data_dir: Path) -> None:
    assert not W.weights_present(NAME)
    with pytest.raises(WeightsUnavailableError) as info:
        W.load_weights(NAME)
    message = str(info.value)
    assert "\n" not in message
    assert SPEC.weights_url in message
    assert f"labeltune weights import {NAME}" in info.value.cli_message
    assert "Import file" in message  # the app's wording, no command line
    listed = {i.name: i for i in W.list_weights()}
    assert listed[NAME].present is False
    assert listed[NAME].source is None
    assert listed[NAME].url == SPEC.weights_url
    assert listed[NAME].download_mb == SPEC.weights_mb


# --------------------------------------------------------------------------------------------- download


def test_download_success(
    server: _Server, files: dict[str, Path], original: dict[str, torch.Tensor], data_dir: Path
) -> None:
    body = files["pth"].read_bytes()
    server.routes[f"/{SPEC.weights_filename}"] = Route(body)
    url = base_url(server) + SPEC.weights_filename
    reports: list[Progress] = []

    path = W.download_weights(NAME, progress=reports.append, url=url, expected_sha256=sha256_of(files["pth"]))

    assert path == W.weights_path(NAME)
    assert store_leftovers(data_dir) == [path.name]  # no .part, no .pth left
    assert reports and all(r.stage == f"download {NAME}" for r in reports)
    done = [r.done for r in reports]
    assert done == sorted(set(done)), "done must increase"
    assert reports[-1].done == reports[-1].total == len(body)
    loaded = W.load_weights(NAME)
    assert set(loaded) == set(backbone_state_keys(NAME))  # the ImageNet head is not stored
    assert all(torch.equal(loaded[k], original[k]) for k in loaded)
    info = {i.name: i for i in W.list_weights()}[NAME]
    assert info.present and info.path == path
    assert info.source == url
    assert info.sha256 == sha256_of(files["pth"])
    assert W.read_store_metadata(path)["date"]


def test_download_hash_mismatch_leaves_nothing(
    server: _Server, files: dict[str, Path], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file name promises sha256 prefix 8738ca79; the randomly initialised file cannot match it.
    server.routes[f"/{SPEC.weights_filename}"] = Route(files["pth"].read_bytes())
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", base_url(server))
    with pytest.raises(WeightsUnavailableError, match="sha256") as info:
        W.download_weights(NAME)
    assert "labeltune weights import" in info.value.cli_message
    assert store_leftovers(data_dir) == []
    assert not W.weights_present(NAME)


def test_download_truncated_leaves_nothing(server: _Server, files: dict[str, Path], data_dir: Path) -> None:
    body = files["pth"].read_bytes()[:300_000]
    server.routes["/short.pth"] = Route(body, claimed=len(body) + 1_000_000)
    with pytest.raises(WeightsUnavailableError, match="after 300000 of 1300000 bytes"):
        W.download_weights(NAME, url=base_url(server) + "short.pth", expected_sha256=sha256_of(files["pth"]))
    assert store_leftovers(data_dir) == []


def test_download_stopped_leaves_nothing(server: _Server, files: dict[str, Path], data_dir: Path) -> None:
    body = files["pth"].read_bytes()
    route = Route(body, send=len(body) // 2)  # then the server stalls until the test ends
    server.routes["/slow.pth"] = route
    stop = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done > 0:
            stop.set()

    started = time.monotonic()
    with pytest.raises(StoppedError):
        W.download_weights(NAME, progress=on_progress, stop_event=stop, url=base_url(server) + "slow.pth")
    assert time.monotonic() - started < 5
    assert store_leftovers(data_dir) == []


def test_download_offline_says_what_to_fetch(data_dir: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/{SPEC.weights_filename}"
    with pytest.raises(WeightsUnavailableError) as info:
        W.download_weights(NAME, url=url, timeout=5)
    message = str(info.value)
    assert "\n" not in message
    assert url in message
    assert f"labeltune weights import {NAME}" in info.value.cli_message
    assert "Import file" in message  # the app's wording, no command line
    assert store_leftovers(data_dir) == []


def test_download_http_error(server: _Server, data_dir: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="HTTP 404"):
        W.download_weights(NAME, url=base_url(server) + "nothing-here.pth")
    assert store_leftovers(data_dir) == []


def test_download_removes_stale_parts_only(server: _Server, data_dir: Path) -> None:
    store = data_dir / "weights"
    store.mkdir(parents=True)
    stale = store / f"{SPEC.weights_filename}.old.part"
    fresh = store / f"{SPEC.weights_filename}.busy.part"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    with pytest.raises(WeightsUnavailableError):
        W.download_weights(NAME, url=base_url(server) + "nothing-here.pth")
    assert store_leftovers(data_dir) == [fresh.name]  # another process may still be writing that one


def test_download_valid_hash_but_wrong_architecture(
    server: _Server, files: dict[str, Path], data_dir: Path
) -> None:
    server.routes["/r.pth"] = Route(files["resnet18"].read_bytes())
    with pytest.raises(InvalidWeightsError, match="does not fit"):
        W.download_weights(NAME, url=base_url(server) + "r.pth", expected_sha256=sha256_of(files["resnet18"]))
    assert store_leftovers(data_dir) == []


# --------------------------------------------------------------------------------------------- import


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_import_valid_file(
    kind: str, files: dict[str, Path], original: dict[str, torch.Tensor], data_dir: Path
) -> None:
    path = W.import_weights(NAME, files[kind])
    assert path == W.weights_path(NAME) and W.weights_present(NAME)
    loaded = W.load_weights(NAME)
    assert set(loaded) == set(backbone_state_keys(NAME))
    assert all(torch.equal(loaded[k], original[k]) for k in loaded)
    meta = W.read_store_metadata(path)
    assert meta["source"] == files[kind].name
    assert meta["sha256"] == sha256_of(files[kind])
    assert store_leftovers(data_dir) == [path.name]


def test_import_wrapped_dataparallel_checkpoint(tmp_path: Path, original: dict[str, torch.Tensor]) -> None:
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in original.items()}}
    file = tmp_path / "checkpoint.pt"
    torch.save(wrapped, file)
    W.import_weights(NAME, file)
    loaded = W.load_weights(NAME)
    assert all(torch.equal(loaded[k], original[k]) for k in loaded)
    torch.save({"model": dict(original)}, file)
    W.import_weights(NAME, file)


def test_import_wrong_architecture(files: dict[str, Path], data_dir: Path) -> None:
    with pytest.raises(InvalidWeightsError) as info:
        W.import_weights(NAME, files["resnet18"])
    message = str(info.value)
    assert "missing" in message and "unexpected" in message and "different backbone" in message
    assert "\n" not in message
    assert store_leftovers(data_dir) == []


def test_import_shape_mismatch(tmp_path: Path, original: dict[str, torch.Tensor]) -> None:
    state = dict(original)
    state["features.0.0.weight"] = torch.zeros(8, 3, 3, 3)
    file = tmp_path / "bad.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    with pytest.raises(
        InvalidWeightsError, match=r"1 wrong-shape key \(features\.0\.0\.weight \(8, 3, 3, 3\)"
    ):
        W.import_weights(NAME, file)


def test_failed_import_keeps_stored_weights(
    files: dict[str, Path], original: dict[str, torch.Tensor]
) -> None:
    W.import_weights(NAME, files["pth"])
    before = W.weights_path(NAME).read_bytes()
    with pytest.raises(InvalidWeightsError):
        W.import_weights(NAME, files["resnet18"])
    assert W.weights_path(NAME).read_bytes() == before


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
        return (builtins.open, (str(self.marker), "w"))  # unpickling would create the marker file


def test_malicious_pickle_is_refused(tmp_path: Path, data_dir: Path) -> None:
    marker = tmp_path / "pwned"
    zip_file = tmp_path / "evil.pth"
    torch.save({"conv.weight": _Evil(marker)}, zip_file)
    raw_file = tmp_path / "evil-raw.pth"
    raw_file.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    for file in (zip_file, raw_file):
        with pytest.raises(InvalidWeightsError, match="holds Python objects besides the weights") as info:
            W.import_weights(NAME, file)
        assert "weights_only" not in str(info.value)  # PyTorch's unsafe advice is never passed on
        with pytest.raises(InvalidWeightsError):
            W.resolve_weights(NAME, str(file), seed=0)
    assert not marker.exists()
    assert store_leftovers(data_dir) == []
    # Control: the file really would run code if it were unpickled without restrictions.
    torch.load(zip_file, weights_only=False)
    assert marker.exists()


def test_garbage_files_are_refused(tmp_path: Path) -> None:
    for name, content in (
        ("junk.pth", b"not a weights file"),
        ("junk.safetensors", b"\x00" * 20),
        ("e.pth", b""),
    ):
        file = tmp_path / name
        file.write_bytes(content)
        with pytest.raises(InvalidWeightsError) as info:
            W.import_weights(NAME, file)
        assert str(info.value) in (f"{name}: {NOT_WEIGHTS}", f"{name}: {INCOMPLETE}")
    file = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), file)
    with pytest.raises(InvalidWeightsError, match="not a state dict"):
        W.import_weights(NAME, file)


def test_old_densenet_keys_and_missing_batchnorm_counters() -> None:
    # Official DenseNet checkpoints predate 'norm1' names and BatchNorm's num_batches_tracked.
    state = build_architecture("densenet201").state_dict()
    old = {
        k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    clean = W.validate_state_dict("densenet201", old)
    assert set(clean) == set(backbone_state_keys("densenet201"))
    assert torch.equal(
        clean["features.denseblock1.denselayer1.norm1.weight"],
        old["features.denseblock1.denselayer1.norm.1.weight"],
    )
    assert clean["features.norm0.num_batches_tracked"].item() == 0


# --------------------------------------------------------------------------------------------- resolve


def test_resolve_none() -> None:
    assert W.resolve_weights(NAME, "none", seed=7) == (None, "random-seed7")


def test_resolve_imagenet_present(files: dict[str, Path], original: dict[str, torch.Tensor]) -> None:
    W.import_weights(NAME, files["pth"])
    state, weights_id = W.resolve_weights(NAME, "imagenet", seed=0)
    assert weights_id == f"imagenet-{sha256_of(files['pth'])[:8]}"
    assert state is not None and all(torch.equal(state[k], original[k]) for k in state)


def test_resolve_imagenet_downloads_when_missing(
    server: _Server, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes[f"/{SPEC.weights_filename}"] = Route(files["pth"].read_bytes())
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", base_url(server))
    digest = sha256_of(files["pth"])
    monkeypatch.setattr(weights_download, "_expected_hash", lambda name: digest[:8])
    reports: list[Progress] = []
    state, weights_id = W.resolve_weights(NAME, "imagenet", seed=0, progress=reports.append)
    assert state is not None and weights_id == f"imagenet-{digest[:8]}"
    assert reports[-1].done == reports[-1].total > 0
    assert W.weights_present(NAME)


def test_resolve_imagenet_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(WeightsUnavailableError, match="Import file") as info:
        W.resolve_weights(NAME, "imagenet", seed=0)
    assert "labeltune weights import" in info.value.cli_message and "labeltune" not in str(info.value)


def test_resolve_file(files: dict[str, Path], original: dict[str, torch.Tensor]) -> None:
    state, weights_id = W.resolve_weights(NAME, str(files["safetensors"]), seed=0)
    assert weights_id == f"file-{sha256_of(files['safetensors'])[:12]}"
    assert state is not None and set(state) == set(backbone_state_keys(NAME))
    assert all(torch.equal(state[k], original[k]) for k in state)
    assert not W.weights_present(NAME)  # a file choice is not copied into the store


def test_resolve_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(UnusableInputError, match=r"nope\.pth"):
        W.resolve_weights(NAME, str(missing), seed=0)
