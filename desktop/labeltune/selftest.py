"""``labeltune --self-test``: prove that this installation works, in about half a minute on a CPU.

Run from a source checkout and inside an installed bundle (the installers' CI runs it on every build). Each
check exercises what a frozen bundle most often loses: package data (demos, the shipped XRD model, the
bundled ImageNet weights), compiled extensions (torch, torchvision's operators, gemmi, sqlite) and Qt's
platform plugins. Everything it writes goes to a temporary folder; the user's data, caches and settings are
neither read nor touched (their environment variables point into that folder while it runs).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: The measured demo pattern the shipped XRD model must identify, and the phases it holds.
XRD_PATTERN = "Mn2O3+LiF.xy"
#: The user folders redirected into the temporary folder while the self-test runs.
USER_DIR_ENVS = ("LABELTUNE_DATA_DIR", "LABELTUNE_CACHE_DIR", "LABELTUNE_CONFIG_DIR")


@dataclass
class Check:
    """The outcome of one check: its name, whether it passed and what it found (or the error)."""

    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class SelfTestReport:
    """All checks, the device the app trains on, and the one-line summary."""

    checks: list[Check]
    device: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(check.ok for check in self.checks)

    def summary(self) -> str:
        """One line: passed or failed, which checks failed, on which device, how long it took."""
        from labeltune import __version__

        passed = sum(check.ok for check in self.checks)
        if self.ok:
            head = f"labeltune {__version__} self-test passed: {passed} of {len(self.checks)} checks"
        else:
            failed = ", ".join(check.name for check in self.checks if not check.ok)
            head = (
                f"labeltune {__version__} self-test FAILED ({failed}): {passed} of {len(self.checks)} checks"
            )
        return f"{head} on {self.device} in {self.seconds:.1f} s"


@contextlib.contextmanager
def _isolated_user_dirs(base: Path) -> Iterator[None]:
    """Point LabelTune's data, cache and settings folders into ``base`` and restore them afterwards."""
    saved = {name: os.environ.get(name) for name in USER_DIR_ENVS}
    try:
        for name in USER_DIR_ENVS:
            os.environ[name] = str(base / name.lower())
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_device() -> str:
    """The device training uses here: the CUDA GPU's name and memory, Apple's GPU, or the CPU."""
    from labeltune.core.device import describe_device, select_device

    device = select_device("auto")
    return ("CUDA GPU " if device.type == "cuda" else "") + describe_device(device)


def check_backbone() -> str:
    """Build the default backbone with its bundled ImageNet weights and run it on one image."""
    import torch

    from labeltune.core import weights
    from labeltune.core.backbones import DEFAULT_BACKBONE, build_backbone, get_spec

    path = weights.bundled_weights_file(DEFAULT_BACKBONE)
    if path is None:
        raise RuntimeError(f"the ImageNet weights of {DEFAULT_BACKBONE} are not in this installation")
    parts = build_backbone(DEFAULT_BACKBONE, dict(weights.load_weights(DEFAULT_BACKBONE)))
    model = torch.nn.Sequential(parts.trunk, parts.top).eval()
    with torch.no_grad():
        features = model(torch.rand(1, 3, 64, 64))
    if features.shape != (1, get_spec(DEFAULT_BACKBONE).feature_dim) or not torch.isfinite(features).all():
        raise RuntimeError(f"unexpected features {tuple(features.shape)} from {DEFAULT_BACKBONE}")
    digest = weights.weights_sha256(DEFAULT_BACKBONE)
    return f"{DEFAULT_BACKBONE}, ImageNet weights from {path.name} (sha256 {digest[:8]})"


def _write_images(root: Path, classes: int = 3, per_class: int = 8, size: int = 32) -> Path:
    """Noisy images whose colour depends on their class folder."""
    import numpy as np
    from PIL import Image

    colours = [(220, 40, 40), (40, 200, 40), (40, 60, 220)]
    rng = np.random.default_rng(0)
    for k in range(classes):
        folder = root / f"class{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-40, 40, (size, size, 3))
            pixels = np.clip(np.array(colours[k % len(colours)]) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"img{i:02d}.png")
    return root


def check_training(work: Path) -> str:
    """Fine-tune the default backbone (every layer, pretrained) for two epochs on generated images."""
    from labeltune.core import training
    from labeltune.core.backbones import DEFAULT_BACKBONE
    from labeltune.core.datasets import scan
    from labeltune.core.model import MODEL_FILE

    data = scan(_write_images(work / "images"))
    config = training.TrainConfig(
        backbone=DEFAULT_BACKBONE,
        strategy="full",
        weights="imagenet",
        epochs=2,
        batch_size=8,
        val_fraction=0.25,
        input_size=64,
        patience=0,
        seed=0,
    )
    result = training.train(data, config, work / "run")
    losses = [record.train_loss for record in result.history]
    if result.epochs_run != 2 or not all(math.isfinite(loss) for loss in losses):
        raise RuntimeError(f"training ran {result.epochs_run} epochs with losses {losses}")
    if not result.weights_id.startswith("imagenet-"):
        raise RuntimeError(f"training started from {result.weights_id}, not the ImageNet weights")
    if not (result.run_dir / MODEL_FILE).is_file():
        raise RuntimeError(f"no model file in {result.run_dir}")
    accuracy = result.metrics.get("accuracy")
    return (
        f"{result.train_size} images, 2 epochs of full fine-tuning, loss {losses[0]:.2f} -> "
        f"{losses[-1]:.2f}, validation accuracy {accuracy:.2f}"
    )


