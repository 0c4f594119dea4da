"""Make the README's screenshots by driving the real main window (offscreen unless a display is set).

Run: ``.venv/bin/python scripts/make_screenshots.py [--out docs/screenshots] [--epochs 30] [--keep]``
(or ``make screenshots``; ``--only xrd`` makes ``xrd.png`` alone, without the image training). It writes
these PNGs:

- ``start-page.png``: the start page with two recent projects;
- ``labeling.png``: a corn-leaf project (a copy of the shipped demo with a quarter of its photos
  unlabeled) on the Label tab, after a few images were labeled with the number keys;
- ``training.png``: the Train tab during a *features* run with the defaults (EfficientNet-Lite0, whose
  ImageNet weights ship with LabelTune: nothing is downloaded), grabbed when the fifth epoch is reported;
- ``results.png``: the Results tab after that run, with scores, per-class table and confusion matrix,
  after *Check all images*;
- ``browser.png``: the prediction browser: a cell of that run's confusion matrix clicked (a mistake if
  it made one), the Label tab showing the validation images behind it with the top-k bars of the first;
- ``unfamiliar.png``: the Label tab showing the images that run finds unfamiliar (the survey holds an
  out-of-focus photo, a photo taken at dusk and a fish photo filed by mistake).
- ``label_errors.png``: the Label tab's *Likely label errors* after Results ▸ *Find likely label errors…*
  with that run (the most likely first, its suggested class in the line over the large view).
- ``map.png``: the Map tab of that survey with the run's features (docs/adr/0035-data-map-tab.md; the
  committed one shows the fish demo's, made the same way with a 15-epoch *features* run);
- ``xrd.png``: the *XRD phases* demo, a three-phase measured pattern identified by the shipped model
  (sticks, fitted profile, activation of the selected phase; skipped when the model is not there).

Everything happens in a temporary folder: ``LABELTUNE_DATA_DIR``, ``LABELTUNE_CACHE_DIR``,
``LABELTUNE_CONFIG_DIR`` and Qt's own settings point there, so the user's settings and recent projects
are left alone. The event loop runs through :class:`QEventLoop` and :class:`QTimer` (no busy loops).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WIDTH, HEIGHT = 1280, 800
#: Larger PNGs are reduced to 256 colours.
MAX_BYTES = 300_000
#: Photos per class moved to the top-level folder (= unlabeled) of the labeling project.
UNLABELED_PER_CLASS = 8
#: How many of them the script labels with the number keys before the labeling screenshot.
KEYS_PRESSED = 5


def isolate(base: Path) -> None:
    """Point every user directory LabelTune and Qt use into ``base`` (before Qt starts)."""
    for name, sub in (
        ("LABELTUNE_DATA_DIR", "data"),
        ("LABELTUNE_CACHE_DIR", "cache"),
        ("LABELTUNE_CONFIG_DIR", "config"),
        ("XDG_CONFIG_HOME", "xdg-config"),  # QSettings (window geometry) on Linux
    ):
        os.environ[name] = str(base / sub)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Run the event loop until ``predicate()`` holds (polled every 50 ms); raise after ``timeout_s``."""
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return
    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    timed_out = False

    def check() -> None:
        nonlocal timed_out
        if predicate():
            loop.quit()
        elif time.monotonic() > deadline:
            timed_out = True
            loop.quit()

    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if timed_out:
        raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")


def settle(ms: int = 300) -> None:
    """Let the event loop run for ``ms`` (layouts, repaints, queued signals)."""
    start = time.monotonic()
    wait_until(lambda: (time.monotonic() - start) * 1000 >= ms, ms / 1000 + 5, "the window to settle")


