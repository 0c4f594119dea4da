"""The bad-XRD corpus dropped on the app's XRD page: one box lists each refused file with its reason, the
usable files join the project, and identifying one shows what was odd about it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from corpus_xrd import write_pattern_corpus
from PySide6.QtWidgets import QMessageBox

from labeltune.core import demos
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.ui import xrd_identify as xrd_identify_module
from labeltune.ui.xrd_page import XrdPage
from labeltune.workers.xrd import XrdPredictWorker

TIMEOUT = 120_000


@pytest.mark.skipif(shipped_model_dir() is None, reason="the shipped XRD model is not in this checkout")
def test_the_page_imports_the_usable_files_names_each_refused_one_and_shows_the_warning(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class QuickWorker(XrdPredictWorker):  # the network's answer is enough here; the fit takes longer
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["fit"] = False
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(xrd_identify_module, "XrdPredictWorker", QuickWorker)
    project = demos.write_demo("xrd", tmp_path / "demo")  # its model: the shipped one
    kinds = write_pattern_corpus(tmp_path / "corpus")
    page = XrdPage()
    qtbot.addWidget(page)
    page.show()
    page.open(project)
    with qtbot.waitSignal(page.import_controller.finished, timeout=TIMEOUT):
        page.import_patterns([tmp_path / "corpus"])
    (box,) = [b for b in page.findChildren(QMessageBox) if b.objectName() == "errorBox"]
    refused = [k for k in kinds if k.expected == "refused"]
    assert f"{len(refused)} file(s) skipped" in box.text()
    lines = box.detailedText().splitlines()
    assert len(lines) == len(refused)
    for kind in refused:
        (line,) = [line for line in lines if line.startswith(f"{kind.path.name}: ")]
        assert kind.reason.lower() in line.lower(), (kind.name, line)
    names = {p.name for p in page.project.patterns()}  # type: ignore[union-attr]
    assert {k.path.name for k in kinds if k.expected == "used"} <= names
    assert not {k.path.name for k in refused} & names
    page.patterns_panel.select(project / "patterns" / "descending.xy")
    with qtbot.waitSignal(page.predict_controller.finished, timeout=TIMEOUT):
        page.identify()
    prediction = page.prediction()
    # the network's answer (no fit): TiO2, read right; the shipped model may add the other polymorph
    assert prediction is not None and {c.formula for c in prediction.phases} == {"TiO2"}, prediction.phases
    assert "descend" in page.prediction_panel.warnings_label.text()
    page.shutdown()
