"""The app's internal-standard field and the esd / amorphous display on the XRD page (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox, QWidget

from conftest import open_xrd_page  # tests/conftest.py
from labeltune.core import demos
from labeltune.core.xrd.results import PhaseCall, XrdPrediction
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.ui import xrd_identify as xrd_identify_module
from labeltune.ui.xrd_page import XrdPage
from labeltune.ui.xrd_results import PredictionPanel, warnings_html
from labeltune.workers.xrd import XrdPredictWorker

needs_model = pytest.mark.skipif(
    shipped_model_dir() is None, reason="the shipped XRD model is not in models/"
)


def error_boxes(parent: QWidget) -> list[QMessageBox]:
    return [box for box in parent.findChildren(QMessageBox) if box.objectName() == "errorBox"]


def test_the_panel_shows_fraction_esds_the_amorphous_content_and_detection_limits(qtbot) -> None:
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    prediction = XrdPrediction(
        "s.xy",
        [PhaseCall("LiF_225", "LiF", 0.9, fraction=0.25, fraction_esd=0.012, absolute_fraction=0.2)],
        candidates=[PhaseCall("Mn2O3_206", "Mn2O3", 0.3), PhaseCall("MnO_225", "MnO", 0.1)],
        amorphous=0.2,
        amorphous_esd=0.015,
        internal_standard=("LiF_225", 0.2),
        detection_limits={"Mn2O3_206": 0.0123, "TiO2_141": 1.0},
    )
    panel.show_prediction(prediction)
    assert panel.table.item(0, 3).text() == "25.0 ± 1.2 %"
    assert panel.table.item(1, 3).text() == "< 1.2 %"  # tried by the fit, not found: its detection limit
    tip = panel.table.item(1, 3).toolTip()
    assert "would have been seen from about 1.2 wt%" in tip and "half the time" in tip  # what a limit means
    assert panel.table.item(2, 3).text() == "—"  # considered by the network, never tried
    shown = warnings_html(prediction)
    assert "Amorphous / unidentified: 20.0 ± 1.5 wt% (internal standard LiF_225 at 20 %)" in shown
    assert "Tried and not found (detection limit, wt%): Mn2O3_206 1.2, TiO2_141 no peak of its own." in shown
    assert panel.warnings_label.text() == shown


@pytest.fixture
def page(qtbot, tmp_path: Path) -> Iterator[XrdPage]:
    folder = demos.write_demo("xrd", tmp_path / "demo")  # points at the shipped model
    widget: XrdPage = open_xrd_page(qtbot, folder)  # type: ignore[assignment]
    yield widget
    widget.shutdown()


@needs_model
def test_the_standard_field_reaches_the_worker_and_bad_entries_are_shown(
    page: XrdPage, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[XrdPredictWorker] = []

    class Recording(XrdPredictWorker):  # the network alone: this test is about what reaches the worker
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["fit"] = False
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(xrd_identify_module, "XrdPredictWorker", Recording)
    field = page.prediction_panel.standard_edit
    field.setText("LiF")  # no weight %: refused at once, nothing runs
    page.identify()
    (box,) = error_boxes(page)
    assert box.windowTitle() == "Internal standard not understood" and "NAME=WT%" in box.text()
    assert started == []
    box.close()
    box.deleteLater()
    field.setText("Al2O3=20")  # not in the library: the worker refuses it, the user sees why
    with qtbot.waitSignal(page.predict_controller.failed, timeout=120_000):
        page.identify()
    assert started[-1].internal_standard == ("Al2O3", pytest.approx(0.2))
    assert any("not a phase of the model's library" in b.text() for b in error_boxes(page))