def save(widget: object, path: Path) -> None:
    """Grab ``widget`` and write it as an optimised PNG."""
    import io

    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice
    from PySide6.QtWidgets import QWidget

    assert isinstance(widget, QWidget)
    pixmap = widget.grab()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    pixmap.save(buffer, "PNG")
    image = Image.open(io.BytesIO(bytes(buffer.data().data()))).convert("RGB")
    image.save(path, optimize=True)
    if path.stat().st_size > MAX_BYTES:
        # Photos make PNGs big: 256 colours keep them small. The palette holds the 16 commonest colours
        # exactly (the window's greys and white: no tint) and 240 by maximum coverage (which keeps small
        # areas of UI colour, class swatches and badges, exact); dithering keeps the photos smooth.
        counts: list[tuple[int, tuple[int, int, int]]] = image.getcolors(1 << 24) or []  # type: ignore[assignment]
        common = [colour for _count, colour in sorted(counts, reverse=True)[:16]]
        rest = image.quantize(colors=256 - len(common), method=Image.Quantize.MAXCOVERAGE)
        entries = [v for colour in common for v in colour]
        entries += (rest.getpalette() or [])[: 3 * (256 - len(common))]
        palette = Image.new("P", (1, 1))
        palette.putpalette(entries + [0] * (768 - len(entries)))
        for dither in (Image.Dither.FLOYDSTEINBERG, Image.Dither.NONE):
            image.quantize(palette=palette, dither=dither).save(path, optimize=True)
            if path.stat().st_size <= MAX_BYTES:
                break
    print(f"wrote {path} ({image.width}×{image.height}, {path.stat().st_size // 1024} KB)")


def make_labeling_project(base: Path) -> tuple[Path, dict[str, str]]:
    """A corn-leaf project from a copy of the demo with some photos unlabeled; returns it and their labels.

    The unlabeled photos get neutral names (``IMG_0xxx.jpg``) so their file names do not give the class
    away; the returned dict maps each such path to its true class.
    """
    from labeltune.core.datasets import scan
    from labeltune.core.demos import demo_counts, write_demo
    from labeltune.core.project import Project

    demo = write_demo("corn", base / "demo-copy")
    folder = base / "Corn field survey"  # the project's own folder first; its photos are kept inside it
    Project.create(folder, name="Corn field survey", classes=sorted(demo_counts("corn"))).close()
    images = folder / "photos"
    shutil.copytree(demo / "images", images)
    chosen = [
        (class_dir, photo)
        for class_dir in sorted(p for p in images.iterdir() if p.is_dir())
        for photo in sorted(class_dir.iterdir())[:UNLABELED_PER_CLASS]
    ]
    random.Random(7).shuffle(chosen)  # the classes take turns, as in a real survey
    truth: dict[str, str] = {}
    for number, (class_dir, photo) in enumerate(chosen, start=1037):
        target = images / f"IMG_{number:04d}{photo.suffix.lower()}"
        photo.rename(target)
        truth[str(target)] = class_dir.name
    # Photos unlike the rest, as surveys have them: out of focus, at dusk, and one that is not a leaf.
    from PIL import Image, ImageEnhance, ImageFilter

    leaf = Image.open(sorted((images / "Common_Rust").iterdir())[-1]).convert("RGB")
    leaf.filter(ImageFilter.GaussianBlur(7)).save(images / "IMG_1101.jpg", quality=90)
    ImageEnhance.Brightness(leaf.rotate(90)).enhance(0.3).save(images / "IMG_1102.jpg", quality=90)
    fish = write_demo("fish", base / "fish-copy")
    Image.open(sorted((fish / "images").rglob("*.png"))[3]).convert("RGB").resize((256, 256)).save(
        images / "IMG_1103.jpg", quality=90
    )
    shutil.rmtree(fish)
    shutil.rmtree(demo)
    dataset = scan(images)
    with Project.open(folder) as project:
        project.add_source(images)
        project.add_samples(dataset.samples)
    return folder, truth


