"""Untrusted files cannot run code: planted pickles in weights, runs and projects are refused (ADR 0043).

Each planted file would create a marker file if unpickled (the first test proves it); each loader must
refuse it with one line naming the file, and the marker must not appear.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from planted import Payload, one_line, plant_pickle, plant_torch, trained_project

from labeltune import cli
from labeltune.core.errors import UnusableInputError


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small project with one finished run (resnet18, random weights, 32 px)."""
    return trained_project(tmp_path_factory.getbasetemp())


@pytest.fixture
def run_copy(trained: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the trained run folder this test may plant files in."""
    return Path(shutil.copytree(trained[1], tmp_path / "run"))


def images(trained: tuple[Path, Path]) -> Path:
    """A folder of images the run can predict."""
    return trained[0].parent / "data" / "class0"


def test_the_payload_would_run_if_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()  # so a missing marker below means the file was refused, not that it was harmless


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch, on the bare pickle
def test_weights_import_refuses_planted_pickles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    for file in (plant_torch(tmp_path / "evil.pth", marker), plant_pickle(tmp_path / "evil-raw.pth", marker)):
        assert cli.main(["weights", "import", "resnet18", str(file)]) == 2
        line = one_line(capsys.readouterr().err)
        assert file.name in line and "Python" in line and "could run code" in line
        assert "weights_only" not in line
    assert not marker.exists()


def test_resume_refuses_a_planted_checkpoint(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = run_copy.parent / "pwned"
    plant_torch(run_copy / "checkpoint.pt", marker)
    assert cli.main(["train", "--resume", str(run_copy), "--epochs", "4"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "checkpoint.pt" in line and str(run_copy) in line
    assert "holds Python objects" in line and "could run code" in line
    assert "official weights file" not in line  # advice for weights files, not for a run's checkpoint
    assert not marker.exists()


@pytest.mark.parametrize("plant", [plant_torch, plant_pickle])
def test_predict_export_explain_refuse_a_pickled_model_file(
    plant: object, trained: tuple[Path, Path], run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = run_copy.parent / "pwned"
    plant(run_copy / "model.safetensors", marker)  # type: ignore[operator]
    image = sorted(images(trained).iterdir())[0]
    out = run_copy.parent / "out"
    for argv in (
        ["predict", str(run_copy), str(image)],
        ["export", str(run_copy), "--format", "onnx", "--out", str(out / "m.onnx")],
        ["explain", str(run_copy), str(image), "--out", str(out / "heat.png")],
    ):
        assert cli.main(argv) == 2, argv
        line = one_line(capsys.readouterr().err)
        assert "model.safetensors" in line and "Python pickle" in line and "could run code" in line, line
    assert not marker.exists()
    assert not out.exists() or not any(out.iterdir())


def test_predict_refuses_a_pickled_familiarity_file(
    trained: tuple[Path, Path], run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = run_copy.parent / "pwned"
    assert (run_copy / "familiarity.safetensors").is_file()
    plant_torch(run_copy / "familiarity.safetensors", marker)
    assert cli.main(["predict", str(run_copy), str(images(trained))]) == 2
    line = one_line(capsys.readouterr().err)
    assert "familiarity.safetensors" in line and "Python pickle" in line
    assert not marker.exists()


def test_a_project_file_that_is_a_pickle_is_refused(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = Path(shutil.copytree(trained[0], tmp_path / "project"))
    marker = tmp_path / "pwned"
    plant_pickle(project / "project.json", marker)
    assert cli.main(["train", str(project), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "project.json" in line
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_xrd_training_refuses_an_object_array(tmp_path: Path) -> None:
    from labeltune.core.xrd.library import load_library
    from labeltune.core.xrd.measured import grid_of
    from labeltune.core.xrd.training import _fixed_set

    marker = tmp_path / "pwned"
    source = tmp_path / "simulated"
    source.mkdir()
    np.save(source / "patterns.npy", np.array([Payload(marker), 1.0], dtype=object), allow_pickle=True)
    library = load_library(_library_folder())
    with pytest.raises(UnusableInputError, match=r"patterns\.npy holds Python objects") as info:
        _fixed_set(source, library, grid_of(library))
    assert str(source) in str(info.value)
    plant_pickle(source / "patterns.npy", marker)  # not even an .npy: a bare pickle
    with pytest.raises(UnusableInputError, match=r"patterns\.npy holds Python objects"):
        _fixed_set(source, library, grid_of(library))
    assert not marker.exists()


def _library_folder() -> Path:
    from labeltune.core.xrd.shipped import shipped_model_dir

    model = shipped_model_dir()
    assert model is not None
    return model / "library"


def test_an_xrd_model_file_that_is_a_pickle_is_refused(tmp_path: Path) -> None:
    from labeltune.core.xrd.run_files import load_xrd_net
    from labeltune.core.xrd.shipped import shipped_model_dir

    shipped = shipped_model_dir()
    assert shipped is not None
    run = Path(shutil.copytree(shipped, tmp_path / "xrd-run"))
    marker = tmp_path / "pwned"
    plant_torch(run / "model.safetensors", marker)
    with pytest.raises(UnusableInputError, match=r"model\.safetensors: the file is a Python pickle") as info:
        load_xrd_net(run)
    assert str(run) in str(info.value)
    assert not marker.exists()
