"""The large image view: the current sample at full resolution, zoomable, decoded off the GUI thread."""

from __future__ import annotations

import contextlib
import logging
import math
from collections import OrderedDict

from PySide6.QtCore import QObject, QRect, QRectF, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QPainter, QPalette, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from labeltune.core.errors import ImageDecodeError
from labeltune.core.imaging import decode_rgb
from labeltune.ui.thumbnails import to_qimage

log = logging.getLogger(__name__)

MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
VIEW_TIP = "Wheel or +/−: zoom · F: fit · drag: pan · 1–9: label · 0: remove label · ←/→: previous/next"
_RECENT_IMAGES = 6  # decoded images kept (prefetched next ones, undo, back and forth) ...
_RECENT_BYTES = 256 * 2**20  # ... within this memory (a 24 MP photo takes 72 MB)


class _Relay(QObject):
    done = Signal(int, str, object, str)  # epoch, path, QImage or None, error


class _DecodeRunner(QRunnable):
    """Decodes one file at full resolution (in a pool thread)."""

    def __init__(self, epoch: int, path: str, relay: _Relay) -> None:
        super().__init__()
        self._epoch, self._path, self._relay = epoch, path, relay

    def run(self) -> None:
        """Decode and hand the result to the GUI thread."""
        image: QImage | None = None
        error = ""
        try:
            image = to_qimage(decode_rgb(self._path))
        except ImageDecodeError as exc:
            error = str(exc)
        except Exception as exc:  # every failure must reach the user
            log.exception("cannot show %s", self._path)
            error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(RuntimeError):  # the view was deleted meanwhile
            self._relay.done.emit(self._epoch, self._path, image, error)


class ZoomView(QGraphicsView):
    """A graphics view with wheel zoom (about the cursor), fit-to-window and 100 %."""

    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty view."""
        super().__init__(parent)
        self.setObjectName("imageView")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        # a heatmap over the image (ui/heatmap_panel.py), same size, drawn on top at its own opacity
        self._overlay = QGraphicsPixmapItem(self._item)
        self._overlay.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._overlay.setOpacity(0.5)
        self._fit = True
        self._message = ""
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip(VIEW_TIP)

    def set_image(self, image: QImage | None, message: str = "") -> None:
        """Show ``image`` fitted to the window (or nothing, with ``message``)."""
        self._message = message
        self.setToolTip(VIEW_TIP)
        pixmap = QPixmap.fromImage(image) if image is not None else QPixmap()
        self._item.setPixmap(pixmap)
        self._overlay.setPixmap(QPixmap())  # a heatmap belongs to the image it was computed for
        self._scene.setSceneRect(QRectF(pixmap.rect()))
        self.fit()
        self.viewport().update()

    def has_image(self) -> bool:
        """Whether an image is shown."""
        return not self._item.pixmap().isNull()

    def set_overlay(self, image: QImage | None) -> None:
        """Draw ``image`` (RGBA) over the shown image, stretched to its size; ``None`` removes it."""
        pixmap = QPixmap.fromImage(image) if image is not None else QPixmap()
        base = self._item.pixmap()
        if not pixmap.isNull() and not base.isNull() and pixmap.size() != base.size():
            pixmap = pixmap.scaled(base.size(), mode=Qt.TransformationMode.SmoothTransformation)
        self._overlay.setPixmap(pixmap)
        self.viewport().update()

    def has_overlay(self) -> bool:
        """Whether a heatmap is drawn over the image."""
        return not self._overlay.pixmap().isNull()

    def overlay_opacity(self) -> float:
        """The heatmap's opacity, 0..1."""
        return float(self._overlay.opacity())

    def set_overlay_opacity(self, opacity: float) -> None:
        """Change the heatmap's opacity (0: hidden, 1: opaque where hot)."""
        self._overlay.setOpacity(max(0.0, min(1.0, opacity)))
        self.viewport().update()

    def image_size(self) -> tuple[int, int]:
        """Width and height of the shown image (0, 0 if none)."""
        pixmap = self._item.pixmap()
        return pixmap.width(), pixmap.height()

    def message(self) -> str:
        """The text shown instead of an image ("" when an image is shown)."""
        return self._message

    def zoom(self) -> float:
        """Current scale (1.0 = 100 %: one image pixel per screen pixel)."""
        return float(self.transform().m11())

    def is_fit(self) -> bool:
        """Whether the image follows the window size."""
        return self._fit

    def fit(self) -> None:
        """Scale the image to fit the window."""
        self._fit = True
        if self.has_image():
            self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)
        else:
            self.resetTransform()
        self.zoom_changed.emit(self.zoom())

    def actual_size(self) -> None:
        """Show the image at 100 %."""
        self._fit = False
        self.resetTransform()
        self.zoom_changed.emit(self.zoom())

    def zoom_by(self, factor: float) -> None:
        """Multiply the zoom by ``factor`` (clamped to 2 %..3200 %)."""
        current = self.zoom()
        target = min(MAX_ZOOM, max(MIN_ZOOM, current * factor))
        if not self.has_image() or math.isclose(target, current):
            return
        self._fit = False
        self.scale(target / current, target / current)
        self.zoom_changed.emit(self.zoom())

    def wheelEvent(self, event: QWheelEvent) -> None:
        """The wheel zooms about the cursor."""
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25**steps)
            event.accept()
        else:
            super().wheelEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """In fit mode the image follows the window."""
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        """Draw the message (loading, unreadable, no image) in the middle of the view."""
        if not self._message:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        area = self.viewport().rect().adjusted(20, 20, -20, -20)
        painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        painter.restore()