def check_project(work: Path) -> str:
    """Create a project, import and label images, close it, open it again and compare."""
    from labeltune.core.datasets import Sample
    from labeltune.core.project import Project

    images = sorted((work / "images").rglob("*.png")) or sorted(_write_images(work / "images").rglob("*.png"))
    folder = work / "project"
    with Project.create(folder, name="self-test", classes=["class0", "class1", "class2"]) as project:
        project.add_samples(Sample(path, path.parent.name) for path in images)
        project.set_label(images[0], "class2")
        before = (project.sample_count(), project.counts(), project.label_of(images[0]))
    with Project.open(folder) as project:
        after = (project.sample_count(), project.counts(), project.label_of(images[0]))
    if after != before or before[2] != "class2":
        raise RuntimeError(f"the project store changed on reopening: {before} -> {after}")
    return f"{after[0]} samples and one relabelling survive closing and reopening"


def check_xrd() -> str:
    """Read a measured demo pattern and identify its phases with the shipped XRD model."""
    from importlib.resources import files

    from labeltune.core.xrd.inference import load_xrd_model, predict_patterns
    from labeltune.core.xrd.metrics import canonical_formula
    from labeltune.core.xrd.shipped import shipped_model_dir

    model = shipped_model_dir()
    if model is None:
        raise RuntimeError("the shipped XRD model is not in this installation")
    pattern = Path(str(files("labeltune") / "resources" / "demos" / "xrd" / "patterns" / XRD_PATTERN))
    if not pattern.is_file():
        raise RuntimeError(f"the demo pattern {XRD_PATTERN} is not in this installation")
    net = load_xrd_model(model)
    # the demo's patterns were measured with the library's wavelength (Cu Kα), which their files do not state
    predictions, skipped = predict_patterns(net, [pattern], default_wavelength=net.library.wavelength)
    if skipped or not predictions:
        raise RuntimeError(f"{XRD_PATTERN} was not read: {skipped}")
    truth = {canonical_formula(formula) for formula in Path(XRD_PATTERN).stem.split("+")}
    called = {canonical_formula(phase.formula) for phase in predictions[0].phases}
    if called != truth:
        raise RuntimeError(f"{XRD_PATTERN}: identified {sorted(called)} instead of {sorted(truth)}")
    return f"{XRD_PATTERN}: {' + '.join(sorted(called))} identified with {model.name}"


def check_gui() -> str:
    """Open the main window offscreen (Qt's platform plugins and the start page).

    Closing the window stores its geometry in Qt's settings; the user's own value is put back afterwards.
    """
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QApplication(["labeltune"])
    from labeltune.ui.main_window import MainWindow

    saved_geometry = QSettings("LabelTune", "LabelTune").value("window/geometry")
    window = MainWindow()
    try:
        window.show()
        app.processEvents()
        title = window.windowTitle()
        if "LabelTune" not in title:
            raise RuntimeError(f"the main window is titled {title!r}")
        platform = QApplication.platformName()
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
        qsettings = QSettings("LabelTune", "LabelTune")
        if saved_geometry is None:
            qsettings.remove("window/geometry")
        else:
            qsettings.setValue("window/geometry", saved_geometry)
        qsettings.sync()
    return f"main window {title!r} opened ({platform} platform)"


def run_self_test(echo: Callable[[str], None] = print, gui: bool = True) -> SelfTestReport:
    """Run every check, calling ``echo`` with one line per check; never raises for a failed check."""
    start = time.perf_counter()
    checks: list[Check] = []
    device = "unknown device"

    def run(name: str, func: Callable[[], str]) -> None:
        began = time.perf_counter()
        try:
            detail, ok = func(), True
        except Exception as exc:  # a self-test reports every failure and goes on with the next check
            detail, ok = f"{type(exc).__name__}: {exc}", False
            if os.environ.get("LABELTUNE_SELF_TEST_TRACEBACK"):
                detail += "\n" + traceback.format_exc()
        check = Check(name, ok, detail, time.perf_counter() - began)
        checks.append(check)
        echo(f"{'ok  ' if ok else 'FAIL'} {name:<9}{detail} ({check.seconds:.1f} s)")

    with tempfile.TemporaryDirectory(prefix="labeltune-self-test-") as tmp:
        work = Path(tmp)
        with _isolated_user_dirs(work):

            def device_check() -> str:
                nonlocal device
                device = check_device()
                return device

            run("device", device_check)
            run("backbone", check_backbone)
            run("training", lambda: check_training(work))
            run("project", lambda: check_project(work))
            run("xrd", check_xrd)
            if gui:
                run("gui", check_gui)
    return SelfTestReport(checks, device, time.perf_counter() - start)
