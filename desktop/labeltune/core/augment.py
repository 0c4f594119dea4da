"""Batch augmentation on the device: random flip, rotation/scale and colour jitter, per sample.

Vectorised over the batch (one ``affine_grid``/``grid_sample`` call), so it costs little next to the
backbone, and it needs no DataLoader workers (which only oversubscribe a 2-core CPU).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def augment_batch(
    x: torch.Tensor, degrees: float = 15.0, scale: float = 0.1, jitter: float = 0.2, flip: bool = True
) -> torch.Tensor:
    """Augment a float ``(N, 3, H, W)`` batch in [0, 1] with independent random parameters per sample."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    dev = x.device
    if flip:
        mask = (torch.rand(n, device=dev) < 0.5).view(n, 1, 1, 1)
        x = torch.where(mask, x.flip(3), x)
    if degrees > 0 or scale > 0:
        angle = (torch.rand(n, device=dev) * 2 - 1) * math.radians(degrees)
        zoom = 1 + (torch.rand(n, device=dev) * 2 - 1) * scale
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [
                torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                torch.stack([sin, cos, torch.zeros_like(cos)], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if jitter > 0:

        def factor() -> torch.Tensor:
            return (1 + (torch.rand(n, 1, 1, 1, device=dev) * 2 - 1) * jitter).to(x.dtype)

        x = x * factor()  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor() + mean  # contrast
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)
        x = (x - gray) * factor() + gray  # saturation
        x = x.clamp(0.0, 1.0)
    return x
