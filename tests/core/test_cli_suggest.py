"""``labeltune suggest`` end to end: a tiny image run and a tiny XRD run, in-process through ``cli.main``."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltune import cli
from labeltune.core.suggest import margin_uncertainty

CLASSES = {"alpha": (220, 40, 40), "beta": (40, 200, 40), "gamma": (40, 40, 220)}
FAST = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--seed", "0"]
CIFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs"
NAMES = ("1000017", "1000043", "9012601")  # corundum, fluorite, quartz


def _main(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _save(path: Path, colour: np.ndarray, rng: np.random.Generator) -> None:
    pixels = colour[None, None, :] + rng.normal(0, 15, (36, 36, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """3 colour classes x 8 labeled images, 6 unlabeled top-level images (blends), one trained run."""
    base = tmp_path_factory.mktemp("suggest")
    data = base / "images"
    rng = np.random.default_rng(0)
    for name, colour in CLASSES.items():
        (data / name).mkdir(parents=True)
        for i in range(8):
            _save(data / name / f"{name}_{i}.png", np.asarray(colour, float), rng)
    unlabeled = []
    alpha, beta = (np.asarray(CLASSES[c], float) for c in ("alpha", "beta"))
    for i, w in enumerate((0.0, 0.2, 0.4, 0.5, 0.6, 1.0)):
        unlabeled.append(data / f"blend_{i}.png")
        _save(unlabeled[-1], (1 - w) * alpha + w * beta, rng)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELTUNE_CACHE_DIR", str(base / "cache"))
        mp.setenv("LABELTUNE_DATA_DIR", str(base / "store"))
        mp.setenv("LABELTUNE_WEIGHTS_BASE_URL", "http://127.0.0.1:9/")
        code, _, err = _main("train", data, *FAST, "--epochs", "3", "--out", base / "run", "--json")
        assert code == 0, err
    return base / "run", data, [p.resolve() for p in unlabeled]


def test_suggest_json_lists_the_unlabeled_images_by_margin(image_run: tuple[Path, Path, list[Path]]) -> None:
    run, data, unlabeled = image_run
    code, out, err = _main("suggest", run, data, "--n", "4", "--json")
    assert code == 0, err
    queue = json.loads(out)
    assert len(queue) == 4
    assert all(set(row) == {"path", "predicted", "confidence", "score"} for row in queue)
    assert {Path(row["path"]) for row in queue} <= set(unlabeled)
    assert all(row["predicted"] in CLASSES and 0 < row["confidence"] <= 1 for row in queue)
    # the score is the margin uncertainty of the run's own (calibrated) prediction of the same file
    code, out, _ = _main("predict", run, *[row["path"] for row in queue], "--top-k", "3", "--json")
    predicted = {row["path"]: row for row in json.loads(out)}
    for row in queue:
        top = [t["probability"] for t in predicted[row["path"]]["top_k"]]
        assert row["score"] == pytest.approx(float(margin_uncertainty(np.array([top]))[0]), abs=1e-4)
        assert row["predicted"] == predicted[row["path"]]["predicted"]
    assert queue[0]["score"] == max(row["score"] for row in queue)


def test_suggest_on_a_project_takes_its_unlabeled_samples(
    image_run: tuple[Path, Path, list[Path]], tmp_path: Path
) -> None:
    run, data, unlabeled = image_run
    project = tmp_path / "proj"
    code, _, err = _main("project", "new", project, "--from", data, "--json")
    assert code == 0, err
    code, out, err = _main("suggest", run, project, "--n", "50", "--json")
    assert code == 0, err
    assert sorted(Path(row["path"]) for row in json.loads(out)) == sorted(unlabeled)
    code, out, _ = _main("suggest", run, project, "--n", "2")
    assert code == 0 and len(out.strip().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "match"), [(["--n", "0"], "--n must be at least 1"), (["--wavelength", "9"], "--wavelength")]
)
def test_suggest_usage_errors(image_run: tuple[Path, Path, list[Path]], args: list[str], match: str) -> None:
    run, data, _ = image_run
    code, out, err = _main("suggest", run, data, *args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and match in err


def test_suggest_on_missing_data_is_one_line(
    image_run: tuple[Path, Path, list[Path]], tmp_path: Path
) -> None:
    run, _, _ = image_run
    code, _, err = _main("suggest", run, tmp_path / "nowhere", "--json")
    assert code == 2 and err.startswith("labeltune: error: ") and len(err.strip().splitlines()) == 1


# -- XRD --------------------------------------------------------------------------------------------------
@pytest.mark.skipif(
    not all((CIFS / f"{n}.cif").is_file() for n in NAMES), reason="../shared/data/xrd is not present"
)
def test_suggest_on_an_xrd_folder(tmp_path: Path) -> None:
    from labeltune.core.xrd.library import build_library
    from labeltune.core.xrd.simulate import simulate
    from labeltune.core.xrd.train_config import XrdTrainConfig
    from labeltune.core.xrd.training import train_xrd

    library = build_library(
        [CIFS / f"{n}.cif" for n in NAMES], tmp_path / "lib", two_theta_range=(20.0, 60.0)
    )
    assert library.path is not None
    config = XrdTrainConfig(epochs=1, patterns_per_epoch=128, batch_size=64, seed=0, validation_patterns=64)
    train_xrd(library.path, config, tmp_path / "run")
    folder = tmp_path / "patterns"
    folder.mkdir()
    batch = simulate(library, 6, seed=3)
    for i, values in enumerate(batch.x):
        lines = [f"{t:.3f}\t{v * 1000:.2f}" for t, v in zip(batch.two_theta, values, strict=True)]
        (folder / f"p{i}.xy").write_text("# 2theta intensity\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (folder / "labels.csv").write_text(f"path,phases\np0.xy,{NAMES[0]}\np1.xy,{NAMES[1]}\n", encoding="utf-8")
    text = (folder / "p2.xy").read_text(encoding="utf-8").splitlines()
    again = [text[0]] + [f"{line.split()[0]}\t{float(line.split()[1]) * 1.01 + 0.5:.2f}" for line in text[1:]]
    (folder / "p2-again.xy").write_text("\n".join(again) + "\n", encoding="utf-8")  # a repeated measurement
    code, out, err = _main(
        "suggest", tmp_path / "run", folder, "--n", "10", "--wavelength", "1.5406", "--json"
    )
    assert code == 0, err
    queue = json.loads(out)
    names = [Path(row["path"]).name for row in queue]
    assert sorted(names) == ["p2-again.xy"] + [f"p{i}.xy" for i in range(2, 6)]
    assert names[-1] in ("p2.xy", "p2-again.xy")  # the copy waits until every distinct pattern is listed
    for row in queue:
        phases = [p for p in row["predicted"].split(";") if p]
        assert set(phases) <= set(library.names)
        assert 0.5 <= row["confidence"] <= 1 and 0 <= row["score"] <= 1
        assert row["score"] == pytest.approx(1 - 2 * (row["confidence"] - 0.5), abs=1e-4)
    assert queue[0]["score"] == max(row["score"] for row in queue)


def test_suggest_on_the_xrd_demo_project_skips_its_labeled_patterns(tmp_path: Path) -> None:
    from labeltune.core.xrd.xrd_project import XrdProject

    code, _, err = _main("demo", "xrd", "--out", tmp_path / "demo", "--json")
    if code != 0:
        pytest.skip(f"the XRD demo is not available here: {err.strip()}")
    project = XrdProject.open(tmp_path / "demo")
    patterns, model = project.patterns(), project.model_dir
    assert model is not None
    assert project.labeled_count() == len(patterns)  # the demo comes labeled: nothing to suggest
    code, out, err = _main("suggest", model, tmp_path / "demo", "--json")
    assert (code, json.loads(out)) == (0, [])
    for path in patterns[2:]:
        project.set_label(path, [])
    project.close()
    code, out, err = _main("suggest", model, tmp_path / "demo", "--n", "50", "--json")
    assert code == 0, err
    listed = sorted(Path(row["path"]).resolve() for row in json.loads(out))
    assert listed == sorted(p.resolve() for p in patterns[2:])
