"""Draw LabelTune's icon (installer/labeltune.png, 256 px): a tag over a rising training curve."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw


def draw_icon(size: int = 256) -> Image.Image:
    """Return the icon as an RGBA image of ``size`` x ``size`` pixels."""
    scale = 4  # drawn large, then downsampled: smooth edges without an anti-aliasing API
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0.04 * s, 0.04 * s, 0.96 * s, 0.96 * s), radius=0.18 * s, fill=(32, 96, 160, 255))
    curve = [(0.16, 0.80), (0.30, 0.62), (0.44, 0.56), (0.58, 0.40), (0.72, 0.34), (0.86, 0.20)]
    d.line([(x * s, y * s) for x, y in curve], fill=(255, 210, 80, 255), width=int(0.05 * s), joint="curve")
    for x, y in curve:
        r = 0.035 * s
        d.ellipse((x * s - r, y * s - r, x * s + r, y * s + r), fill=(255, 210, 80, 255))
    tag = [(0.14, 0.14), (0.44, 0.14), (0.56, 0.27), (0.44, 0.40), (0.14, 0.40)]
    d.polygon([(x * s, y * s) for x, y in tag], fill=(255, 255, 255, 255))
    r = 0.035 * s
    d.ellipse((0.22 * s - r, 0.27 * s - r, 0.22 * s + r, 0.27 * s + r), fill=(32, 96, 160, 255))
    return img.resize((size, size), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("labeltune.png")
    draw_icon().save(out)
    print(out)
