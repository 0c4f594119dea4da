"""Pictures of an :class:`~labeltune.core.explain.Explanation`, with PIL only (core has no Qt).

* :func:`heat_colours` — the one colour scale (dark blue → cyan → yellow → red, 0..1) with an alpha that
  keeps cold regions see-through; the app's overlay is this same RGBA array;
* :func:`overlay` — an image with its heatmap on top (what ``labeltune explain`` writes for image runs);
* :func:`pattern_plot` — an XRD pattern over 2θ with the activation as coloured bands under the curve;
* :func:`render` — whichever of the two fits the explanation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from labeltune.core.explain import Explanation

#: Anchors of the colour scale: (value, R, G, B).
_SCALE = np.array(
    [
        (0.00, 20, 30, 120),
        (0.35, 0, 170, 230),
        (0.65, 250, 230, 40),
        (1.00, 220, 30, 30),
    ],
    dtype=np.float32,
)


def heat_colours(heatmap: np.ndarray) -> np.ndarray:
    """RGBA uint8 array (…, 4) for a 0..1 heatmap: hot is red and opaque, cold blue and faint."""
    values = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    channels = [np.interp(values, _SCALE[:, 0], _SCALE[:, k]) for k in (1, 2, 3)]
    alpha = 255.0 * (0.25 + 0.75 * values)
    return np.stack([*channels, alpha], axis=-1).round().astype(np.uint8)


def overlay(image: Image.Image, heatmap: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """``image`` (RGB) with ``heatmap`` (its size) on top at ``opacity`` (0: none, 1: the colours only)."""
    rgba = heat_colours(heatmap).astype(np.float32)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    if base.shape[:2] != rgba.shape[:2]:
        raise ValueError(f"heatmap {rgba.shape[:2]} does not match the image {base.shape[:2]}")
    weight = (rgba[..., 3:] / 255.0) * float(np.clip(opacity, 0.0, 1.0))
    mixed = base * (1.0 - weight) + rgba[..., :3] * weight
    return Image.fromarray(mixed.round().astype(np.uint8), "RGB")


def pattern_plot(
    two_theta: np.ndarray,
    intensity: np.ndarray,
    activation: np.ndarray,
    title: str = "",
    size: tuple[int, int] = (1000, 380),
) -> Image.Image:
    """The pattern as a black curve over 2θ, each point's activation as a coloured band beneath it."""
    width, height = size
    left, right, top, bottom = 50, 20, 30 if title else 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    x = np.asarray(two_theta, dtype=np.float64)
    y = np.asarray(intensity, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo or 1.0
    peak = float(y.max()) or 1.0
    xs = left + (x - lo) / span * plot_w
    ys = top + plot_h * (1.0 - np.clip(y / peak, 0.0, 1.0) * 0.95)
    # one band per pixel column: the strongest activation among the points it covers
    colours = heat_colours(activation)
    heat = np.clip(np.asarray(activation, dtype=np.float32), 0.0, 1.0)
    columns = np.clip(xs.round().astype(int), left, left + plot_w - 1)
    for column in np.unique(columns):
        members = np.flatnonzero(columns == column)
        best = members[np.argmax(heat[members])]
        strength = float(heat[best])
        if strength > 0.1:  # weak evidence stays white: the bands mark where the class is seen
            r, g, b, _a = (int(v) for v in colours[best])
            shade = tuple(int(255 * (1 - strength) + c * strength) for c in (r, g, b))
            draw.line([(int(column), top), (int(column), top + plot_h)], fill=shade)
    draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill="black", width=1)
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    step = _tick_step(span)
    tick = np.ceil(lo / step) * step
    while tick <= hi + 1e-9:
        px = left + (tick - lo) / span * plot_w
        draw.line([(px, top + plot_h), (px, top + plot_h + 5)], fill="black")
        draw.text((px - 8, top + plot_h + 8), f"{tick:g}", fill="black")
        tick += step
    draw.text((left + plot_w // 2 - 50, height - 16), "2-theta (degrees)", fill="black")
    draw.text((6, top + plot_h // 2), "I", fill="black")
    if title:
        draw.text((left, 8), title, fill="black")
    return picture


def _tick_step(span: float) -> float:
    """A round step giving 5 to 10 ticks over ``span``."""
    for step in (1, 2, 5, 10, 20, 50):
        if span / step <= 10:
            return float(step)
    return 100.0


def render(explanation: Explanation, opacity: float = 0.5) -> Image.Image:
    """The picture ``labeltune explain`` writes: an image overlay, or an XRD pattern plot."""
    title = f"{explanation.class_name}: p = {explanation.probability:.2f}"
    if explanation.domain == "xrd":
        assert explanation.axis is not None and explanation.signal is not None
        return pattern_plot(explanation.axis, explanation.signal, explanation.heatmap, title)
    from labeltune.core.imaging import decode_rgb

    return overlay(decode_rgb(explanation.path), explanation.heatmap, opacity)


def write_png(explanation: Explanation, out: Path | str, opacity: float = 0.5) -> Path:
    """Render ``explanation`` to the PNG file ``out`` (written whole, through a temporary file)."""
    out = Path(out)
    picture = render(explanation, opacity)
    tmp = out.with_name(out.name + ".tmp")
    picture.save(tmp, format="PNG")
    tmp.replace(out)
    return out
