"""Robust, fast image decoding: whatever a scientist's camera or microscope wrote, to RGB uint8.

Handles EXIF orientation, grayscale, palette, alpha (composited on white), CMYK, 16-bit and float images,
refuses decompression bombs by pixel count, and decodes large JPEGs in draft mode (the decoder scales by
1/2, 1/4 or 1/8 while decoding) so a 4000 px photo is not fully decoded to make a 224 px input.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from labeltune.core.errors import ImageDecodeError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jfif"}
)
#: Default limit against decompression bombs: 20 000 x 10 000 pixels is more than any camera writes.
MAX_PIXELS = 200_000_000
#: Preprocessing id: part of every feature-cache key, so change it when decoding changes.
PREPROCESSING_ID = "rgb-exif-white-squash-bilinear-v1"

# We check the pixel count ourselves (with a readable message) instead of PIL's global warning/error.
Image.MAX_IMAGE_PIXELS = None


def is_image_file(path: Path) -> bool:
    """Return whether ``path`` has an image file extension LabelTune reads."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _open(path: Path, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise ImageDecodeError("file not found") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image, or a format Pillow cannot read") from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises SyntaxError on some broken headers
        raise ImageDecodeError(f"cannot open: {exc}") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageDecodeError("image has no pixels")
    if width * height > max_pixels:
        image.close()
        raise ImageDecodeError(
            f"{width}x{height} pixels exceeds the limit of {max_pixels} (possible decompression bomb)"
        )
    return image


def probe(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Read only the header of an image; return ``(width, height)`` or raise :class:`ImageDecodeError`."""
    with _open(Path(path), max_pixels) as image:
        return image.size


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit integer and float single-channel images to 8-bit luminance."""
    array = np.asarray(image, dtype=np.float32)
    if image.mode == "F":
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        array = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
    else:  # I;16 variants and I: 16-bit data
        array = array / 257.0
    return Image.fromarray(np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8), mode="L")


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        image = _to_8bit(image)
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def decode_rgb(path: Path | str, size: int | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` to an upright RGB image.

    With ``size``, a JPEG is decoded in draft mode to the smallest scale that is still at least
    ``size`` pixels on each side, which is several times faster for large photos.
    """
    image = _open(Path(path), max_pixels)
    try:
        if size is not None and image.format == "JPEG":
            image.draft("RGB", (size, size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        image = ImageOps.exif_transpose(image) or image
        return _to_rgb(image)
    except ImageDecodeError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"truncated or corrupt image data: {exc}") from None


def load_array(path: Path | str, size: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` and resize it to ``size`` x ``size``; return an ``(size, size, 3)`` uint8 array."""
    image = decode_rgb(path, size, max_pixels)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)
