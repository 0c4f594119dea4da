"""``labeltune explain``: an overlay PNG for image runs, a 2θ plot for XRD runs, one line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltune.cli import main
from labeltune.core.datasets import scan
from labeltune.core.train_config import TrainConfig
from labeltune.core.training import train


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny image run and one of its images (40x30 px, not square: the overlay keeps the file's size)."""
    root = tmp_path_factory.mktemp("explain-cli")
    rng = np.random.default_rng(0)
    for k, colour in enumerate(((220, 40, 40), (40, 60, 220))):
        (root / "data" / f"class{k}").mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (30, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "data" / f"class{k}" / f"{i}.png")
    config = TrainConfig(
        backbone="resnet18", weights="none", epochs=2, batch_size=8, input_size=32, patience=0
    )
    train(scan(root / "data"), config, root / "run")
    return root / "run", root / "data" / "class0" / "0.png"


def test_explain_writes_an_overlay_of_the_image(image_run, tmp_path, capsys) -> None:
    run, image = image_run
    out = tmp_path / "why.png"
    assert main(["explain", str(run), str(image), "--class", "class1", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["class"] == "class1" and printed["domain"] == "image" and printed["out"] == str(out)
    assert printed["predicted"] in ("class0", "class1") and 0.0 <= printed["probability"] <= 1.0
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.size == (40, 30)
        assert np.asarray(picture).tolist() != np.asarray(Image.open(image).convert("RGB")).tolist()
    # opacity 0 leaves the image as it was
    assert main(["explain", str(run), str(image), "--out", str(out), "--opacity", "0"]) == 0
    original = np.asarray(Image.open(image).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(out)), original)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--class", "Rust"], "unknown class 'Rust'; the run's classes are: class0, class1"),
        (["--opacity", "2"], "--opacity must be between 0 and 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(image_run, tmp_path, capsys, extra, message) -> None:
    run, image = image_run
    out = tmp_path / "why.png"
    assert main(["explain", str(run), str(image), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_explain_plots_an_xrd_pattern_with_its_activation(tmp_path, capsys) -> None:
    from labeltune.core import demos
    from labeltune.core.xrd.train_config import XrdTrainConfig
    from labeltune.core.xrd.training import train_xrd
    from labeltune.core.xrd.xrd_project import XrdProject

    demo = XrdProject.open(demos.write_demo("xrd", tmp_path / "demo"))
    tiny = {"patterns_per_epoch": 64, "batch_size": 32, "validation_patterns": 32, "threads": 2}
    train_xrd(demo.library_dir, XrdTrainConfig(epochs=1, **tiny), tmp_path / "run")  # type: ignore[arg-type]
    pattern = demo.patterns()[0]
    phase = demo.library().names[-1]
    out = tmp_path / "pattern.png"
    args = ["explain", str(tmp_path / "run"), str(pattern), "--out", str(out), "--json"]
    args += ["--wavelength", str(demo.wavelength), "--class", phase]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["domain"] == "xrd" and printed["layer"] == "input" and printed["class"] == phase
    with Image.open(out) as picture:
        assert picture.size == (1000, 380)
        pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    coloured = (pixels.max(axis=1) - pixels.min(axis=1)) > 60  # the activation bands, not black or white
    assert coloured.any()
