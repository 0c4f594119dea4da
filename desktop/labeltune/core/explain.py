"""Why the model said so: a class's evidence over the input, for image runs and XRD runs alike.

One result shape for both domains (:class:`Explanation`: a heatmap 0..1 at the input's own size, the class
it explains, the prediction) and one entry point (:func:`explain`), with a thin adapter per domain:

* images: Grad-CAM (Selvaraju et al. 2017) on a backbone's last convolutional map, named per backbone in
  ``BackboneSpec.cam_layers`` (core/backbones.py). Every strategy saves the same classifier
  (``normalize → trunk → top → head``), so one hook serves features, partial and full runs. When the input
  is so small that the last map has fewer than :data:`MIN_CELLS` cells a side, the next listed (earlier)
  layer is used: a 1x1 map cannot say *where*.
* XRD: the class activation over 2θ of :func:`labeltune.core.xrd.model.class_activation` (gradient x
  intensity above the background), for the phase asked or the most probable one.

Rendering the result as a PNG is :mod:`labeltune.core.explain_render`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labeltune.core.errors import UnusableInputError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The smallest map (cells on its shorter side) Grad-CAM uses when an earlier layer is listed.
MIN_CELLS = 4


@dataclass
class Explanation:
    """What made a run's model see ``class_name`` in one input."""

    path: Path
    domain: str  # "image" or "xrd"
    #: The evidence for ``class_name``, 0..1: (height, width) of the image file, or (points,) of an XRD
    #: pattern on ``axis`` (2θ in degrees).
    heatmap: np.ndarray
    class_name: str
    #: The model's probability of ``class_name`` (calibrated for image runs; per phase for XRD).
    probability: float
    predicted: str
    confidence: float
    classes: list[str]
    #: Where it was computed: a module name of the classifier (images) or ``"input"`` (XRD).
    layer: str
    axis: np.ndarray | None = None
    signal: np.ndarray | None = None  # XRD: the pattern on ``axis``, scaled to a maximum of 1

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (without the arrays)."""
        return {
            "path": str(self.path),
            "domain": self.domain,
            "class": self.class_name,
            "probability": round(self.probability, 6),
            "predicted": self.predicted,
            "confidence": round(self.confidence, 6),
            "layer": self.layer,
            "peak": round(float(self.heatmap.max()), 6) if self.heatmap.size else 0.0,
        }


def class_index(classes: Sequence[str], probabilities: np.ndarray, name: str | None) -> int:
    """Index of ``name`` among ``classes``, or of the most probable class when ``name`` is ``None``."""
    if name is None:
        return int(np.argmax(probabilities))
    if name not in classes:
        known = ", ".join(classes[:20]) + (f", … ({len(classes)} in all)" if len(classes) > 20 else "")
        raise UnusableInputError(f"unknown class {name!r}; the run's classes are: {known}")
    return list(classes).index(name)


def normalized(values: np.ndarray) -> np.ndarray:
    """``values`` (float) clipped at 0 and scaled to a maximum of 1 (all zeros stay zeros)."""
    out = np.maximum(np.asarray(values, dtype=np.float32), 0.0)
    top = float(out.max()) if out.size else 0.0
    return out / top if top > 0 else out


# -- the domain-neutral core: Grad-CAM on any module of any network --------------------------------
def grad_cam(
    model: nn.Module, x: torch.Tensor, target: int, layers: Sequence[str], min_cells: int = MIN_CELLS
) -> tuple[np.ndarray, str, np.ndarray]:
    """Grad-CAM of class ``target`` for one input ``x`` (1, C, H, W): (heatmap (H, W) 0..1, layer, probs).

    ``layers`` are module names of ``model``, deepest first; the first whose map has at least
    ``min_cells`` cells on its shorter side is used (else the last one). ``probs`` is the softmax of the
    logits (uncalibrated; the caller applies its temperature).
    """
    import torch

    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if not layers or missing:
        raise UnusableInputError(f"no layer to explain with: {missing or 'none listed'}")
    maps: dict[str, torch.Tensor] = {}
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: maps.__setitem__(name, out)  # type: ignore[misc]
        )
        for name in layers
    ]
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logits = model(x)
            chosen = next((name for name in layers if min(maps[name].shape[-2:]) >= min_cells), layers[-1])
            activation = maps[chosen]
            (grad,) = torch.autograd.grad(logits[0, target], activation)
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        weights = grad.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1): each channel's importance
        cam = torch.relu((weights * activation).sum(dim=1, keepdim=True))
        cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        probs = torch.softmax(logits.detach().float(), dim=1)[0]
    return normalized(cam[0, 0].float().cpu().numpy()), chosen, probs.cpu().numpy()


# -- the image adapter ---------------------------------------------------------------------------------
def explain_image(
    run_dir: Path | str,
    path: Path | str,
    class_name: str | None = None,
    device: str = "cpu",
    max_side: int | None = None,
) -> Explanation:
    """Grad-CAM of an image run for ``class_name`` (``None``: the predicted class) on one image file.

    The heatmap has the image file's own size (the model sees it squashed to its input size, so the map
    is stretched back the same way), or that shape scaled down to ``max_side`` pixels on its longer side
    (the app scales it over the image itself: a 24-megapixel float map would be ~100 MB).
    """
    import torch
    from PIL import Image

    from labeltune.core.backbones import get_spec
    from labeltune.core.device import select_device
    from labeltune.core.features import images_to_tensor
    from labeltune.core.imaging import decode_rgb
    from labeltune.core.model import load_model

    dev = select_device(device)
    model, config = load_model(run_dir, dev)
    path = Path(path)
    image = decode_rgb(path)
    small = np.asarray(image.resize((config.input_size,) * 2, Image.Resampling.BILINEAR), dtype=np.uint8)
    x = images_to_tensor([small], dev)
    layers = get_spec(config.backbone).cam_layers
    with torch.no_grad():
        logits = model(x)[0].float()
    probs = torch.softmax(logits / config.temperature, dim=0).cpu().numpy()
    target = class_index(config.classes, probs, class_name)
    cam, layer, _ = grad_cam(model, x, target, layers)
    width, height = image.size
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    heatmap = np.asarray(Image.fromarray(cam).resize(shape, Image.Resampling.BILINEAR), dtype=np.float32)
    top = int(np.argmax(probs))
    return Explanation(
        path=path,
        domain="image",
        heatmap=np.clip(heatmap, 0.0, 1.0),
        class_name=config.classes[target],
        probability=float(probs[target]),
        predicted=config.classes[top],
        confidence=float(probs[top]),
        classes=list(config.classes),
        layer=layer,
    )


# -- the XRD adapter -----------------------------------------------------------------------------------
def explain_pattern(
    run_dir: Path | str,
    path: Path | str,
    class_name: str | None = None,
    default_wavelength: float | None = None,
) -> Explanation:
    """The class activation over 2θ of an XRD run for phase ``class_name`` (``None``: the most probable)."""
    import torch

    from labeltune.core.xrd.inference import load_xrd_model
    from labeltune.core.xrd.model import class_activation
    from labeltune.core.xrd.readers import read_pattern

    model = load_xrd_model(run_dir)
    pattern = read_pattern(path, default_wavelength=default_wavelength)
    if pattern.wavelength is None:
        raise UnusableInputError(
            f"{Path(path).name}: the file does not state its X-ray wavelength",
            cli=f"{Path(path).name} does not state its X-ray wavelength; give --wavelength",
        )
    x, probs, _ = model.network([pattern])
    target = class_index(model.names, probs[0], class_name)
    activation = class_activation(model.net, torch.from_numpy(x[0]), [target])[0].numpy()
    top = int(np.argmax(probs[0]))
    return Explanation(
        path=Path(path),
        domain="xrd",
        heatmap=normalized(activation),
        class_name=model.names[target],
        probability=float(probs[0][target]),
        predicted=model.names[top],
        confidence=float(probs[0][top]),
        classes=list(model.names),
        layer="input",
        axis=np.asarray(model.grid, dtype=np.float32),
        signal=np.asarray(x[0], dtype=np.float32),
    )


def explain(
    run_dir: Path | str,
    path: Path | str,
    class_name: str | None = None,
    *,
    default_wavelength: float | None = None,
    device: str = "cpu",
) -> Explanation:
    """Explain one input with a run of either domain (the run's ``config.json`` says which)."""
    from labeltune.core.xrd.inference import is_xrd_run

    if is_xrd_run(run_dir):
        return explain_pattern(run_dir, path, class_name, default_wavelength)
    return explain_image(run_dir, path, class_name, device)
