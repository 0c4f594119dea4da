"""The optimiser every fit uses: AdamW, fused into one kernel per parameter where the device has it.

PyTorch's default AdamW on a CPU updates each parameter in a dozen separate element-wise passes (``mul_``,
``lerp_``, ``sqrt``, ``div``, ``addcdiv_``): for the large fully connected layers of *partial* fine-tuning
that was half of a step (AlexNet's 16.8M-parameter top: 0.87 of 1.7 s). ``fused=True`` does the same
update in one pass over the memory (docs/adr/0060). The arithmetic is AdamW's; only the rounding order
differs, so runs are not bit-identical to an unfused optimiser but agree to float32 precision.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: Devices whose AdamW has a fused kernel in the PyTorch versions LabelTune supports.
FUSED_DEVICES = ("cpu", "cuda")


def fused_supported(params: list[Any]) -> bool:
    """Whether every parameter is a floating-point tensor on a device with a fused AdamW kernel."""
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    return bool(tensors) and all(
        p.is_floating_point() and p.device.type in FUSED_DEVICES and not p.is_sparse for p in tensors
    )


def adamw(params: Iterable[Any], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``params`` (tensors or parameter groups), fused where :func:`fused_supported`.

    The parameters must already be on their training device (the fused kernel runs where they are).
    """
    import torch

    listed = list(params)
    fused = fused_supported(listed) or None  # None: PyTorch's own choice (foreach on CUDA, a loop elsewhere)
    return torch.optim.AdamW(listed, lr=lr, weight_decay=weight_decay, fused=fused)
