"""Downloads are verified by sha256 before use; a mismatch deletes the file and says so (ADR 0043).

The server is a local HTTP server on 127.0.0.1 (no internet on the development machines).
"""

from __future__ import annotations

import hashlib
import http.server
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from planted import one_line, plant_torch

from labeltune import cli
from labeltune.core import weights as W
from labeltune.core.backbones import get_spec
from labeltune.core.errors import InvalidWeightsError, WeightsUnavailableError

NAME = "resnet18"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        body = self.server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files = {}
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """This test's own data dir (the weights store is under it) and temp dir."""
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "user-data"))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return tmp_path / "user-data", temp


def leftovers(data: Path, temp: Path) -> list[Path]:
    """Every file in the weights store and the temp dir."""
    return sorted(p for p in [*data.rglob("*"), *temp.rglob("*")] if p.is_file())


def url(server: _Server, name: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{name}"


def test_a_mismatching_download_is_deleted_and_the_message_says_so(
    server: _Server, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    spec_file = get_spec(NAME).weights_filename
    server.files[spec_file] = b"\x00not the official weights" * 5000  # its sha256 cannot match the name's
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", url(server, ""))
    with pytest.raises(WeightsUnavailableError) as info:
        W.download_weights(NAME)
    assert "sha256" in str(info.value) and "was deleted" in str(info.value)
    assert leftovers(*dirs) == [] and not W.weights_present(NAME)
    assert cli.main(["weights", "download", NAME]) == 2
    line = one_line(capsys.readouterr().err)
    assert spec_file in line and "sha256" in line and "was deleted" in line
    assert leftovers(*dirs) == []


def test_a_download_holding_a_pickle_is_refused_even_with_its_own_hash(
    server: _Server, dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    body = plant_torch(tmp_path / "evil.pth", marker).read_bytes()
    (tmp_path / "evil.pth").unlink()
    server.files["evil.pth"] = body
    digest = hashlib.sha256(body).hexdigest()  # a mirror that serves it with a matching hash
    with pytest.raises(InvalidWeightsError) as info:
        W.download_weights(NAME, url=url(server, "evil.pth"), expected_sha256=digest)
    message = str(info.value)
    assert url(server, "evil.pth") in message and "Python objects" in message and "deleted" in message
    assert ".part" not in message
    assert not marker.exists() and leftovers(*dirs) == []
