"""Choosing the device, threads and precision for the machine at hand (CUDA, Apple MPS, CPU)."""

from __future__ import annotations

import contextlib
import functools
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


@functools.cache
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


#: ``TrainConfig.precision`` values: ``auto`` = mixed precision where the device runs it fast, ``fp32`` = off.
PRECISIONS = ("auto", "fp32")


def mixed_precision(device_type: str, amp: bool) -> torch.dtype | None:
    """The autocast dtype of a mixed-precision training step on ``device_type`` (None: float32).

    CUDA: float16 (with a gradient scaler); a CPU with native bfloat16 (oneDNN): bfloat16, which with
    channels_last trained 1.9-2.1x faster than plain float32 here (docs/adr/0050); elsewhere none.
    """
    import torch

    if not amp:
        return None
    if device_type == "cuda":
        return torch.float16
    if device_type == "cpu" and cpu_bf16_supported():
        return torch.bfloat16
    return None


def resolved_precision(device: torch.device, precision: str) -> str:
    """What ``precision`` (``auto``/``fp32``) means on ``device``: ``fp16``, ``bf16`` or ``fp32``."""
    import torch

    dtype = mixed_precision(device.type, precision == "auto")
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32") if dtype else "fp32"


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
