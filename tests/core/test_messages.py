"""Errors speak GUI in the GUI (``str``) and CLI in the CLI (``cli_message``) (issue 9, item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_class_folder
from labeltune import cli
from labeltune.core.datasets import Dataset, Sample, scan
from labeltune.core.device import select_device
from labeltune.core.errors import HAS_OBJECTS, UnusableInputError, describe_weights_error
from labeltune.core.training import TrainConfig, prepare_data


def test_one_class_project_is_not_told_about_sub_folders(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "data", classes=1, per_class=2)
    project = Dataset(tmp_path, "project", [Sample(p, "class0") for p in sorted(root.rglob("*.png"))])
    with pytest.raises(UnusableInputError) as raised:
        prepare_data(project, TrainConfig(weights="none"), cache_root=tmp_path / "cache")
    assert "sub-folder" not in str(raised.value) and "--" not in str(raised.value)
    assert "add a second class and label some of its images" in str(raised.value)
    with pytest.raises(UnusableInputError) as raised:
        prepare_data(scan(root), TrainConfig(weights="none"), cache_root=tmp_path / "cache")
    assert "put each class's images in its own sub-folder" in raised.value.cli_message


def test_cli_keeps_its_option_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_class_folder(tmp_path / "data", classes=1, per_class=2)
    assert cli.main(["train", str(root), "--out", str(tmp_path / "run"), "--weights", "none"]) == 2
    assert "put each class's images in its own sub-folder" in capsys.readouterr().err


def test_missing_gpu_message_names_no_option_but_the_cli_one_does() -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(UnusableInputError) as raised:
        select_device("cuda")
    assert "--" not in str(raised.value) and "no CUDA GPU" in str(raised.value)
    assert raised.value.cli_message.startswith("--device cuda:")


def test_weights_errors_are_plain_reasons() -> None:
    advice = (
        "Re-running `torch.load` with `weights_only` set to `False` will likely succeed. Unsupported global"
    )
    assert describe_weights_error(Exception(advice)) == HAS_OBJECTS
    mismatch = RuntimeError(
        'Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: "a", "b". \n\t'
        "size mismatch for w: copying a param with shape torch.Size([5]) from checkpoint"
    )
    assert describe_weights_error(mismatch) == (
        "the file is for another network: 1 tensors of other shapes, 2 tensors missing"
    )
    zip_error = RuntimeError(
        "PytorchStreamReader failed reading zip archive: failed finding central directory"
    )
    assert describe_weights_error(zip_error).startswith("the file is incomplete or damaged")
