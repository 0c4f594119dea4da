"""The XRD page imports the new formats and says, by file, why a neutron pattern was not imported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from format_files import raw_v3_bytes, scan, write_riet7
from PySide6.QtWidgets import QMessageBox

from labeltune.core import demos
from labeltune.core.xrd.xrd_project import XrdProject
from labeltune.ui.xrd_page import XrdPage


def test_import_takes_raw_v3_and_refuses_neutron_data_naming_the_file(qtbot, tmp_path: Path) -> None:
    folder = demos.write_demo("xrd", tmp_path / "demo")
    XrdProject.open(folder).set_model(None)
    page = XrdPage()
    qtbot.addWidget(page)
    page.show()
    page.open(folder)
    _x, y = scan(300, 10.0, 0.05)
    raw = tmp_path / "bruker_v3.raw"
    raw.write_bytes(raw_v3_bytes(10.0, 0.05, y))
    neutron = write_riet7(tmp_path / "d2b_scan.dat", 10.0, 0.05, y, esd=np.sqrt(y), title="D2B lambda=1.594")
    with qtbot.waitSignal(page.import_controller.finished, timeout=60_000):
        page.import_patterns([raw, neutron])
    assert (folder / "patterns" / "bruker_v3.raw").is_file()
    assert not (folder / "patterns" / "d2b_scan.dat").exists()
    (box,) = [b for b in page.findChildren(QMessageBox) if b.objectName() == "errorBox"]
    assert "1 pattern(s) imported; 1 file(s) skipped" in box.text()
    assert "d2b_scan.dat: neutron diffraction data" in box.detailedText()
    assert "computed for X-rays" in box.detailedText()
    page.shutdown()
