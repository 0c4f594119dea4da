"""Robust, fast image decoding: whatever a scientist's camera or microscope wrote, to RGB uint8.

Handles EXIF orientation, grayscale, palette, alpha (composited on white), CMYK, 16-bit and float images,
refuses decompression bombs by pixel count, and decodes large JPEGs in draft mode (the decoder scales by
1/2, 1/4 or 1/8 while decoding) so a 4000 px photo is not fully decoded to make a 224 px input.

Every failure to read a file, whatever Pillow raised inside, comes out as :class:`ImageDecodeError` with
the specific reason :mod:`labeltune.core.file_problems` words ("truncated JPEG (image data ends early)").
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from labeltune.core.errors import ImageDecodeError
from labeltune.core.file_problems import (
    decode_failure_reason,
    kind_problem,
    open_failure_reason,
    unidentified_reason,
)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jfif"}
)
#: Pillow formats we open, whatever a file's extension says (a ``.jpg`` may really be a PNG). Others are
#: refused: fewer little-used parsers facing untrusted files, and no EPS (which runs Ghostscript).
#: "JPEG" also covers MPO, the multi-picture JPEG many cameras write.
_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "DIB", "GIF", "WEBP", "PPM")
#: Default limit against decompression bombs: 20 000 x 10 000 pixels is more than any camera writes.
MAX_PIXELS = 200_000_000
#: Preprocessing id: part of every feature-cache key, so change it when decoding changes.
PREPROCESSING_ID = "rgb-exif-white-squash-bilinear-v1"

# We check the pixel count ourselves (with a readable message) instead of PIL's global warning/error.
Image.MAX_IMAGE_PIXELS = None
# Pillow warns about recoverable damage (corrupt EXIF, malformed MPO, odd TIFF tags). Silence those once,
# here, rather than with ``warnings.catch_warnings()`` around each decode: that swaps the process-wide
# filter list and is not thread-safe, and images are decoded on worker threads.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

#: EXIF orientation (tag 274) -> the transpose that makes the image upright.
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def is_image_file(path: Path) -> bool:
    """Return whether ``path`` has an image file extension LabelTune reads (in any letter case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _open(path: Path, max_pixels: int) -> Image.Image:
    problem = kind_problem(path)  # before open(): a named pipe would block it until a writer comes
    if problem is not None:
        raise ImageDecodeError(problem)
    try:
        image = Image.open(path, formats=_FORMATS)
    except Image.UnidentifiedImageError:
        raise ImageDecodeError(unidentified_reason(path)) from None
    except Exception as exc:  # plugins raise OSError, SyntaxError, struct.error, ... on broken headers
        raise ImageDecodeError(open_failure_reason(path, exc)) from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageDecodeError("damaged image (no pixels)")
    if width * height > max_pixels:
        image.close()
        raise ImageDecodeError(
            f"too large: {width}x{height} pixels exceeds the limit of {max_pixels} "
            "(possible decompression bomb)"
        )
    return image


def probe(path: Path | str, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Read only the header of an image; return ``(width, height)`` or raise :class:`ImageDecodeError`.

    The size is as stored in the file, before EXIF orientation (which :func:`decode_rgb` applies).
    """
    with _open(Path(path), max_pixels) as image:
        return image.size


def _check_size(size: int | None) -> None:
    if size is not None and size < 1:
        raise ValueError(f"size must be at least 1, not {size!r}")


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a damaged EXIF block is ignored rather than failing a good image.

    Unlike ``ImageOps.exif_transpose`` this neither copies an image that needs no turning nor re-encodes
    the EXIF block (which raises on some damaged ones).
    """
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return image
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float single-channel images to 8-bit luminance.

    16-bit data maps 0..65535 to 0..255; float data, and integer data outside 0..65535, is stretched
    from its (finite) minimum to its maximum. NaN becomes black.
    """
    array = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(array)
    low = float(array[finite].min()) if finite.any() else 0.0
    high = float(array[finite].max()) if finite.any() else 0.0
    if image.mode == "F" or low < 0 or high > 65535:
        scale = 255.0 / (high - low) if high > low else 0.0
        array = np.where(np.isnan(array), 0.0, (np.clip(array, low, high) - low) * scale)  # +-inf: ends
    else:  # I;16 variants and I holding 16-bit data
        array = array / 257.0
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="L")


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("P", "L", "RGB", "1") and "transparency" in image.info:  # PNG tRNS / GIF transparent index
        image = image.convert("RGBA")
        mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        image = _to_8bit(image)
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, RGBX


def decode_rgb(path: Path | str, size: int | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` to an upright RGB image.

    With ``size``, a JPEG is decoded in draft mode to the smallest scale that is still at least
    ``size`` pixels on each side, which is several times faster for large photos.
    Raises :class:`ImageDecodeError` for anything that cannot be read, ``ValueError`` for a bad ``size``.
    """
    _check_size(size)
    # ``with`` closes the file (even on errors, and for multi-frame files, which ``load`` leaves open)
    # but keeps the loaded pixels.
    with _open(Path(path), max_pixels) as image:
        try:
            if size is not None and image.format in ("JPEG", "MPO"):
                image.draft("RGB", (size, size))
            image.load()
            return _to_rgb(_upright(image))
        except Exception as exc:  # OSError "truncated", SyntaxError, struct.error, MemoryError, ...
            raise ImageDecodeError(decode_failure_reason(path, image.format, exc)) from None


#: Draft size for :func:`check_image`: JPEGs are decoded at 1/8 scale, which still reads all their data.
_CHECK_SIZE = 64


def check_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> None:
    """Decode all of ``path`` (JPEGs at reduced scale) or raise :class:`ImageDecodeError` saying why not.

    A header check (:func:`probe`, or Pillow's ``verify()``) passes a truncated JPEG; decoding the data
    does not.  Draft mode keeps this cheap for large photos: the decoder still reads every byte.
    """
    decode_rgb(path, _CHECK_SIZE, max_pixels)


def check_pixels(path: Path | str, max_pixels: int = MAX_PIXELS) -> int:
    """About how many pixels :func:`check_image` decodes for ``path`` (JPEGs at 1/8 scale); 0 if unreadable.

    A header read only: what the scan uses to check very large images one at a time.
    """
    try:
        with _open(Path(path), max_pixels) as image:
            width, height = image.size
            if image.format in ("JPEG", "MPO"):
                return max(1, width // 8) * max(1, height // 8)
            return width * height
    except ImageDecodeError:
        return 0


def file_problem(path: Path | str, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why ``path`` cannot be used as an image ("missing (file not found)", ...), or ``None`` if it can."""
    try:
        check_image(path, max_pixels)
    except ImageDecodeError as exc:
        return str(exc)
    return None


def load_array(path: Path | str, size: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` and resize it to ``size`` x ``size``; return an ``(size, size, 3)`` uint8 array."""
    _check_size(size)
    image = decode_rgb(path, size, max_pixels)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)
