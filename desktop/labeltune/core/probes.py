"""What the unfamiliar-image score looks at in an image classifier: three representations from one pass.

* ``content`` — the pooled features the head reads (``top(trunk(x))``): *what* is in the image.
* ``early`` / ``mid`` — mean and standard deviation per channel of an early and a middle trunk layer
  (the spec's ``probe_taps``): *how the image looks* — brightness, colour, sharpness, background texture.
  Pooled ImageNet features are trained to ignore exactly these, so a darkened, recoloured or blurred photo,
  or one on another background, can keep familiar-looking pooled features while being unlike anything the
  model was trained on (docs/adr/0012-calibration-and-unfamiliar-inputs.md has the measurements).

Both taps lie inside the trunk, which the *features* and *partial* strategies freeze: their statistics are
computed once with the pooled features or the trunk output and cached beside them. The walk through the
trunk is plain Python over its children, so ``torch.export`` and ``torch.jit.trace`` follow it (exports
compute the score inside the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labeltune.core.backbones import get_spec

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Names of the representations, in the order they are concatenated.
PROBE_NAMES = ("early", "mid")
CONTENT = "content"


def channel_stats(t: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` → ``(N, 2C)``: per-channel mean, then standard deviation, over the spatial axes."""
    import torch

    t = t.float()
    if t.dim() == 2:
        return t
    flat = t.flatten(2)
    mean = flat.mean(2)
    std = (flat - mean.unsqueeze(2)).pow(2).mean(2).clamp_min(1e-12).sqrt()
    return torch.cat([mean, std], 1)


def run_tapped(
    module: nn.Module, x: torch.Tensor, taps: Sequence[tuple[int, ...]]
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """Run ``module`` (nested ``Sequential`` s) on ``x``; also return the outputs at the ``taps`` paths."""
    from torch import nn

    found: list[torch.Tensor | None] = [None] * len(taps)
    if not isinstance(module, nn.Sequential):
        return module(x), found
    for index, child in enumerate(module):
        inner = [(k, tap[1:]) for k, tap in enumerate(taps) if tap and tap[0] == index]
        nested = [path for _, path in inner if path]
        if nested:
            x, outs = run_tapped(child, x, nested)
            it = iter(outs)
            for k, path in inner:
                found[k] = next(it) if path else x
        else:
            x = child(x)
            for k, _path in inner:
                found[k] = x
    return x, found


def _modules() -> tuple[type, type]:
    import torch
    from torch import nn

    class ProbedTrunk(nn.Module):
        """``normalize`` → ``trunk`` (→ ``top``), returning ``(output, [early stats | mid stats])``."""

        def __init__(
            self,
            normalize: nn.Module,
            trunk: nn.Module,
            top: nn.Module | None,
            taps: Sequence[tuple[int, ...]],
        ) -> None:
            super().__init__()
            self.normalize, self.trunk = normalize, trunk
            self.top = top if top is not None else nn.Identity()
            self.taps = [tuple(t) for t in taps]

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out, tapped = run_tapped(self.trunk, self.normalize(x), self.taps)
            stats = [channel_stats(t) for t in tapped if t is not None]
            return self.top(out), torch.cat(stats, 1)

    class ProbedClassifier(nn.Module):
        """A run's classifier that also returns its pooled features and probe statistics."""

        def __init__(self, model: nn.Module, taps: Sequence[tuple[int, ...]]) -> None:
            super().__init__()
            self.model = model
            self.taps = [tuple(t) for t in taps]

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            m: Any = self.model
            out, tapped = run_tapped(m.trunk, m.normalize(x), self.taps)
            pooled = m.top(out)
            stats = [channel_stats(t) for t in tapped if t is not None]
            return m.head(pooled), pooled, torch.cat(stats, 1)

    return ProbedTrunk, ProbedClassifier


def probed_frozen(model: nn.Module, backbone: str, with_top: bool) -> nn.Module:
    """The frozen part of ``model`` (normalize, trunk and, if ``with_top``, top) returning probes too."""
    probed_trunk, _ = _modules()
    taps = get_spec(backbone).probe_taps
    m: Any = model
    return probed_trunk(m.normalize, m.trunk, m.top if with_top else None, taps)  # type: ignore[no-any-return]


def probed_classifier(model: nn.Module, backbone: str) -> nn.Module:
    """Wrap a run's classifier: ``forward(x) -> (logits, pooled features, probe statistics)``."""
    _, classifier = _modules()
    return classifier(model, get_spec(backbone).probe_taps)  # type: ignore[no-any-return]


#: Image size of the pass that measures the probes' widths (Inception-v3 needs at least 75 px).
PROBE_DIMS_SIZE = 96


def probe_dims(model: nn.Module, backbone: str, input_size: int) -> tuple[int, ...]:
    """Widths of the ``early`` and ``mid`` statistics (two per channel) for ``model``.

    The widths are channel counts, which do not depend on the image size: the pass runs on at most
    ``PROBE_DIMS_SIZE`` px (a DenseNet-201 pass at 224 px took a cached re-run's longest second).
    """
    known = getattr(model, "known_probe_dims", None)  # a lazy backbone's, from its cache (ADR 0059)
    if known is not None:
        return tuple(known)
    import torch

    taps = get_spec(backbone).probe_taps
    m: Any = model
    was_training = m.training
    m.eval()
    with torch.no_grad():
        size = min(input_size, PROBE_DIMS_SIZE)
        x = torch.zeros(1, 3, size, size, device=next(m.parameters()).device)
        _, tapped = run_tapped(m.trunk, m.normalize(x), taps)
    m.train(was_training)
    return tuple(channel_stats(t).shape[1] for t in tapped if t is not None)


def split_probes(stats: torch.Tensor | object, dims: Sequence[int]) -> dict[str, object]:
    """Split concatenated probe statistics (array or tensor, ``(N, sum(dims))``) into ``early`` / ``mid``."""
    parts: dict[str, object] = {}
    start = 0
    for name, width in zip(PROBE_NAMES, dims, strict=True):
        parts[name] = stats[:, start : start + width]  # type: ignore[index]
        start += width
    return parts
