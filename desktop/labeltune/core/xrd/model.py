"""The 1-D CNN that identifies phases in a powder pattern: a multi-label head and a weight-fraction head.

In the spirit of Lee et al. (2020) and XRD-AutoAnalyzer (Szymanski et al. 2021): convolutions with
max-pooling over the 2θ axis (pooling gives tolerance to the small peak shifts of strain and sample
displacement), then dense layers that see where peaks are. The input is the pattern on the library's 2θ
grid, scaled to a maximum of 1; the network sees it twice, linearly and as a square root (weak peaks of
minor phases matter as much as the strongest ones).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class XrdNetConfig:
    """Shape of the network; stored in a run's ``config.json``."""

    n_phases: int
    points: int
    channels: tuple[int, ...] = (16, 32, 48, 64, 96)
    kernels: tuple[int, ...] = (9, 7, 5, 5, 3)
    pools: tuple[int, ...] = (3, 3, 2, 2, 2)
    hidden: int = 256
    dropout: float = 0.1

    def to_json(self) -> dict[str, object]:
        """The configuration as JSON builtins."""
        out = asdict(self)
        for key in ("channels", "kernels", "pools"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> XrdNetConfig:
        """Rebuild from :meth:`to_json` output."""
        values = dict(data)
        for key in ("channels", "kernels", "pools"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key])  # type: ignore[attr-defined]
        return cls(**values)  # type: ignore[arg-type]


def prepare_input(x: torch.Tensor) -> torch.Tensor:
    """(n, points) patterns → (n, 2, points): scaled to max 1, then [x, sqrt(x)]."""
    x = x.float().clamp_min(0.0)
    x = x / x.amax(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.stack([x, x.sqrt()], dim=1)


class XrdNet(nn.Module):
    """Conv-pool trunk over 2θ, dense layers, ``presence`` logits and ``fraction`` logits per phase."""

    def __init__(self, config: XrdNetConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = 2
        length = config.points
        for c_out, k, p in zip(config.channels, config.kernels, config.pools, strict=True):
            layers += [
                nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(p),
            ]
            c_in = c_out
            length //= p
        self.trunk = nn.Sequential(*layers)
        self.flat_length = length
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(c_in * length, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
        )
        self.presence = nn.Linear(config.hidden, config.n_phases)
        self.fraction = nn.Linear(config.hidden, config.n_phases)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, points) raw patterns → (presence logits, fraction logits), each (n, n_phases)."""
        h = self.dense(self.trunk(prepare_input(x)))
        return self.presence(h), self.fraction(h)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's output (n, channels, positions): where class activation is computed."""
        return self.trunk(prepare_input(x))  # type: ignore[no-any-return]

    def head(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits from :meth:`features` output."""
        h = self.dense(feats)
        return self.presence(h), self.fraction(h)


def network_fractions(fraction_logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Softmax of the fraction logits over the present phases only (rows with none give zeros)."""
    masked = fraction_logits.float().masked_fill(~present, float("-inf"))
    out = torch.softmax(masked, dim=1)
    return torch.nan_to_num(out, nan=0.0)


def class_activation(
    net: XrdNet, x: torch.Tensor, phase_indices: list[int], smooth: int = 15
) -> torch.Tensor:
    """Class activation over 2θ for one pattern ``x`` (points,): (len(phase_indices), points), each 0..1.

    Gradient x (input - background) of a phase's presence logit: how much each point's intensity above
    the local background raised that phase's logit, positive part only, smoothed over ``smooth``
    points (0.3° on the 0.02° grid) so that whole peaks light up. The background (a rolling minimum
    over 2°) is left out, or a high background would light up everywhere. Grad-CAM on the last conv
    block was tried first: its 72-point cells and averaged channel weights often gave empty or off-peak
    maps on measured patterns.
    """
    net.eval()
    # gradients with respect to the network's prepared input [x, sqrt(x)], not the raw pattern: the
    # derivative of sqrt is infinite at zero intensity, and amax's backward spreads the NaN everywhere
    prepared = prepare_input(x.detach()[None]).requires_grad_(True)
    logits, _ = net.head(net.trunk(prepared))
    kernel = torch.ones(1, 1, smooth) / smooth
    window = 101
    with torch.no_grad():
        values = prepared.detach()
        floor = -torch.nn.functional.max_pool1d(-values, window, stride=1, padding=window // 2)
        floor = torch.nn.functional.avg_pool1d(
            floor, window, stride=1, padding=window // 2, count_include_pad=False
        )
        above = torch.relu(values - floor)  # (1, 2, points)
    rows = []
    for index in phase_indices:
        (grad,) = torch.autograd.grad(logits[0, index], prepared, retain_graph=True)
        saliency = torch.relu((grad * above).sum(dim=1))  # (1, points)
        saliency = torch.nn.functional.conv1d(saliency[None], kernel, padding=smooth // 2)[0, 0]
        rows.append(saliency / saliency.max().clamp_min(1e-12))
    if not rows:
        return torch.zeros((0, x.shape[-1]))
    return torch.stack(rows).detach()
