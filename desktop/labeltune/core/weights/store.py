"""The on-disk store of ImageNet weights: where it is, its file names, a stored file's metadata, writing one.

Weights live in ``<user data dir>/weights`` (``$LABELTUNE_DATA_DIR/weights`` when that variable is set) as
``<backbone>-imagenet.safetensors``: tensors only, torchvision key names, without the 1000-class ImageNet
head (the spec's ``dropped_prefixes``). The safetensors metadata records where the weights came from
(``source``: the URL or the imported file's name), the ``sha256`` of the original file and the ``date``
they were stored.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from labeltune.core.backbones import get_spec
from labeltune.core.errors import WeightsUnavailableError

if TYPE_CHECKING:
    import torch


#: Environment variable that moves the whole data directory (tests point it at a temporary folder).
DATA_DIR_ENV = "LABELTUNE_DATA_DIR"
STORE_SUFFIX = "-imagenet.safetensors"
FORMAT_VERSION = "1"
_HEADER_LIMIT = 100 * 1024 * 1024


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
