"""Labels export, the settings file and the two caches on a failing disk (issue 13, docs/adr/0042).

User files (a labels CSV, class folders, settings.json) fail with one line naming the file and the reason,
the old file byte-identical; the caches (thumbnails, backbone features) cost only speed: the work goes on.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fault_projects import image_project
from fs_faults import FAULTS, REASONS, inject, snapshot, temp_files
from PIL import Image

from labeltune import cli
from labeltune.core.errors import StorageError
from labeltune.core.features import FeatureCache, FeatureKey
from labeltune.core.settings import Settings
from labeltune.core.thumbnails import ThumbnailCache

CODES = list(FAULTS.values())
IDS = list(FAULTS)


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_labels_export_fails_clearly_and_keeps_the_old_csv(
    tmp_path: Path, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    project = image_project(tmp_path / "proj")
    folder = project.folder
    project.close()
    out = tmp_path / "out"
    out.mkdir()
    (out / "labels.csv").write_text("path,label,source\nold.png,dog,human\n")
    before = snapshot(out)
    with inject(code, out) as hits:
        status = cli.main(["labels", "export", str(folder), str(out / "labels.csv")])
        folders = cli.main(["labels", "export", str(folder), "--folders", str(out / "classes")])
    err = capsys.readouterr().err.strip().splitlines()
    assert hits and status == 2 and folders == 2
    assert len(err) == 2 and not any("Traceback" in line for line in err)
    assert str(out / "labels.csv") in err[0] and REASONS[code] in err[0]
    assert str(out / "classes") in err[1] and REASONS[code] in err[1]
    assert snapshot(out) == before and temp_files(out) == []


def test_labels_exported_to_folders_on_a_disk_that_fills_leave_no_half_image(tmp_path: Path) -> None:
    from labeltune.core.label_io import export_folders
    from labeltune.core.label_targets import label_target

    project = image_project(tmp_path / "proj")
    out = tmp_path / "classes"
    (out / "cat").mkdir(parents=True)
    with inject(FAULTS["disk full"], out) as hits, pytest.raises(StorageError) as caught:
        export_folders(label_target(project), out)
    assert hits and str(out / "cat" / "img0.png") in str(caught.value) and REASONS[28] in str(caught.value)
    assert list((out / "cat").iterdir()) == []  # not a truncated img0.png that looks exported
    project.close()


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_settings_save_fails_clearly_and_keeps_the_old_file(tmp_path: Path, code: int) -> None:
    settings = Settings()
    settings.recent_projects = ["/somewhere/old"]
    settings.save()
    path = Settings.path()
    before = snapshot(path.parent)
    settings.recent_projects = ["/somewhere/new"]
    with inject(code, path.parent) as hits, pytest.raises(StorageError) as caught:
        settings.save()
    assert hits and str(path) in str(caught.value) and REASONS[code] in str(caught.value)
    assert snapshot(path.parent) == before and temp_files(path.parent) == []
    assert Settings.load().recent_projects == ["/somewhere/old"]


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_thumbnail_cache_that_cannot_be_written_costs_only_speed(tmp_path: Path, code: int) -> None:
    image = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(image)
    folder = tmp_path / "thumbs"
    cache = ThumbnailCache(folder, size=64)
    if code != errno.ENOENT:
        folder.mkdir()
    with inject(code, folder) as hits:
        first = cache.load(image)
        second = cache.load(image)
    assert hits
    assert first.image.size == second.image.size == (64, 43)
    assert not first.cached and not second.cached
    assert temp_files(tmp_path) == [] and not any(p.is_file() for p in tmp_path.rglob("*.jpg"))
    assert cache.load(image).image.size == (64, 43)  # the disk is back: cached from now on
    assert cache.load(image).cached


def _key() -> FeatureKey:
    return FeatureKey("resnet18", "random", "imagenet", 32, "pooled")


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_feature_cache_that_cannot_be_opened_costs_only_speed(tmp_path: Path, code: int) -> None:
    root = tmp_path / "cache"
    if code != errno.ENOENT:
        (root / "features").mkdir(parents=True)
    with inject(code, root) as hits, FeatureCache(root, _key()) as cache:
        cache.put_many({"h1": np.ones(4, dtype=np.float32)})
        assert cache.get_many(["h1", "h2"])["h1"].tolist() == [1.0] * 4  # kept for this run, in memory
    assert hits
    assert not any(p.is_file() for p in root.rglob("*")) if root.exists() else True


@pytest.mark.parametrize("code", [FAULTS["disk full"], FAULTS["read-only"]], ids=["disk full", "read-only"])
def test_feature_cache_writes_that_fail_cost_only_speed(tmp_path: Path, code: int) -> None:
    """An open cache whose disk fills up (SQLite's own errors): the run goes on, old rows stay readable."""
    import sqlite_faults

    with FeatureCache(tmp_path, _key()) as cache:
        cache.put_many({"old": np.full(3, 2.0, dtype=np.float32)})
        cache._db = sqlite_faults.arm(cache._db, code, tmp_path)
        cache.put_many({"new": np.ones(3, dtype=np.float32)})  # no exception
        cache.put_blob("bn", b"\x01\x02")
        assert set(cache.get_many(["old", "new"])) == {"old"}
    with FeatureCache(tmp_path, _key()) as again:
        assert again.get_many(["old"])["old"].tolist() == [2.0, 2.0, 2.0]


def test_sql_mistakes_in_the_feature_cache_still_raise(tmp_path: Path) -> None:
    """Only the disk's failures are forgiven; a bug is not hidden as "cannot write the cache"."""
    with FeatureCache(tmp_path, _key()) as cache, pytest.raises(sqlite3.OperationalError):
        cache._write("INSERT INTO no_such_table VALUES (?)", [(1,)])


@pytest.mark.parametrize("code", CODES, ids=IDS)
def test_hash_cache_that_cannot_be_written_costs_only_speed(tmp_path: Path, code: int) -> None:
    from labeltune.core.hashing import HashCache, file_sha256

    image = tmp_path / "a.bin"
    image.write_bytes(b"some bytes")
    root = tmp_path / "cache"
    if code != errno.ENOENT:
        root.mkdir()
    with inject(code, root) as hits, HashCache(root / "hashes.sqlite") as cache:
        assert cache.sha256(image) == file_sha256(image)
        cache.flush()
    assert hits


def test_hash_cache_writes_that_fail_cost_only_speed(tmp_path: Path) -> None:
    import sqlite_faults

    from labeltune.core.hashing import HashCache, file_sha256

    image = tmp_path / "a.bin"
    image.write_bytes(b"other bytes")
    with HashCache(tmp_path / "hashes.sqlite") as cache:
        cache._db = sqlite_faults.arm(cache._db, FAULTS["disk full"], tmp_path)
        assert cache.sha256(image) == file_sha256(image)
        cache.flush()  # no exception: only the next run hashes again
        assert cache._pending == []
