from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltune.core import thumbnails as thumbnails_module
from labeltune.core.errors import ImageDecodeError
from labeltune.core.thumbnails import ThumbnailCache


def _photo(path: Path, width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = colour
    pixels[: height // 2, : width // 2] = (255, 255, 255)  # a white top-left quarter
    Image.fromarray(pixels).save(path)
    return path


def test_thumbnail_fits_keeps_aspect_and_is_cached(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", size=64)
    source = _photo(tmp_path / "wide.png", 400, 200)
    first = cache.load(source)
    assert not first.cached
    assert first.image.mode == "RGB"
    assert first.image.size == (64, 32)
    assert first.image.getpixel((5, 5))[0] > 240  # top-left stays top-left (white)
    red, green, _ = first.image.getpixel((60, 28))
    assert red > 150 and green < 80
    entry = cache.entry_path(source)
    assert entry.is_file() and entry.parent.parent == tmp_path / "thumbs"
    assert entry.suffix == ".jpg"
    second = cache.load(source)
    assert second.cached and second.image.size == (64, 32)


def test_cached_thumbnail_does_not_decode_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", size=32)
    source = _photo(tmp_path / "a.png", 100, 100)
    cache.load(source)

    def no_decode(*args: object, **kwargs: object) -> Image.Image:
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(thumbnails_module, "decode_rgb", no_decode)
    assert cache.load(source).cached


def test_small_images_are_not_enlarged(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", size=128)
    assert cache.load(_photo(tmp_path / "small.png", 40, 30)).image.size == (40, 30)


def test_changed_file_or_size_gets_a_new_entry(tmp_path: Path) -> None:
    source = _photo(tmp_path / "a.png", 100, 100)
    cache = ThumbnailCache(tmp_path / "thumbs", size=32)
    before = cache.entry_path(source)
    cache.load(source)
    assert ThumbnailCache(tmp_path / "thumbs", size=48).entry_path(source) != before
    _photo(source, 120, 60, colour=(0, 0, 255))
    stat = os.stat(source)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = cache.entry_path(source)
    assert after != before
    fresh = cache.load(source)
    assert not fresh.cached and fresh.image.size == (32, 16)


def test_damaged_cache_entry_is_remade(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", size=32)
    source = _photo(tmp_path / "a.png", 64, 64)
    cache.load(source)
    cache.entry_path(source).write_bytes(b"\xff\xd8 not really a jpeg")
    again = cache.load(source)
    assert not again.cached and again.image.size == (32, 32)
    assert cache.load(source).cached


def test_unreadable_and_missing_files_raise_readable_errors(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", size=32)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not an image")
    with pytest.raises(ImageDecodeError, match="not an image"):
        cache.load(broken)
    with pytest.raises(ImageDecodeError, match="file not found"):
        cache.load(tmp_path / "gone.png")
    assert not (tmp_path / "thumbs").exists() or not any((tmp_path / "thumbs").rglob("*.jpg"))


def test_unwritable_cache_still_gives_thumbnails_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "thumbs"
    blocker.write_text("a file where the cache folder should be")
    cache = ThumbnailCache(blocker, size=32)
    with caplog.at_level(logging.DEBUG, logger="labeltune.core.thumbnails"):
        for i in range(3):
            result = cache.load(_photo(tmp_path / f"{i}.png", 64, 64))
            assert not result.cached and result.image.size == (32, 32)
    ours = [r.levelno for r in caplog.records if r.name == "labeltune.core.thumbnails"]
    assert ours == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_size_must_be_sensible(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ThumbnailCache(tmp_path, size=0)
