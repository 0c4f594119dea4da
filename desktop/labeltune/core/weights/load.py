"""The weights a run starts from: loading the ImageNet weights that are here, or a file, or none."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from labeltune.core.backbones import get_spec
from labeltune.core.errors import InvalidWeightsError, WeightsUnavailableError, describe_weights_error
from labeltune.core.hashing import file_sha256
from labeltune.core.progress import ProgressCallback, check_stop
from labeltune.core.weights.bundled import _bundled_sha256, _load_bundled, bundled_weights_file
from labeltune.core.weights.catalogue import weights_present
from labeltune.core.weights.download import download_weights
from labeltune.core.weights.files import _existing_file, read_weights_file
from labeltune.core.weights.sources import _needs_file, fetch_instructions
from labeltune.core.weights.store import read_store_metadata, weights_path

if TYPE_CHECKING:
    import torch


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


def weights_sha256(name: str) -> str:
    """The sha256 of the ImageNet weights :func:`load_weights` returns (of the original file)."""
    bundled = bundled_weights_file(name)
    if bundled is not None and bundled.suffix == ".safetensors":
        return read_store_metadata(bundled).get("sha256") or file_sha256(bundled)
    if bundled is not None:
        return _bundled_sha256(str(bundled), bundled.stat().st_size, bundled.stat().st_mtime_ns)
    path = weights_path(name)
    return read_store_metadata(path).get("sha256") or file_sha256(path)


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
