"""Tests for labeltune.core.imaging: every image is generated in tmp_path; pixel values are asserted."""

from __future__ import annotations

import gc
import io
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from labeltune.core.errors import ImageDecodeError, LabelTuneError
from labeltune.core.imaging import MAX_PIXELS, decode_rgb, is_image_file, load_array, probe

# imaging.py silences Pillow's UserWarnings (corrupt EXIF...) process-wide at import; pytest restores the
# filters after collection, so do the same here (test_no_pillow_warnings_in_a_fresh_process checks it).
pytestmark = pytest.mark.filterwarnings(r"ignore::UserWarning:PIL\.")

CORN_IMAGES = Path("/work/shared/data/corn_leaf/images")
RED = (255, 0, 0)
BLUE = (0, 0, 255)
GRAY = (128, 128, 128)
WHITE = (255, 255, 255)


# --------------------------------------------------------------------------------------------- helpers


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    """A minimal PNG written by hand (Pillow cannot write 16-bit RGB, nor lie about its size)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _marked(width: int = 64, height: int = 32) -> Image.Image:
    """Gray image, red 16x16 block in the top-left corner and blue in the top-right (as stored)."""
    array = np.full((height, width, 3), GRAY, np.uint8)
    array[:16, :16] = RED
    array[:16, -16:] = BLUE
    return Image.fromarray(array)


def _corner(array: np.ndarray, corner: str) -> np.ndarray:
    """Mean colour of a 6x6 patch well inside the 16x16 block at ``corner`` (TL, TR, BL, BR)."""
    h, w, _ = array.shape
    y = 5 if corner[0] == "T" else h - 11
    x = 5 if corner[1] == "L" else w - 11
    return array[y : y + 6, x : x + 6].reshape(-1, 3).mean(axis=0)


def _close(actual: np.ndarray, expected: tuple[int, ...], tol: float) -> bool:
    return bool(np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64)).max() <= tol)


def _smooth_photo(width: int, height: int) -> Image.Image:
    """Smooth colour gradients, like an out-of-focus background: resampling methods agree on it."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 255 * x / (width - 1)
    g = 255 * y / (height - 1)
    b = 127.5 + 127.5 * np.sin(x / width * 2 * np.pi) * np.cos(y / height * 2 * np.pi)
    return Image.fromarray(np.stack([r, g, b], axis=-1).round().astype(np.uint8))


def _assert_decode_error(path: Path) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as info:
        decode_rgb(path)
    assert str(info.value).strip(), "the error must say why"
    with pytest.raises(ImageDecodeError):
        load_array(path, 32)
    return info.value