def run(out: Path, base: Path, epochs: int) -> None:
    """Build the projects, drive the window and write the four screenshots to ``out``."""
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from labeltune.core.demos import demo_project_dir, write_demo
    from labeltune.core.settings import Settings

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("LabelTune")
    app.setOrganizationName("LabelTune")
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(base / "qsettings"))

    from labeltune.ui.gallery_model import GalleryModel
    from labeltune.ui.main_window import MainWindow

    print("writing the projects…")
    survey, truth = make_labeling_project(base / "projects")
    fish = write_demo("fish", demo_project_dir("fish"))
    settings = Settings(strategy="features", epochs=epochs)  # the network that works offline is preselected
    settings.add_recent(fish)
    settings.add_recent(survey)
    settings.save()

    out.mkdir(parents=True, exist_ok=True)
    window = MainWindow(Settings.load())
    window.resize(WIDTH, HEIGHT)
    window.show()
    wait_until(window.isVisible, 10, "the window")
    settle(500)
    save(window, out / "start-page.png")

    # -- labeling --------------------------------------------------------------------------------------
    window.open_project(str(survey))
    page = window.label_page
    model = page.model
    assert isinstance(model, GalleryModel)
    wait_until(lambda: model.rowCount() > 0, 20, "the gallery rows")
    page.gallery.setFocus()
    classes = window.session.require().classes
    for _ in range(KEYS_PRESSED):
        current = window.session.current_id
        assert current is not None
        path = model.path(model.row_of(current))
        label = truth.get(path)
        if label is None:
            break
        QTest.keyClick(page.gallery, Qt.Key(Qt.Key.Key_1 + classes.index(label)))
        settle(150)

    def thumbnails_arrived() -> bool:
        viewport = page.gallery.viewport().rect()
        rows = [
            row
            for row in range(model.rowCount())
            if page.gallery.visualRect(model.index(row, 0)).intersects(viewport)
        ]
        return bool(rows) and all(model.thumbnail_state(model.sample_id(row)) != "loading" for row in rows)

    # Asking for the data of the visible rows (a repaint) requests their thumbnails.
    wait_until(lambda: (page.gallery.viewport().update(), thumbnails_arrived())[1], 60, "the thumbnails")
    wait_until(lambda: page.image_view.state() != "loading", 30, "the large image")
    settle(500)
    save(window, out / "labeling.png")

    # -- training ----------------------------------------------------------------------------------------
    from labeltune.core.trainer import EpochRecord

    panel = window.train_panel
    window.tabs.setCurrentWidget(panel)
    form = panel.form
    form.epochs_spin.setValue(epochs)
    assert form.backbone_picker.backbone() == "efficientnet_lite0" and form.weights() == "imagenet"
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("features"))
    wait_until(lambda: form.devices is not None, 120, "the device check (imports torch)")
    settle(300)
    grabbed: list[bool] = []

    def on_reported(event: object) -> None:
        if isinstance(event, EpochRecord) and event.epoch >= 5 and not grabbed:
            grabbed.append(True)
            panel.curves.flush()
            save(window, out / "training.png")

    panel.controller.reported.connect(on_reported)
    results: list[object] = []
    panel.controller.finished.connect(results.append)
    panel.controller.failed.connect(lambda message, _details: results.append(message))
    print("training (the features are computed once, on the CPU)…")
    panel.start()
    wait_until(lambda: bool(results) and not panel.is_running(), 900, "the training run")
    if not grabbed:
        raise RuntimeError(f"the run ended before epoch 5 ({results[0]!r})")

    # -- results -----------------------------------------------------------------------------------------
    window.tabs.setCurrentWidget(window.results_panel)
    wait_until(
        lambda: window.results_panel.stack.currentWidget() is window.results_panel.details_view,
        20,
        "the run's results",
    )
    details = window.results_panel.details_view
    checked: list[bool] = []
    window.session.predictions_changed.connect(lambda: checked.append(True))
    details.check_button.click()
    wait_until(lambda: bool(checked), 300, "the check of all images")
    settle(500)
    save(window, out / "results.png")

    # -- the prediction browser: a confusion-matrix cell drilled into -----------------------------------
    confusion = details.confusion
    matrix = confusion.matrix()
    cells = [(r, c) for r, line in enumerate(matrix) for c, count in enumerate(line) if count]
    row, column = max(cells, key=lambda cell: (cell[0] != cell[1], matrix[cell[0]][cell[1]]))
    confusion.cell_activated.emit(row, column)  # as a click on the cell does
    wait_until(
        lambda: window.tabs.currentWidget() is page and model.filter.kind == "cell" and model.rowCount() > 0,
        20,
        "the images of the cell",
    )
    page.gallery.select_row(0)
    page.gallery.setFocus()
    wait_until(lambda: bool(model.topk(model.sample_id(0))), 60, "the top-k bars")
    wait_until(lambda: (page.gallery.viewport().update(), thumbnails_arrived())[1], 60, "the thumbnails")
    wait_until(lambda: page.image_view.state() != "loading", 30, "the large image")
    settle(500)
    save(window, out / "browser.png")

    # -- unfamiliar images -------------------------------------------------------------------------------
    from labeltune.ui.gallery_model import GalleryFilter

    window.tabs.setCurrentWidget(window.label_page)
    page.filter_combo.choose(GalleryFilter("unfamiliar"))
    wait_until(
        lambda: model.filter.kind == "unfamiliar" and model.rowCount() > 0, 20, "the unfamiliar images"
    )

    def save_first_image(name: str) -> None:
        """Select the gallery's first image and save the window once it and the thumbnails show."""
        page.gallery.select_row(0)
        page.gallery.setFocus()
        wait_until(lambda: (page.gallery.viewport().update(), thumbnails_arrived())[1], 60, "the thumbnails")
        wait_until(lambda: page.image_view.state() != "loading", 30, "the large image")
        settle(500)
        save(window, out / name)

    save_first_image("unfamiliar.png")

    # -- likely label errors -----------------------------------------------------------------------------
    window.tabs.setCurrentWidget(window.results_panel)
    audited: list[object] = []
    audit = window.results_panel.label_audit.controller
    audit.finished.connect(audited.append)
    audit.failed.connect(lambda message, _details: audited.append(message))
    details.audit_button.click()
    wait_until(lambda: bool(audited) and not audit.is_running(), 300, "the label audit")
    window.tabs.setCurrentWidget(window.label_page)
    page.filter_combo.choose(GalleryFilter("label_errors"))
    if model.rowCount() > 0:
        save_first_image("label_errors.png")
    else:
        print("the audit found no likely label error: label_errors.png skipped")

    # -- the data map -----------------------------------------------------------------------------------
    map_panel = window.tabs.map_panel
    mapped: list[object] = []
    map_panel.task.finished.connect(mapped.append)
    map_panel.task.failed.connect(lambda message, _details: mapped.append(message))
    window.tabs.setCurrentWidget(map_panel)  # showing the tab maps the run's features
    wait_until(lambda: bool(mapped) and not map_panel.task.is_running(), 300, "the data map")
    settle(500)
    save(window, out / "map.png")

    xrd_screenshot(window, out)
    window.close()
    settle(200)


