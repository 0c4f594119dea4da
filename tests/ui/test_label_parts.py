"""The Label page's parts on their own: the bar above the gallery and which keys label where."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent

from labeltune.core.settings import Settings
from labeltune.ui.gallery_bar import GalleryBar
from labeltune.ui.gallery_model import SORT_ORDERS
from labeltune.ui.label_controller import is_label_key

Mod = Qt.KeyboardModifier


def key(k: Qt.Key, modifiers: Qt.KeyboardModifier = Mod.NoModifier) -> QKeyEvent:
    return QKeyEvent(QEvent.Type.KeyPress, k, modifiers)


def test_the_bar_saves_the_order_chosen_and_says_so(qtbot) -> None:
    settings = Settings()
    bar = GalleryBar(settings)
    qtbot.addWidget(bar)
    assert bar.order_combo.currentData() == "name"  # the default
    order = list(SORT_ORDERS)[-1]
    bar.order_combo.setCurrentIndex(bar.order_combo.count() - 1)
    with qtbot.waitSignal(bar.order_chosen) as blocker:
        bar.order_combo.activated.emit(bar.order_combo.count() - 1)  # as a user's pick does
    assert blocker.args == [order]
    assert settings.gallery_order == order and Settings.load().gallery_order == order
    again = GalleryBar(Settings.load())  # a new page starts with the saved order
    qtbot.addWidget(again)
    assert again.order_combo.currentData() == order


def test_the_bar_saves_auto_advance_and_counts_the_images(qtbot) -> None:
    bar = GalleryBar(Settings())
    qtbot.addWidget(bar)
    bar.auto_advance_box.setChecked(not bar.auto_advance_box.isChecked())
    assert Settings.load().auto_advance is bar.auto_advance_box.isChecked()
    bar.set_count(1234, 5678)
    assert bar.count_label.text() == "1,234 of 5,678 images"
    bar.set_count(0, None)  # no project
    assert bar.count_label.text() == ""


@pytest.mark.parametrize(
    ("event", "anywhere", "in_class_list"),
    [
        (key(Qt.Key.Key_3), True, True),
        (key(Qt.Key.Key_0), True, True),
        (key(Qt.Key.Key_3, Mod.KeypadModifier), True, True),  # the number pad labels too
        (key(Qt.Key.Key_L), True, False),
        (key(Qt.Key.Key_Delete), True, False),  # in the class list: deletes the class
        (key(Qt.Key.Key_Backspace), True, False),
        (key(Qt.Key.Key_Z, Mod.ControlModifier), True, True),  # undo and redo work from the class list
        (key(Qt.Key.Key_Z, Mod.ControlModifier | Mod.ShiftModifier), True, True),
        (key(Qt.Key.Key_Y, Mod.ControlModifier), True, True),
        (key(Qt.Key.Key_A), False, False),
        (key(Qt.Key.Key_3, Mod.ControlModifier), False, False),
        (key(Qt.Key.Key_Y), False, False),
    ],
)
def test_which_keys_label(event: QKeyEvent, anywhere: bool, in_class_list: bool) -> None:
    assert is_label_key(event) is anywhere
    assert is_label_key(event, digits_only=True) is in_class_list


def test_topk_names_fit_their_column_elided_not_cut(qtbot) -> None:
    """On the fish demo the bars read "yphidodon dickii": long names were cut at the left edge."""
    from PySide6.QtGui import QFont, QFontMetrics

    from labeltune.ui.gallery_topk import name_column

    metrics = QFontMetrics(QFont())
    names = ["Plectroglyphidodon dickii", "Dascyllus reticulatus", "Chromis"]
    column, shown = name_column(names, metrics, 300)
    assert column <= 150
    assert all(metrics.horizontalAdvance(text) <= column - 4 for text in shown)
    assert shown[2] == "Chromis" and "…" in shown[0]  # short names whole, long ones elided
    wide, whole = name_column(names, metrics, 2000)
    assert whole == names and wide == metrics.horizontalAdvance(names[0]) + 6
