"""Results ▸ Check all images: predictions of the project's images are stored and shown while labeling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import train_small_project, write_class_folder  # tests/conftest.py
from labeltune.core.settings import Settings
from labeltune.ui.gallery_model import UNFAMILIAR_ROLE, GalleryFilter
from labeltune.ui.label_page import LabelPage
from labeltune.ui.results_panel import ResultsPanel
from labeltune.ui.session import ProjectSession


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Colour-coded classes, a trained run, and one unlabeled image unlike all of them."""
    data = write_class_folder(tmp_path / "data", classes=3, per_class=16, size=40)
    stripes = np.zeros((40, 40, 3), dtype=np.uint8)
    stripes[::4] = 255  # black and white stripes: nothing like the noisy colour fields
    Image.fromarray(stripes).save(data / "odd.png")
    folder, _run_dir = train_small_project(tmp_path, {}, data=data)
    return folder


def test_check_all_images_marks_the_unfamiliar_ones(qtbot, project: Path) -> None:
    session = ProjectSession(Settings())
    session.open(project)
    results = ResultsPanel(session)
    labels = LabelPage(session)
    for widget in (results, labels):
        qtbot.addWidget(widget)
        widget.resize(1200, 800)
        widget.show()
    view = results.details_view
    assert "calibrated" in view.reliability_label.text() and view.check_button.isEnabled()
    with qtbot.waitSignal(session.predictions_changed, timeout=60_000):
        view.check_button.click()
    assert "Checked 49 images" in view.check_label.text()
    proj = session.require()
    predictions = proj.predictions("run-1")
    assert len(predictions) == 49 and all(p.ood_score is not None for p in predictions)
    odd = next(p for p in predictions if p.path.name == "odd.png")
    assert odd.unfamiliar
    assert "unlike the training images" in view.check_label.text()
    # The label page shows what the model says, marks the odd image, and can show only those.
    model = labels.model
    assert model.predicted_run == "run-1"
    row = next(r for r in range(model.rowCount()) if model.path(r).endswith("odd.png"))
    assert model.index(row).data(UNFAMILIAR_ROLE) is True
    session.set_current(model.sample_id(row))
    info = labels.image_view.info_label.text()
    assert "model:" in info and "unfamiliar</b> to the model" in info
    offered = [labels.filter_combo.itemText(i) for i in range(labels.filter_combo.count())]
    assert any(text.startswith("Unfamiliar to the model") for text in offered)
    labels.filter_combo.choose(GalleryFilter("unfamiliar"))
    assert 1 <= model.rowCount() <= 1 + 48 // 5  # the odd image, and few of the familiar ones
    assert all(model.is_unfamiliar(model.sample_id(r)) for r in range(model.rowCount()))
    labels.shutdown()
    results.shutdown()
    session.close()


def test_a_stopped_check_says_nothing_was_stored(
    qtbot, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeltune.core import inference
    from labeltune.core.progress import StoppedError

    def stopped(*_args: object, **_kwargs: object) -> None:
        raise StoppedError("stopped")

    monkeypatch.setattr(inference, "predict_project", stopped)
    session = ProjectSession(Settings())
    session.open(project)
    results = ResultsPanel(session)
    qtbot.addWidget(results)
    with qtbot.waitSignal(results.check_controller.stopped, timeout=60_000):
        results.details_view.check_button.click()
    assert results.details_view.check_label.text() == "Stopped; nothing was stored."
    assert session.require().predictions("run-1") == []
    results.shutdown()
    session.close()