def xrd_screenshot(window: object, out: Path) -> None:
    """``xrd.png``: the XRD demo's three-phase pattern identified by the shipped model (if there is one)."""
    from labeltune.core.xrd.shipped import shipped_model_dir
    from labeltune.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    if shipped_model_dir() is None:
        print("no shipped XRD model (make xrd-model): xrd.png skipped")
        return
    window.open_demo("xrd")
    xrd = window.xrd_page
    wait_until(lambda: xrd.project is not None, 30, "the XRD demo project")
    assert xrd.project is not None
    target = next(p for p in xrd.project.patterns() if p.name.startswith("Li2MnO3+MnO+TiO2"))
    xrd.patterns_panel.select(target)
    settle(300)
    done: list[object] = []
    xrd.predict_controller.finished.connect(done.append)
    xrd.predict_controller.failed.connect(lambda message, _details: done.append(message))
    xrd.identify()
    wait_until(lambda: bool(done) and not xrd.predict_controller.is_running(), 120, "the XRD prediction")
    settle(500)
    save(window, out / "xrd.png")


def run_xrd_only(out: Path, base: Path) -> None:
    """Only ``xrd.png`` (no image training): ``--only xrd``."""
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from labeltune.core.settings import Settings
    from labeltune.ui.main_window import MainWindow

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(base / "qsettings"))
    out.mkdir(parents=True, exist_ok=True)
    window = MainWindow(Settings.load())
    window.resize(WIDTH, HEIGHT)
    window.show()
    wait_until(window.isVisible, 10, "the window")
    xrd_screenshot(window, out)
    window.close()
    settle(200)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, make the screenshots in an isolated temporary folder; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="docs/screenshots", help="folder for the PNGs")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the training run (at least 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    parser.add_argument("--only", choices=["xrd"], default=None, help="make only this screenshot (xrd.png)")
    args = parser.parse_args(argv)
    if args.epochs < 5:
        parser.error("--epochs must be at least 5: the training screenshot is taken at epoch 5")
    out = Path(args.out).resolve()
    base = Path(tempfile.mkdtemp(prefix="labeltune-screenshots-"))
    isolate(base)
    try:
        if args.only == "xrd":
            run_xrd_only(out, base)
        else:
            run(out, base, args.epochs)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
