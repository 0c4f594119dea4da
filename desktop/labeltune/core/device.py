"""Choosing the device, threads and precision for the machine at hand (CUDA, Apple MPS, CPU)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from labeltune.core.errors import UnusableInputError

if TYPE_CHECKING:
    import torch


def select_device(choice: str = "auto") -> torch.device:
    """Return the device for ``auto``/``cpu``/``cuda``/``mps``; a missing accelerator is a usage error."""
    import torch

    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UnusableInputError(
            "no CUDA GPU is available to PyTorch on this machine; train on the CPU instead",
            cli="--device cuda: no CUDA GPU is available to PyTorch on this machine (use --device cpu)",
        )
    if choice == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UnusableInputError(
            "Apple Metal (MPS) is not available on this machine; train on the CPU instead",
            cli="--device mps: Apple Metal (MPS) is not available on this machine (use --device cpu)",
        )
    if choice not in ("cpu", "cuda", "mps"):
        raise UnusableInputError(f"unknown device {choice!r}; use auto, cpu, cuda or mps")
    return torch.device(choice)


def describe_device(device: torch.device) -> str:
    """A human-readable name: the GPU's name and memory, or the CPU's thread count."""
    import torch

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "Apple GPU (Metal)"
    return f"CPU ({torch.get_num_threads()} threads)"


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN), which is 2-3x faster for inference."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextlib.contextmanager
def inference_precision(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Autocast for frozen-backbone inference: fp16 on CUDA, bf16 on CPUs that support it."""
    import torch

    if enabled and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            yield
    elif enabled and device.type == "cpu" and cpu_bf16_supported():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last where it pays off (CUDA tensor cores, oneDNN CPU), else contiguous."""
    import torch

    return torch.channels_last if device.type in ("cuda", "cpu") else torch.contiguous_format


def available_devices() -> dict[str, str]:
    """Which devices PyTorch can use here (``cuda``, ``mps``, ``cpu``), with a readable name each.

    Imports torch, and torchvision too (about a thousand modules, torch._dynamo and sympy among them):
    call it in a worker, early, so that this one-time cost is paid while the user reads the form.
    """
    import torch
    import torchvision  # noqa: F401 - warm-up, see above

    found: dict[str, str] = {}
    if torch.cuda.is_available():
        names = [describe_device(torch.device("cuda", i)) for i in range(torch.cuda.device_count())]
        found["cuda"] = ", ".join(names)
        found["gpus"] = str(len(names))  # several: the app offers a torchrun run on all of them
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found["mps"] = describe_device(torch.device("mps"))
    found["cpu"] = describe_device(torch.device("cpu"))
    return found