@pytest.fixture
def no_leaks() -> Iterator[list[warnings.WarningMessage]]:
    """Record ResourceWarnings (unclosed files) raised while the test runs and fail on any."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield caught
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


# ------------------------------------------------------------------------------------------ extensions


@pytest.mark.parametrize(
    "name",
    [
        "Corn_Blight (1007).JPG",
        "a.jpg",
        "a.JPEG",
        "a.Png",
        "scan.TIF",
        "scan.tiff",
        "x.jfif",
        "x.WebP",
        "x.pgm",
    ],
)
def test_is_image_file_accepts_any_case(name: str) -> None:
    assert is_image_file(Path(name))


@pytest.mark.parametrize("name", ["notes.txt", "README", "photo.jpg.bak", "photo.JPG.zip", ".jpg", "a.svg"])
def test_is_image_file_rejects(name: str) -> None:
    assert not is_image_file(Path(name))


# ----------------------------------------------------------------------------------------- orientation

#: EXIF orientation -> where the stored top-left (red) and top-right (blue) blocks end up when upright.
ORIENTATIONS = {
    1: ("TL", "TR"),
    2: ("TR", "TL"),
    3: ("BR", "BL"),
    4: ("BL", "BR"),
    5: ("TL", "BL"),
    6: ("TR", "BR"),  # rotate 90 degrees clockwise
    7: ("BR", "TR"),
    8: ("BL", "TL"),  # rotate 90 degrees counter-clockwise
}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation(tmp_path: Path, fmt: str, orientation: int) -> None:
    path = tmp_path / f"wide.{fmt.lower()}"
    if fmt == "TIFF":
        _marked().save(path, fmt, tiffinfo={0x0112: orientation})
    else:
        _marked().save(path, fmt, exif=_exif(orientation), **({"quality": 95} if fmt == "JPEG" else {}))
    tol = 40 if fmt == "JPEG" else 0

    rgb = np.asarray(decode_rgb(path))
    assert rgb.shape == ((64, 32, 3) if orientation >= 5 else (32, 64, 3))  # 5..8 turn a wide photo tall
    red_at, blue_at = ORIENTATIONS[orientation]
    assert _close(_corner(rgb, red_at), RED, tol)
    assert _close(_corner(rgb, blue_at), BLUE, tol)
    others = {"TL", "TR", "BL", "BR"} - {red_at, blue_at}
    assert all(_close(_corner(rgb, c), GRAY, tol) for c in others)


def test_orientation_with_draft_and_load_array(tmp_path: Path) -> None:
    path = tmp_path / "rotated_big.jpg"
    _marked().resize((1280, 640), Image.Resampling.NEAREST).save(path, quality=95, exif=_exif(6))
    image = decode_rgb(path, 100)
    assert image.size == (160, 320)  # drafted at 1/4 (1/8 would be < 100 px high), then turned upright
    array = load_array(path, 100)
    assert array.shape == (100, 100, 3) and array.dtype == np.uint8
    assert _close(array[5:15, 85:95].reshape(-1, 3).mean(axis=0), RED, 40)  # top-right after rotation
    assert _close(array[85:95, 5:15].reshape(-1, 3).mean(axis=0), GRAY, 40)


def test_damaged_exif_still_decodes(tmp_path: Path) -> None:
    # A real-world kind of damage: tag 318 (WhitePoint, RATIONAL) holding ASCII. Reading it is fine, but
    # ImageOps.exif_transpose re-encodes the EXIF after turning and raised TypeError on it.
    ifd = struct.pack(">H", 2)
    ifd += struct.pack(">HHII", 0x013E, 2, 6, 38)  # WhitePoint, ASCII, 6 bytes at offset 38
    ifd += struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)  # Orientation, SHORT, = 6
    exif = b"Exif\x00\x00MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0) + b"Canon\x00"
    path = tmp_path / "damaged_exif.jpg"
    _marked().save(path, quality=95, exif=exif)
    rgb = np.asarray(decode_rgb(path))
    assert rgb.shape == (64, 32, 3)
    assert _close(_corner(rgb, "TR"), RED, 40)


def test_garbage_exif_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "garbage_exif.jpg"
    _marked().save(path, quality=95, exif=b"Exif\x00\x00MM\x00*\xff\xff\xff\xff garbage")
    rgb = np.asarray(decode_rgb(path))
    assert rgb.shape == (32, 64, 3)
    assert _close(_corner(rgb, "TL"), RED, 40)


# ------------------------------------------------------------------------------------------------ modes


def test_grayscale_l(tmp_path: Path) -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(values, mode="L").save(tmp_path / "gray.png")
    rgb = np.asarray(decode_rgb(tmp_path / "gray.png"))
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], values)


def test_grayscale_jpeg_with_draft(tmp_path: Path) -> None:
    Image.new("L", (800, 800), 77).save(tmp_path / "gray.jpg")
    image = decode_rgb(tmp_path / "gray.jpg", 100)
    assert image.mode == "RGB" and image.size == (100, 100)
    rgb = np.asarray(image)
    assert np.all(np.abs(rgb.astype(int) - 77) <= 1)


def test_one_bit(tmp_path: Path) -> None:
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(bool)
    Image.fromarray(checker).convert("1").save(tmp_path / "bits.png")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    rgb = np.asarray(decode_rgb(tmp_path / "bits.png"))
    expected = np.where(checker, 255, 0)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], expected)


def _palette_image() -> Image.Image:
    image = Image.new("P", (4, 1))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30] + [0] * (256 * 3 - 12))
    image.putdata([0, 1, 2, 3])
    return image


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP"])
def test_palette(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"palette.{fmt.lower()}"
    _palette_image().save(path, fmt)
    assert Image.open(path).mode == "P"
    rgb = np.asarray(decode_rgb(path))
    np.testing.assert_array_equal(rgb[0], [RED, (0, 255, 0), BLUE, (10, 20, 30)])


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparent_index(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"palette_t.{fmt.lower()}"
    _palette_image().save(path, fmt, transparency=1)  # green is transparent
    assert "transparency" in Image.open(path).info
    rgb = np.asarray(decode_rgb(path))
    np.testing.assert_array_equal(rgb[0], [RED, WHITE, BLUE, (10, 20, 30)])


def test_palette_with_alpha_table(tmp_path: Path) -> None:
    path = tmp_path / "palette_alpha.png"
    _palette_image().save(path, transparency=bytes([255, 0, 128, 255]))
    rgb = np.asarray(decode_rgb(path)).astype(int)
    np.testing.assert_array_equal(rgb[0, [0, 1, 3]], [RED, WHITE, (10, 20, 30)])
    assert np.abs(rgb[0, 2] - [127, 127, 255]).max() <= 1  # half-transparent blue on white


def _alpha_expected(colour: tuple[int, ...], alpha: int) -> np.ndarray:
    return np.asarray(colour) * alpha / 255 + 255 * (1 - alpha / 255)


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    alphas = [0, 64, 128, 255]
    array = np.zeros((1, 4, 4), np.uint8)
    array[0, :, :3] = (200, 50, 0)
    array[0, :, 3] = alphas
    Image.fromarray(array, mode="RGBA").save(tmp_path / "rgba.png")
    rgb = np.asarray(decode_rgb(tmp_path / "rgba.png")).astype(int)
    np.testing.assert_array_equal(rgb[0, 0], WHITE)
    np.testing.assert_array_equal(rgb[0, 3], (200, 50, 0))
    for i, alpha in enumerate(alphas):
        assert np.abs(rgb[0, i] - _alpha_expected((200, 50, 0), alpha)).max() <= 1


def test_la_composited_on_white(tmp_path: Path) -> None:
    alphas = [0, 100, 200, 255]
    array = np.zeros((1, 4, 2), np.uint8)
    array[0, :, 0] = 40
    array[0, :, 1] = alphas
    Image.fromarray(array, mode="LA").save(tmp_path / "la.png")
    assert Image.open(tmp_path / "la.png").mode == "LA"
    rgb = np.asarray(decode_rgb(tmp_path / "la.png")).astype(int)
    np.testing.assert_array_equal(rgb[0, 0], WHITE)
    np.testing.assert_array_equal(rgb[0, 3], (40, 40, 40))
    for i, alpha in enumerate(alphas):
        assert np.abs(rgb[0, i] - _alpha_expected((40, 40, 40), alpha)).max() <= 1
        assert rgb[0, i, 0] == rgb[0, i, 1] == rgb[0, i, 2]


def test_transparent_colour_key_in_gray_and_rgb_png(tmp_path: Path) -> None:
    # PNG tRNS on a grayscale or truecolour image: one exact value is transparent, like a palette index.
    gray = Image.fromarray(np.array([[50, 60]], np.uint8), mode="L")
    gray.save(tmp_path / "gray_t.png", transparency=50)
    np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / "gray_t.png"))[0], [WHITE, (60, 60, 60)])
    rgb = Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8))
    rgb.save(tmp_path / "rgb_t.png", transparency=(1, 2, 3))
    np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / "rgb_t.png"))[0], [WHITE, (4, 5, 6)])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    inks = [(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 255), (0, 0, 0, 0)]
    array = np.zeros((16, 16 * len(inks), 4), np.uint8)
    for i, ink in enumerate(inks):
        array[:, 16 * i : 16 * (i + 1)] = ink
    Image.fromarray(array, mode="CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    rgb = np.asarray(decode_rgb(tmp_path / "cmyk.jpg"))
    expected = [(0, 255, 255), (255, 0, 255), (255, 255, 0), (0, 0, 0), WHITE]  # cyan, magenta, ...
    for i, colour in enumerate(expected):
        block = rgb[4:12, 16 * i + 4 : 16 * i + 12].reshape(-1, 3).mean(axis=0)
        assert _close(block, colour, 12), (i, block)


def test_cmyk_jpeg_with_draft(tmp_path: Path) -> None:
    Image.new("CMYK", (800, 640), (255, 0, 0, 0)).save(tmp_path / "cmyk_big.jpg", quality=95)
    image = decode_rgb(tmp_path / "cmyk_big.jpg", 100)
    assert image.mode == "RGB" and image.size == (200, 160)  # drafted at 1/4
    assert _close(np.asarray(image).reshape(-1, 3).mean(axis=0), (0, 255, 255), 8)


def test_16bit_grayscale_png(tmp_path: Path) -> None:
    values = np.array([[0, 65535, 128 * 257, 257]], np.uint16)
    Image.fromarray(values).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode in ("I;16", "I")
    rgb = np.asarray(decode_rgb(tmp_path / "gray16.png"))
    np.testing.assert_array_equal(rgb[0], [(0, 0, 0), WHITE, GRAY, (1, 1, 1)])


def test_16bit_grayscale_png_written_by_hand(tmp_path: Path) -> None:
    raw = b"\x00" + struct.pack(">3H", 0, 65535, 1000)  # filter byte, then big-endian samples
    (tmp_path / "g16.png").write_bytes(_png_bytes(3, 1, 16, 0, raw))
    np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / "g16.png"))[0, :, 0], [0, 255, 4])


def test_16bit_rgb_png(tmp_path: Path) -> None:
    # Pillow cannot write 16-bit RGB; this is what a scanner or a scientific camera may write.
    raw = b"\x00" + struct.pack(">6H", 65535, 0, 0, 0, 128 * 257, 65535)
    (tmp_path / "rgb16.png").write_bytes(_png_bytes(2, 1, 16, 2, raw))
    rgb = np.asarray(decode_rgb(tmp_path / "rgb16.png"))
    np.testing.assert_array_equal(rgb[0], [RED, (0, 128, 255)])


def test_16bit_rgba_png(tmp_path: Path) -> None:
    raw = b"\x00" + struct.pack(">8H", 65535, 0, 0, 0, 0, 0, 65535, 65535)  # transparent, then blue
    (tmp_path / "rgba16.png").write_bytes(_png_bytes(2, 1, 16, 6, raw))
    np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / "rgba16.png"))[0], [WHITE, BLUE])


def test_float_tiff(tmp_path: Path) -> None:
    values = np.array([[-1.0, 0.0, 1.0, np.nan, np.inf, -np.inf]], np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "float.tif")
    assert Image.open(tmp_path / "float.tif").mode == "F"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "invalid value encountered" from numpy
        rgb = np.asarray(decode_rgb(tmp_path / "float.tif"))
    # Stretched from the finite minimum to the finite maximum; NaN is black, +-inf saturate.
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 128, 255, 0, 255, 0])
    assert np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])


def test_constant_float_tiff_is_black(tmp_path: Path) -> None:
    Image.fromarray(np.full((2, 2), 3.5, np.float32), mode="F").save(tmp_path / "flat.tif")
    np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / "flat.tif")), 0)


def test_32bit_integer_tiff(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 40000, 65535]], np.int32), mode="I").save(tmp_path / "i16range.tif")
    np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / "i16range.tif"))[0, :, 0], [0, 156, 255])
    # Outside the 16-bit range: stretched from minimum to maximum rather than clipped to white.
    Image.fromarray(np.array([[-100, 0, 1_000_000]], np.int32), mode="I").save(tmp_path / "wide.tif")
    np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / "wide.tif"))[0, :, 0], [0, 0, 255])


def test_rgb_tiff_and_webp_and_bmp(tmp_path: Path) -> None:
    image = _marked()
    cases: list[tuple[str, dict[str, Any]]] = [("a.tif", {}), ("a.bmp", {}), ("a.webp", {"lossless": True})]
    for name, kwargs in [*cases, ("a.ppm", {})]:
        image.save(tmp_path / name, **kwargs)
        np.testing.assert_array_equal(np.asarray(decode_rgb(tmp_path / name)), np.asarray(image))


def test_animated_gif_first_frame_and_file_closed(
    tmp_path: Path, no_leaks: list[warnings.WarningMessage]
) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, BLUE)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    rgb = np.asarray(decode_rgb(tmp_path / "anim.gif"))
    assert np.all(rgb == RED)


def test_png_written_as_jpg_is_read_by_content(tmp_path: Path) -> None:
    _marked().save(tmp_path / "really_a_png.jpg", "PNG")
    np.testing.assert_array_equal(
        np.asarray(decode_rgb(tmp_path / "really_a_png.jpg")), np.asarray(_marked())
    )


# ---------------------------------------------------------------------------------------- draft mode


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    _smooth_photo(4000, 3000).save(path, quality=90)
    return path


@pytest.mark.parametrize("size", [299, 224])
def test_draft_decodes_large_jpeg_smaller(big_jpeg: Path, size: int) -> None:
    image = decode_rgb(big_jpeg, size)
    assert image.mode == "RGB"
    assert min(image.size) >= size
    assert image.size[0] < 4000 and image.size[1] < 3000  # the decoder scaled: draft mode was used
    assert image.size == (500, 375)  # 1/8: the smallest JPEG scale still >= size on both sides


def test_no_size_means_full_decode(big_jpeg: Path) -> None:
    assert decode_rgb(big_jpeg).size == (4000, 3000)


@pytest.mark.parametrize("size", [299, 224])
def test_load_array_matches_full_decode(big_jpeg: Path, size: int) -> None:
    fast = load_array(big_jpeg, size)
    assert fast.shape == (size, size, 3) and fast.dtype == np.uint8
    full = Image.open(big_jpeg).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    diff = np.abs(fast.astype(np.int16) - np.asarray(full, np.int16))
    assert diff.mean() < 6, diff.mean()
    assert diff.max() < 40, diff.max()
    # ...and it is the gradient, not a blank image: left-to-right red ramp, top-to-bottom green ramp.
    assert fast[size // 2, 0, 0] < 20 and fast[size // 2, -1, 0] > 235
    assert fast[0, size // 2, 1] < 20 and fast[-1, size // 2, 1] > 235


def test_draft_not_used_when_image_is_small(tmp_path: Path) -> None:
    _smooth_photo(500, 400).save(tmp_path / "small.jpg", quality=95)
    assert decode_rgb(tmp_path / "small.jpg", 299).size == (500, 400)  # 1/2 would be < 299
    assert decode_rgb(tmp_path / "small.jpg", 200).size == (250, 200)
    assert decode_rgb(tmp_path / "small.jpg", 1000).size == (500, 400)


def test_draft_used_for_mpo(tmp_path: Path) -> None:
    # Many cameras and phones write MPO (JPEG + extra pictures); Pillow reports format "MPO".
    path = tmp_path / "DSCF0001.JPG"
    first, second = _smooth_photo(1600, 1200), Image.new("RGB", (1600, 1200), BLUE)
    first.save(path, "MPO", save_all=True, append_images=[second], quality=90)
    assert Image.open(path).format == "MPO"
    image = decode_rgb(path, 299)
    assert image.size == (400, 300)
    array = load_array(path, 299)
    full = first.resize((299, 299), Image.Resampling.BILINEAR)
    assert np.abs(array.astype(np.int16) - np.asarray(full, np.int16)).mean() < 6


def test_size_must_be_positive(tmp_path: Path) -> None:
    _marked().save(tmp_path / "a.jpg")
    for bad in (0, -1):
        with pytest.raises(ValueError, match="size"):
            load_array(tmp_path / "a.jpg", bad)
        with pytest.raises(ValueError, match="size"):
            decode_rgb(tmp_path / "a.jpg", bad)


# ------------------------------------------------------------------------------- decompression bombs


def test_pixel_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (100, 100), RED).save(tmp_path / "hundred.png")
    assert probe(tmp_path / "hundred.png", max_pixels=10_000) == (100, 100)  # the limit itself is fine

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for call in (
        lambda: probe(tmp_path / "hundred.png", max_pixels=1000),
        lambda: decode_rgb(tmp_path / "hundred.png", max_pixels=1000),
        lambda: load_array(tmp_path / "hundred.png", 32, max_pixels=9999),
    ):
        with pytest.raises(ImageDecodeError, match=r"100x100 pixels exceeds the limit of (1000|9999)"):
            call()


def test_huge_header_png_is_refused_before_decoding(tmp_path: Path) -> None:
    # 100 000 x 100 000 RGB would need 30 GB; the file is under 100 bytes.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(100_000, 100_000, 8, 2, b"\x00" * 64))
    assert path.stat().st_size < 100
    match = rf"100000x100000 pixels exceeds the limit of {MAX_PIXELS}"
    with pytest.raises(ImageDecodeError, match=match):
        probe(path)
    with pytest.raises(ImageDecodeError, match=match):
        decode_rgb(path, 224)
    with pytest.raises(ImageDecodeError, match=match):
        load_array(path, 224)


def test_huge_header_jpeg_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width in the frame header
    (tmp_path / "bomb.jpg").write_bytes(bytes(data))
    with pytest.raises(ImageDecodeError, match="60000x60000 pixels exceeds the limit"):
        load_array(tmp_path / "bomb.jpg", 224)


def test_large_but_allowed_header_does_not_trip_pillow_limit(tmp_path: Path) -> None:
    # 12 000 x 12 000 is above Pillow's own default bomb limit but below ours: our limit decides.
    path = tmp_path / "big_header.png"
    path.write_bytes(_png_bytes(12_000, 12_000, 8, 0, b"\x00"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert probe(path) == (12_000, 12_000)


# ------------------------------------------------------------------------------------- broken files


def test_truncated_jpeg(tmp_path: Path, no_leaks: list[warnings.WarningMessage]) -> None:
    _smooth_photo(320, 240).save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    error = _assert_decode_error(tmp_path / "half.jpg")
    assert str(error) == "truncated JPEG (image data ends early)"
    with pytest.raises(ImageDecodeError):
        load_array(tmp_path / "half.jpg", 80)  # the draft path too


def test_truncated_png(tmp_path: Path, no_leaks: list[warnings.WarningMessage]) -> None:
    _smooth_photo(64, 64).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    _assert_decode_error(tmp_path / "half.png")


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert str(_assert_decode_error(tmp_path / "empty.jpg")) == "empty file (0 bytes)"
    with pytest.raises(ImageDecodeError):
        probe(tmp_path / "empty.jpg")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("these are not the pixels you are looking for\n" * 20)
    assert "not an image" in str(_assert_decode_error(tmp_path / "notes.jpg"))


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in str(_assert_decode_error(tmp_path / "nowhere.jpg"))
    with pytest.raises(ImageDecodeError, match="not found"):
        probe(tmp_path / "nowhere.jpg")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.jpg").mkdir()
    _assert_decode_error(tmp_path / "folder.jpg")


def test_eps_disguised_as_jpg_is_refused(tmp_path: Path) -> None:
    # Pillow reads EPS by running Ghostscript: never on a file from a user's photo folder.
    Image.new("RGB", (8, 8), RED).save(tmp_path / "vector.jpg", "EPS")
    assert str(_assert_decode_error(tmp_path / "vector.jpg")) == "unsupported format (PostScript/EPS)"


def test_no_pillow_warnings_in_a_fresh_process(tmp_path: Path) -> None:
    path = tmp_path / "garbage_exif.jpg"
    _marked().save(path, exif=b"Exif\x00\x00MM\x00*\xff\xff\xff\xff garbage")
    code = "import sys; from labeltune.core.imaging import decode_rgb; decode_rgb(sys.argv[1], 16)"
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_decode_error_is_a_labeltune_error(tmp_path: Path) -> None:
    assert issubclass(ImageDecodeError, LabelTuneError)


def test_concurrent_decoding(tmp_path: Path) -> None:
    # Decoding runs on worker threads; results must not depend on what other threads are doing.
    paths = []
    for i, orientation in enumerate([1, 3, 6, 8] * 3):
        path = tmp_path / f"t{i}.png"
        _marked().save(path, exif=_exif(orientation))
        paths.append((path, orientation))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nonsense")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                for path, orientation in paths:
                    rgb = np.asarray(decode_rgb(path))
                    assert _close(_corner(rgb, ORIENTATIONS[orientation][0]), RED, 0)
                with pytest.raises(ImageDecodeError):
                    decode_rgb(tmp_path / "broken.jpg")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


# ------------------------------------------------------------------------------------------- fuzzing


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    seeds = {}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("jpeg", "JPEG", {"exif": _exif(6)}),
        ("progressive", "JPEG", {"progressive": True}),
        ("png", "PNG", {"exif": _exif(8)}),
        ("gif", "GIF", {}),
        ("bmp", "BMP", {}),
        ("tiff", "TIFF", {"tiffinfo": {0x0112: 6}}),
        ("tiff_lzw", "TIFF", {"compression": "tiff_lzw"}),
        ("webp", "WEBP", {}),
        ("ppm", "PPM", {}),
    ]
    for name, fmt, kwargs in cases:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        seeds[name] = buffer.getvalue()
    return seeds


SEEDS = _seed_files()
MAGIC = [
    b"",
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"P6\n16 12\n255\n",
]
MAGIC += [b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"%!PS-Adobe-3.0 EPSF-3.0\n", b"\x00\x00\x01\x00"]


def _decode_outcome(path: Path) -> None:
    """Decoding either succeeds with a proper RGB image or raises ImageDecodeError; nothing else."""
    try:
        image = decode_rgb(path, 8)
    except ImageDecodeError as exc:
        assert str(exc).strip()
        return
    assert image.mode == "RGB" and image.width > 0 and image.height > 0
    try:
        array = load_array(path, 8)
    except ImageDecodeError:
        return
    assert array.shape == (8, 8, 3) and array.dtype == np.uint8


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(MAGIC), tail=st.binary(max_size=300))
def test_random_bytes_after_header(fuzz_dir: Path, prefix: bytes, tail: bytes) -> None:
    path = fuzz_dir / "random.jpg"
    path.write_bytes(prefix + tail)
    _decode_outcome(path)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_mutated_real_files(
    fuzz_dir: Path, seed: str, edits: list[tuple[float, int]], cut: float | None
) -> None:
    data = bytearray(SEEDS[seed])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = fuzz_dir / f"mutated.{seed}"
    path.write_bytes(bytes(data))
    _decode_outcome(path)


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.skipif(not CORN_IMAGES.is_dir(), reason="corn-leaf data set not present")
def test_real_corn_leaf_photos() -> None:
    paths = sorted(p for p in CORN_IMAGES.rglob("*") if p.is_file())
    assert len(paths) >= 100
    assert all(is_image_file(p) for p in paths)
    for path in paths:
        array = load_array(path, 224)
        assert array.shape == (224, 224, 3) and array.dtype == np.uint8, path
        assert 5 < array.mean() < 250, path  # a photo, not a blank
