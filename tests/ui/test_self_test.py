"""``labeltune --self-test``: the real checks pass here, a broken installation exits 1 naming the check."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from labeltune import cli, selftest

CHECKS = ["device", "backbone", "training", "project", "xrd", "gui"]
#: What the summary names as the device: a GPU where there is one (training uses it), else the CPU.
DEVICE = r"(CPU \(\d+ threads\)|CUDA GPU .+ \(\d+ GiB\)|Apple GPU \(Metal\))"


def test_self_test_passes_and_ends_with_one_summary_line(
    qapp: object, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = {name: tmp_path / name.lower() for name in selftest.USER_DIR_ENVS}
    for name, folder in user.items():
        monkeypatch.setenv(name, str(folder))
    assert cli.main(["--self-test"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    checks = [line for line in lines if line.startswith(("ok ", "FAIL"))]
    assert [line.split()[1] for line in checks] == CHECKS
    assert all(line.startswith("ok ") for line in checks), checks
    assert re.fullmatch(rf"labeltune \S+ self-test passed: 6 of 6 checks on {DEVICE} in [\d.]+ s", lines[-1])
    assert "efficientnet-lite0-57934424.pth" in checks[1]
    assert "Mn2O3" in checks[4] and "LiF" in checks[4]
    # the user's folders were neither written nor left redirected
    assert not any(folder.exists() for folder in user.values())
    assert {name: os.environ[name] for name in user} == {name: str(f) for name, f in user.items()}


def test_a_missing_xrd_model_fails_naming_the_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import labeltune.core.xrd.shipped as shipped

    monkeypatch.setattr(shipped, "shipped_model_dir", lambda name=shipped.SHIPPED_MODEL: None)
    monkeypatch.setattr(selftest, "check_training", lambda work: "skipped here")  # covered above
    monkeypatch.setattr(selftest, "check_gui", lambda: "skipped here")
    assert cli.main(["--self-test"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(
        line.startswith("FAIL xrd") and "shipped XRD model is not in this installation" in line
        for line in lines
    )
    assert re.match(rf"labeltune \S+ self-test FAILED \(xrd\): 5 of 6 checks on {DEVICE}", lines[-1])


def test_the_gui_check_leaves_the_users_window_geometry_alone(qapp: object) -> None:
    from PySide6.QtCore import QByteArray, QSettings

    before = QSettings("LabelTune", "LabelTune").value("window/geometry")
    mine = QByteArray(b"the user's own window geometry")
    QSettings("LabelTune", "LabelTune").setValue("window/geometry", mine)
    try:
        assert selftest.check_gui().startswith("main window 'LabelTune' opened")
        assert QSettings("LabelTune", "LabelTune").value("window/geometry") == mine
    finally:
        if before is None:
            QSettings("LabelTune", "LabelTune").remove("window/geometry")
        else:
            QSettings("LabelTune", "LabelTune").setValue("window/geometry", before)
