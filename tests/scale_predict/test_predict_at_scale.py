"""Prediction at scale (issue 15): bounded look-ahead, shards, output written as it comes, XRD series."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labeltune import cli
from labeltune.core import inference
from labeltune.core.errors import LabelTuneError
from labeltune.core.predict_stream import Shard, StreamedCsv, batches, prefetched, take_shard
from labeltune.core.progress import StoppedError

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40)}
FAST = ["--backbone", "efficientnet_lite0", "--input-size", "64", "--seed", "0", "--epochs", "10"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir()
        for i in range(12):
            pixels = np.asarray(colour, float)[None, None, :] + rng.normal(0, 20, (32, 32, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / name / f"{name}{i:02d}.png")
    (root / "red" / "broken.png").write_bytes(b"not a png")
    return root


@pytest.fixture(scope="module")
def run_dir(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELTUNE_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")
        assert cli.main(["train", str(images), *FAST, "--out", str(out), "--json"]) == 0
    return out


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------------------ shards


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_are_disjoint_cover_everything_and_balanced(count: int) -> None:
    items = [Path(f"/data/img{i}.png") for i in range(20)]
    parts = [Shard(i, count).take(list(reversed(items))) for i in range(count)]  # listing order differs
    assert sorted(p for part in parts for p in part) == sorted(items)
    assert len({p for part in parts for p in part}) == len(items)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == [Shard(i, count).take(items) for i in range(count)]


@pytest.mark.parametrize("spec", ["2/2", "-1/3", "a/b", "1", "0/0", "1/"])
def test_a_bad_shard_is_refused_with_its_text(spec: str) -> None:
    with pytest.raises(LabelTuneError, match="--shard"):
        take_shard([1, 2, 3], spec)


# ------------------------------------------------------------------------------------------ look-ahead


def test_prefetch_keeps_one_batch_ahead_and_order() -> None:
    started: list[int] = []
    consumed: list[int] = []

    def work(chunk: Sequence[int]) -> int:
        started.append(chunk[0])
        return sum(chunk)

    results = []
    for chunk, total in prefetched(batches(list(range(50)), 5), work):
        # the work of at most one more chunk than the ones consumed has started
        assert len(started) <= len(consumed) + 2
        consumed.append(chunk[0])
        results.append(total)
    assert results == [sum(range(i, i + 5)) for i in range(0, 50, 5)]


def test_prefetch_stops_between_chunks() -> None:
    stop = threading.Event()
    seen = []
    with pytest.raises(StoppedError):
        for chunk, _ in prefetched(batches(list(range(40)), 4), len, stop):
            seen.append(chunk[0])
            if len(seen) == 2:
                stop.set()
    assert seen == [0, 4]


def test_iter_predictions_decodes_at_most_two_batches_ahead(
    run_dir: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[Path] = []
    real = inference.load_array

    def counting(path: Path, size: int) -> np.ndarray:
        decoded.append(path)
        return real(path, size)

    monkeypatch.setattr(inference, "load_array", counting)
    paths = sorted(images.rglob("*.png")) * 2  # 50 files, 2 unreadable
    answered = 0
    for n, (predictions, skipped) in enumerate(
        inference.iter_predictions(run_dir, paths, batch_size=5, device="cpu")
    ):
        answered += len(predictions) + len(skipped)
        assert answered == 5 * (n + 1)  # one batch at a time, in order
        assert len(decoded) <= answered + 5, "more than the batch in use and the next one were decoded"
    assert answered == len(decoded) == len(paths)


# ------------------------------------------------------------------------------------------ CLI


def test_shards_predict_every_file_once_and_agree_with_one_process(
    run_dir: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = tmp_path / "all.csv"
    assert cli.main(["predict", str(run_dir), str(images), "--out", str(whole), "--batch-size", "5"]) == 0
    rows = {r["path"]: r["predicted"] for r in _csv(whole)}
    assert len(rows) == 24  # the broken file is reported, not a row
    merged: dict[str, str] = {}
    for i in range(3):
        part = tmp_path / f"part{i}.csv"
        assert cli.main(["predict", str(run_dir), str(images), "--shard", f"{i}/3", "--out", str(part)]) == 0
        shard_rows = {r["path"]: r["predicted"] for r in _csv(part)}
        assert not set(shard_rows) & set(merged)
        merged.update(shard_rows)
    assert merged == rows
    accuracy = np.mean([Path(p).parent.name == label for p, label in rows.items()])
    assert accuracy > 0.8  # learned, not a constant answer
    assert "broken.png" in capsys.readouterr().err


def test_json_is_one_valid_array_with_the_skipped_file_last(
    run_dir: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli.main(["predict", str(run_dir), str(images), "--json", "--batch-size", "7"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 25
    assert results[-1]["path"].endswith("broken.png") and "error" in results[-1]
    assert all(r["predicted"] in COLOURS for r in results[:-1])


def test_a_stop_keeps_the_previous_csv_and_prints_valid_json(
    run_dir: Path,
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    real = inference.iter_predictions

    def stopped_after_one(*args: Any, **kwargs: Any) -> Any:
        stream = real(*args, **kwargs)
        yield next(stream)
        raise StoppedError("stopped by user")

    monkeypatch.setattr(inference, "iter_predictions", stopped_after_one)
    capsys.readouterr()
    code = cli.main(["predict", str(run_dir), str(images), "--json", "--out", str(out), "--batch-size", "4"])
    assert code == 130
    assert out.read_text() == "previous\n"
    assert not list(tmp_path.glob(".p.csv.*"))  # no temporary file left behind
    assert len(json.loads(capsys.readouterr().out)) == 4


def test_streamed_csv_is_whole_or_absent(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    with StreamedCsv(out, ["a", "b"]) as table:
        table.write([[1, 2]])
        assert not out.exists()
        table.write([[3, 4]])
        table.commit()
    assert _csv(out) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    with pytest.raises(RuntimeError), StreamedCsv(out, ["a", "b"]) as table:
        table.write([[5, 6]])
        raise RuntimeError("killed")
    assert len(_csv(out)) == 2 and list(tmp_path.iterdir()) == [out]


# ------------------------------------------------------------------------------------------ XRD series


def test_xrd_series_summary_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.resources import files

    from labeltune.core.xrd.shipped import shipped_model_dir

    model = shipped_model_dir()
    if model is None:
        pytest.skip("the shipped XRD model is not in models/")
    patterns = Path(str(files("labeltune") / "resources" / "demos" / "xrd" / "patterns"))
    series = tmp_path / "series"
    series.mkdir()
    for name in ("TiO2.xy", "MnO.xy", "Mn2O3+LiF.xy"):
        (series / name).write_bytes((patterns / name).read_bytes())
    (series / "empty.xy").write_text("")
    out = tmp_path / "series.csv"
    assert cli.main(["predict", str(model), str(series), "--out", str(out)]) == 0
    rows = {Path(r["file"]).name: r for r in _csv(out)}
    assert set(rows) == {"TiO2.xy", "MnO.xy", "Mn2O3+LiF.xy", "empty.xy"}
    assert rows["empty.xy"]["error"] and not rows["empty.xy"]["phases"]
    two = rows["Mn2O3+LiF.xy"]
    fractions = [float(v) for v in two["fractions_wt_pct"].split(";")]
    assert len(fractions) == len(two["phases"].split(";")) >= 2
    assert sum(fractions) == pytest.approx(100.0, abs=0.1)
    assert 0 < float(two["rwp_pct"]) < 50
    assert "TiO2" in rows["TiO2.xy"]["phases"]
    assert all(float(v) > 0 for v in two["fraction_esd_wt_pct"].split(";"))
    assert not two["amorphous_wt_pct"]  # no internal standard given
    # LiF as an internal standard at the weight fraction the fit finds for it: nothing amorphous
    lif = fractions[two["phases"].split(";").index("LiF_225")]
    spiked = tmp_path / "spiked.csv"
    args = [str(model), str(series / "Mn2O3+LiF.xy"), "--internal-standard", f"LiF={lif:.2f}", "--out"]
    assert cli.main(["predict", *args, str(spiked)]) == 0
    (row,) = _csv(spiked)
    assert abs(float(row["amorphous_wt_pct"])) < 5.0  # a few points (measured: -3.7 +- 1.1, MnO2 1.5 % found)
    assert len(row["absolute_wt_pct"].split(";")) == len(row["phases"].split(";"))
    # the shard option applies to patterns too
    part = tmp_path / "part.json"
    assert cli.main(["predict", str(model), str(series), "--shard", "0/2", "--out", str(part)]) == 0
    assert len(json.loads(part.read_text())) == 2 - (
        "empty.xy" in {p.name for p in Shard(0, 2).take(sorted(series.iterdir()))}
    )