class ImageView(QWidget):
    """File name, label and its source above a zoomable view of the current image."""

    image_loaded = Signal(str)  # path
    image_failed = Signal(str, str)  # path, reason

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty view."""
        super().__init__(parent)
        self.title_label = QLabel("No image")
        self.title_label.setObjectName("imageTitleLabel")
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.info_label = QLabel("")
        self.info_label.setObjectName("imageInfoLabel")
        self.info_label.setTextFormat(Qt.TextFormat.RichText)
        # one line that never widens the panel; the whole text is in its tooltip
        self.info_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.view = ZoomView()
        self.fit_button = QToolButton()
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Fit the image to the window (F)")
        self.actual_button = QToolButton()
        self.actual_button.setText("100 %")
        self.actual_button.setToolTip("Show the image at its real size (one image pixel per screen pixel)")
        self.zoom_label = QLabel("")
        self.zoom_label.setToolTip("Zoom (wheel over the image to change it)")
        for button in (self.fit_button, self.actual_button):
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.title_label, 1)
        controls.addWidget(self.zoom_label)
        controls.addWidget(self.fit_button)
        controls.addWidget(self.actual_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.info_label)
        self._extra_controls = QHBoxLayout()  # e.g. the heatmap's controls (add_controls)
        self._extra_controls.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._extra_controls)
        layout.addWidget(self.view, 1)

        self._epoch = 0  # bumped when another project opens: older results are dropped
        self._path: str | None = None
        self._state = "empty"  # "empty", "loading", "ready" or "failed"
        self._decoding: set[str] = set()  # queued or running, shown or prefetched
        self._recent: OrderedDict[str, QImage] = OrderedDict()  # decoded images, newest last
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_relay_done, Qt.ConnectionType.QueuedConnection)
        self.fit_button.clicked.connect(self.view.fit)
        self.actual_button.clicked.connect(self.view.actual_size)
        self.view.zoom_changed.connect(self._on_view_zoom_changed)
        self.view.set_image(None, "No image selected")

    def add_controls(self, widget: QWidget) -> None:
        """Show ``widget`` in a row between the description and the image."""
        self._extra_controls.addWidget(widget)

    def path(self) -> str | None:
        """The file shown (or being loaded)."""
        return self._path

    def state(self) -> str:
        """``"empty"``, ``"loading"``, ``"ready"`` or ``"failed"``."""
        return self._state

    def show_image(self, path: str | None, title: str = "", info: str = "") -> None:
        """Show ``path`` (decoded in the background; ``None`` clears), titled and described."""
        self.title_label.setText(title or "No image")
        self.title_label.setToolTip(path or "")
        self.set_info(info)
        if path == self._path and self._state in ("loading", "ready", "empty"):
            return
        self._path = path
        if path is None:
            self._state = "empty"
            self.view.set_image(None, "No image selected")
            return
        cached = self._recent.get(path)
        if cached is not None:
            self._recent.move_to_end(path)
            self._show_decoded(path, cached)
            return
        self._state = "loading"
        self.view.set_image(None, "Loading…")
        if path not in self._decoding:  # else a prefetch is on it: shown when it arrives
            self._pool.clear()  # waiting decodes of images the user already left
            self._decoding.clear()
            self._start(path)

    def decoded_paths(self) -> list[str]:
        """Files whose decoded image is kept (shown recently or prefetched), oldest first."""
        return list(self._recent)

    def prefetch(self, path: str) -> None:
        """Decode ``path`` in the background so that showing it next is instant."""
        if path != self._path and path not in self._recent and path not in self._decoding:
            self._start(path)

    def _start(self, path: str) -> None:
        self._decoding.add(path)
        self._pool.start(_DecodeRunner(self._epoch, path, self._relay))

    def set_info(self, info: str) -> None:
        """Change the description line (label and its source; rich text)."""
        self.info_label.setText(info)
        self.info_label.setToolTip(info)

    def forget(self) -> None:
        """Drop decoded images (another project was opened)."""
        self._epoch += 1
        self._pool.clear()
        self._decoding.clear()
        self._recent.clear()
        self._path, self._state = None, "failed"  # whatever was shown, show nothing now
        self.show_image(None)

    def shutdown(self) -> None:
        """Wait for a decode in progress (before the window closes)."""
        self._epoch += 1
        self._pool.clear()
        self._pool.waitForDone(10000)

    def _show_decoded(self, path: str, image: QImage) -> None:
        self._state = "ready"
        self.view.set_image(image)
        self.image_loaded.emit(path)

    @Slot(int, str, object, str)
    def _on_relay_done(self, epoch: int, path: str, image: object, error: str) -> None:
        if epoch != self._epoch:
            return
        self._decoding.discard(path)
        if isinstance(image, QImage):
            self._recent[path] = image
            self._recent.move_to_end(path)
            total = sum(i.sizeInBytes() for i in self._recent.values())
            while len(self._recent) > 2 and (len(self._recent) > _RECENT_IMAGES or total > _RECENT_BYTES):
                total -= self._recent.popitem(last=False)[1].sizeInBytes()
        if path != self._path or self._state != "loading":
            return  # a prefetch, or an image the user already left
        if isinstance(image, QImage):
            self._show_decoded(path, image)
        else:
            self._state = "failed"
            self.view.set_image(None, f"Cannot show this image:\n{error}")
            self.view.setToolTip(f"{path}\n{error}")
            self.image_failed.emit(path, error)

    def _on_view_zoom_changed(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f} %" if self.view.has_image() else "")
