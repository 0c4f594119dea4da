"""The bar above the Label page's gallery: which images show, how many, their order, and auto-advance."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from labeltune.core.settings import Settings
from labeltune.ui.errors import show_error
from labeltune.ui.gallery import FilterCombo
from labeltune.ui.gallery_model import SORT_ORDERS


class GalleryBar(QWidget):
    """*Show:* filter · count · *Sort:* order · *Auto-advance*; the order and auto-advance are settings."""

    order_chosen = Signal(str)  # a key of SORT_ORDERS, chosen by the user (and saved)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        """Show the order and auto-advance of ``settings``; the user's changes are saved there."""
        super().__init__(parent)
        self.settings = settings
        self.filter_combo = FilterCombo()
        # wide enough for "All images" or a class name ("All imag" was cut), not for the longest entry
        self.filter_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.filter_combo.setMinimumContentsLength(14)
        self.filter_combo.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
        self.order_combo = QComboBox()
        self.order_combo.setObjectName("galleryOrderCombo")
        self.order_combo.setToolTip("The order of the thumbnails (numbers in names sort as numbers)")
        for key, text in SORT_ORDERS.items():
            self.order_combo.addItem(text, key)
        order = settings.gallery_order if settings.gallery_order in SORT_ORDERS else "name"
        self.order_combo.setCurrentIndex(list(SORT_ORDERS).index(order))
        self.count_label = QLabel()
        self.count_label.setObjectName("galleryCountLabel")
        self.auto_advance_box = QCheckBox("Auto-advance")
        self.auto_advance_box.setChecked(settings.auto_advance)
        self.auto_advance_box.setToolTip("After a class key, jump to the next unlabeled image")

        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        show_label = QLabel("&Show:")
        show_label.setBuddy(self.filter_combo)
        bar.addWidget(show_label)
        bar.addWidget(self.filter_combo)
        bar.addWidget(self.count_label, 1)
        order_label = QLabel("S&ort:")
        order_label.setBuddy(self.order_combo)
        bar.addWidget(order_label)
        bar.addWidget(self.order_combo)
        bar.addWidget(self.auto_advance_box)

        self.order_combo.activated.connect(self._on_order_combo_activated)
        self.auto_advance_box.toggled.connect(self._on_auto_advance_box_toggled)

    def set_count(self, shown: int, total: int | None) -> None:
        """Say how many images show of how many (``total`` ``None``: no project, say nothing)."""
        self.count_label.setText(f"{shown:,} of {total:,} images" if total is not None else "")

    def _on_order_combo_activated(self, _index: int) -> None:
        order = str(self.order_combo.currentData())
        self.settings.gallery_order = order
        self.order_chosen.emit(order)
        self.settings.save()

    def _on_auto_advance_box_toggled(self, checked: bool) -> None:
        self.settings.auto_advance = checked
        try:
            self.settings.save()
        except OSError as error:
            show_error(self, "Cannot save settings", str(error))
