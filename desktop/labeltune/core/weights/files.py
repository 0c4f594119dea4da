"""Reading a weights file safely, checking it against a backbone, and importing it into the store.

Files written by other programs are only ever read with ``torch.load(..., weights_only=True)`` or as
safetensors, so a weights file cannot run code. What comes out has exactly the keys of
:func:`~labeltune.core.backbones.backbone_state_keys`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.backbones import backbone_state_keys, get_spec
from labeltune.core.errors import NOT_WEIGHTS, InvalidWeightsError, UnusableInputError, describe_weights_error
from labeltune.core.hashing import file_sha256
from labeltune.core.weights.store import _write_store

if TYPE_CHECKING:
    import torch

log = logging.getLogger("labeltune.core.weights")  # the name it had as one module


# Old torchvision DenseNet checkpoints name layers 'norm.1', 'conv.2'...; torchvision renames them on load.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


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


def _load_any(path: Path, label: str = "") -> Mapping[str, Any]:
    """Read a safetensors or torch file without running code from it; errors name it ``label`` or its name."""
    label = label or path.name
    try:
        if _looks_like_safetensors(path):
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        if path.suffix.lower() == ".safetensors":
            raise InvalidWeightsError(f"{label}: {NOT_WEIGHTS}")
        import torch

        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except InvalidWeightsError:
        raise
    except Exception as exc:  # torch.load raises many types (UnpicklingError, RuntimeError, EOFError...)
        # PyTorch's text goes to the log only: it suggests weights_only=False, which runs the file's code.
        raise InvalidWeightsError(f"{label}: {describe_weights_error(exc, str(path))}") from None
    if not isinstance(loaded, Mapping):
        raise InvalidWeightsError(f"{label} holds a {type(loaded).__name__}, not a state dict")
    return loaded


def _unwrap(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the state dict of a checkpoint that wraps it under ``state_dict`` or ``model``."""
    for key in ("state_dict", "model"):
        inner = state.get(key)
        if isinstance(inner, Mapping):
            return inner
    return state
