"""The on-disk thumbnail cache stays under its size limit and keeps what was used last (docs/adr/0044)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labeltune.core.thumbnails import DEFAULT_MAX_BYTES, ThumbnailCache


def _noise_images(folder: Path, count: int, size: int = 24) -> list[Path]:
    """``count`` small PNGs of random pixels (each thumbnail JPEG is then ~1 KB, none alike)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _jpeg_bytes(folder: Path) -> int:
    """Disk space the thumbnails take (whole blocks: what the limit bounds)."""
    return sum(_blocks(p.stat()) for p in folder.rglob("*.jpg"))


def _blocks(stat: os.stat_result) -> int:
    return stat.st_blocks * 512 if getattr(stat, "st_blocks", 0) else -(-stat.st_size // 4096) * 4096


def test_the_default_limit_is_500_mb(tmp_path: Path) -> None:
    assert DEFAULT_MAX_BYTES == 500 * 2**20
    assert ThumbnailCache(tmp_path / "thumbs").max_bytes == DEFAULT_MAX_BYTES


def test_disk_cache_stays_under_its_limit_and_keeps_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _noise_images(tmp_path / "images", 240)
    limit = 160_000  # ~40 thumbnails of ~1 KB, each in a 4 KiB block
    cache = ThumbnailCache(tmp_path / "thumbs", size=24, max_bytes=limit)
    walks: list[int] = []
    scan = cache._scan

    def counted_scan(*args: Any) -> tuple[int, int]:
        walks.append(1)
        return scan(*args)

    monkeypatch.setattr(cache, "_scan", counted_scan)
    written = 0
    for path in images:
        assert not cache.load(path).cached
        written += _blocks(cache.entry_path(path).stat()) if cache.entry_path(path).exists() else 0
        assert _jpeg_bytes(tmp_path / "thumbs") <= limit  # after every thumbnail, not only at the end
    assert written > 4 * limit  # the cache really had to prune, many times
    kept = [cache.entry_path(p).exists() for p in images]
    assert all(kept[-20:])  # the newest are kept ...
    assert not any(kept[:20])  # ... the oldest went
    assert _jpeg_bytes(tmp_path / "thumbs") >= 0.5 * limit  # pruned to 80 %, not emptied
    # cheap: the folder is walked once per many thumbnails, not once per thumbnail
    assert 3 <= len(walks) <= len(images) // 3


def test_a_cache_hit_makes_an_old_thumbnail_the_last_to_go(tmp_path: Path) -> None:
    images = _noise_images(tmp_path / "images", 30)
    cache = ThumbnailCache(tmp_path / "thumbs", size=24, max_bytes=0)  # no limit while filling
    for path in images:
        cache.load(path)
    day_ago = time.time() - 86_400
    for i, path in enumerate(images):  # made in this order, a day ago, one second apart
        entry = cache.entry_path(path)
        os.utime(entry, (day_ago + i, day_ago + i))
    assert cache.load(images[0]).cached  # the oldest is looked at again now
    total = _jpeg_bytes(tmp_path / "thumbs")
    cache.max_bytes = total // 2
    left = cache.prune()
    assert left == _jpeg_bytes(tmp_path / "thumbs") <= 0.8 * cache.max_bytes
    assert cache.entry_path(images[0]).exists()  # used last: kept
    assert not cache.entry_path(images[1]).exists()  # the least recently used went first
    assert cache.entry_path(images[-1]).exists()


def test_crashed_writers_temporary_files_are_swept_by_a_prune(tmp_path: Path) -> None:
    images = _noise_images(tmp_path / "images", 3)
    cache = ThumbnailCache(tmp_path / "thumbs", size=24)
    cache.load(images[0])
    shard = cache.entry_path(images[0]).parent
    stale, fresh = shard / "abc.tmp", shard / "def.tmp"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"x" * 100)  # another process may be writing it right now
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    cache.prune()
    assert not stale.exists() and fresh.exists()
    assert cache.entry_path(images[0]).exists()


def test_a_cache_that_cannot_prune_still_gives_thumbnails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _noise_images(tmp_path / "images", 40)
    cache = ThumbnailCache(tmp_path / "thumbs", size=24, max_bytes=5_000)
    real_unlink = os.unlink

    def refused(path: object, *args: object, **kwargs: object) -> None:
        if str(path).endswith(".jpg"):
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", refused)
    walks: list[int] = []
    scan = cache._scan
    monkeypatch.setattr(cache, "_scan", lambda *args: walks.append(1) or scan(*args))
    for path in images:
        assert cache.load(path).image.size == (24, 24)
    assert len(walks) <= 3  # stuck over the limit: no walk per thumbnail, a new try every 256 writes


def test_the_label_page_gives_the_project_cache_the_settings_limit(qtbot: Any, tmp_path: Path) -> None:
    from labeltune.core.datasets import Sample
    from labeltune.core.project import Project
    from labeltune.core.settings import Settings
    from labeltune.ui.label_page import LabelPage
    from labeltune.ui.session import ProjectSession

    images = _noise_images(tmp_path / "images", 2)
    with Project.create(tmp_path / "proj") as project:
        project.add_samples(Sample(path, None) for path in images)
    session = ProjectSession(Settings(thumbnail_cache_mb=3))
    page = LabelPage(session)
    qtbot.addWidget(page)
    try:
        session.open(tmp_path / "proj")
        cache = page.loader.cache
        assert cache is not None and cache.max_bytes == 3 * 2**20
        assert cache.folder == tmp_path / "proj" / "cache" / "thumbnails"
    finally:
        page.shutdown()
        session.close()


def test_counting_walks_keep_no_list_and_thin_out_as_the_cache_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _noise_images(tmp_path / "images", 300)
    cache = ThumbnailCache(tmp_path / "thumbs", size=24)  # 500 MB: never reached here
    listed: list[bool] = []
    scan = cache._scan
    monkeypatch.setattr(cache, "_scan", lambda *args: listed.append(bool(args)) or scan(*args))
    for path in images:
        cache.load(path)
    # a list of every entry (100 000 at 128 px: ~15 MB of objects) is made only to prune
    assert listed == [False, False]  # the first write, and after 256 more
    assert cache._entries == 257  # the next count comes after max(256, 257 // 2) writes
    assert cache.disk_bytes() == _jpeg_bytes(tmp_path / "thumbs")
