"""Plot legends that keep off the data: placed in the emptiest corner, and left where the user drags them.

One class for every plot (training curves, XRD patterns): :func:`add_placed_legend` replaces pyqtgraph's
``PlotItem.addLegend``; the plot calls :meth:`PlacedLegend.place` with the points it draws whenever they
or the view change.  The legend's real size on screen is used (converted to data units), so a tall
legend of many phases is judged as tall as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

Corner = tuple[int, int]  # (right, top), each 0 or 1
MARGIN_PX = 10.0  # the legend's distance from the plot's edges


def corner_rect(
    corner: Corner, view: Sequence[Sequence[float]], size: tuple[float, float]
) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)`` in data units that a legend of ``size`` (data units) covers in ``corner``."""
    (vx0, vx1), (vy0, vy1) = view
    width, height = size
    right, top = corner
    xs = (vx1 - width, vx1) if right else (vx0, vx0 + width)
    ys = (vy1 - height, vy1) if top else (vy0, vy0 + height)
    return xs[0], xs[1], ys[0], ys[1]


def points_under(rect: tuple[float, float, float, float], points: np.ndarray) -> int:
    """How many ``points`` (an ``(n, 2)`` array of x, y) lie inside ``rect``."""
    if points.size == 0:
        return 0
    x0, x1, y0, y1 = rect
    x, y = points[:, 0], points[:, 1]
    return int(np.count_nonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)))


def best_corner(
    corners: Sequence[Corner], view: Sequence[Sequence[float]], size: tuple[float, float], points: np.ndarray
) -> Corner:
    """The first of ``corners`` under which the fewest ``points`` lie."""
    return min(corners, key=lambda c: points_under(corner_rect(c, view, size), points))


class PlacedLegend(pg.LegendItem):
    """A legend that moves to the corner with the fewest data points under it, until the user drags it."""

    def __init__(self, corners: Sequence[Corner], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.corners = tuple(corners)
        self.corner: Corner | None = None
        self.moved_by_user = False

    def mouseDragEvent(self, ev: object) -> None:
        """Dragging puts the legend where the user wants it; it is not moved automatically after that."""
        super().mouseDragEvent(ev)
        if getattr(ev, "button", lambda: None)() == Qt.MouseButton.LeftButton:
            self.moved_by_user = True
            self.corner = None

    def size_in_data(self, view_box: pg.ViewBox) -> tuple[float, float]:
        """The legend's width and height (with its margin) in data units; a guess before it is laid out."""
        (x0, x1), (y0, y1) = view_box.viewRange()
        rect = self.boundingRect()
        width_px, height_px = view_box.width(), view_box.height()
        if rect.width() <= 0 or width_px <= 0 or height_px <= 0:
            return 0.45 * (x1 - x0), 0.2 * (y1 - y0)  # not shown yet: about a one-row legend
        return (
            (rect.width() + MARGIN_PX) / width_px * (x1 - x0),
            (rect.height() + MARGIN_PX) / height_px * (y1 - y0),
        )

    def place(self, points: np.ndarray) -> Corner | None:
        """Move to the corner that hides the fewest of ``points`` (``(n, 2)``, data units, as drawn)."""
        view_box = self.parentItem()
        if self.moved_by_user or not isinstance(view_box, pg.ViewBox):
            return self.corner
        view = view_box.viewRange()
        corner = best_corner(self.corners, view, self.size_in_data(view_box), points)
        if corner != self.corner:
            self.corner = corner
            right, top = corner
            anchor = (right, 1 - top)  # pyqtgraph's y runs downwards here
            offset = (-MARGIN_PX if right else MARGIN_PX, MARGIN_PX if top else -MARGIN_PX)
            self.anchor(itemPos=anchor, parentPos=anchor, offset=offset)
        return corner


def add_placed_legend(item: pg.PlotItem, corners: Sequence[Corner], **kwargs: object) -> PlacedLegend:
    """Give ``item`` a :class:`PlacedLegend` (what ``PlotItem.addLegend`` does for its own kind)."""
    legend = PlacedLegend(corners, **kwargs)
    legend.setParentItem(item.vb)
    item.legend = legend
    legend.setToolTip("Drag to move the legend")
    return legend
