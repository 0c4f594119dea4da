"""XRD ``train LIBRARY --init RUN``: a library adding phases extends RUN's model (issue 16)."""

from __future__ import annotations

import json

from safetensors.torch import load_file

from conftest import write_library  # tests/conftest.py
from labeltune.cli import main
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd


def tiny(**kwargs: object) -> XrdTrainConfig:
    values: dict[str, object] = dict(
        epochs=1, patterns_per_epoch=128, batch_size=32, validation_patterns=64, threads=1
    )
    return XrdTrainConfig(**{**values, **kwargs})  # type: ignore[arg-type]


def test_a_superset_library_extends_the_model_and_another_is_refused(tmp_path, capsys):
    ab = write_library(tmp_path / "ab")
    abc = write_library(tmp_path / "abc", (("A_1", "AO"), ("C_3", "CO3"), ("B_2", "BO2")))
    ac = write_library(tmp_path / "ac", (("A_1", "AO"), ("C_3", "CO3")))
    train_xrd(ab, tiny(), tmp_path / "r1")
    result = train_xrd(abc, tiny(init=tmp_path / "r1"), tmp_path / "r2")
    assert result.phases == ["A_1", "C_3", "B_2"]
    metrics = json.loads((tmp_path / "r2" / "metrics.json").read_text())
    assert metrics["added_phases"]["old_phases"] == ["A_1", "B_2"]
    assert metrics["added_phases"]["new_phases"] == ["C_3"]
    old, new = (
        load_file(tmp_path / "r1" / "model.safetensors"),
        load_file(tmp_path / "r2" / "model.safetensors"),
    )
    presence = next(k for k in new if k.endswith("presence.weight"))
    assert old[presence].shape[0] == 2 and new[presence].shape[0] == 3
    # the old phases' rows started from RUN's (one short epoch at a fine-tuning rate moves them little)
    moved = (new[presence][[0, 2]] - old[presence]).abs().mean() / old[presence].abs().mean()
    assert moved < 0.5
    # a library that drops a phase is refused in one line, exit 2, before any training
    code = main(
        ["train", str(ac), "--domain", "xrd", "--init", str(tmp_path / "r1"), "--out", str(tmp_path / "r3")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "or one that adds phases to it" in err and "Traceback" not in err
    assert not (tmp_path / "r3" / "model.safetensors").exists()
