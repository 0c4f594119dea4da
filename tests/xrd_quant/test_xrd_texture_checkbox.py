"""The app's "Preferred orientation (texture) in the final fit" checkbox (``predict --texture``; ADR 0065)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox

from conftest import open_xrd_page  # tests/conftest.py
from labeltune.core import demos
from labeltune.core.xrd.shipped import shipped_model_dir
from labeltune.ui import xrd_identify as xrd_identify_module
from labeltune.ui.xrd_page import XrdPage
from labeltune.ui.xrd_sample import SampleFields
from labeltune.workers.xrd import XrdPredictWorker

needs_model = pytest.mark.skipif(
    shipped_model_dir() is None, reason="the shipped XRD model is not in models/"
)


def test_the_checkbox_is_off_by_default_and_a_new_project_resets_it(qtbot) -> None:
    fields = SampleFields()
    qtbot.addWidget(fields)
    check = fields.findChild(QCheckBox, "preferredOrientation")
    assert check is not None and "texture" in check.text() and not check.isChecked()  # as predict
    assert fields.texture() is False
    check.setChecked(True)
    assert fields.texture() is True
    fields.clear()
    assert fields.texture() is False


@pytest.fixture
def page(qtbot, tmp_path: Path) -> Iterator[XrdPage]:
    folder = demos.write_demo("xrd", tmp_path / "demo")  # points at the shipped model
    widget: XrdPage = open_xrd_page(qtbot, folder)  # type: ignore[assignment]
    yield widget
    widget.shutdown()


@needs_model
def test_the_checkbox_reaches_the_worker(page: XrdPage, qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[XrdPredictWorker] = []

    class Recording(XrdPredictWorker):  # the network alone: this test is about what reaches the worker
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["fit"] = False
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(xrd_identify_module, "XrdPredictWorker", Recording)
    check = page.prediction_panel.sample_fields.texture_check
    for state in (False, True):
        check.setChecked(state)
        with qtbot.waitSignal(page.predict_controller.finished, timeout=120_000):
            page.identify()
        assert started[-1].texture is state
