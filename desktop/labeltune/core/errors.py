"""Exceptions the engine raises for problems a user can fix (bad input, missing weights).

A message is worded for whoever reads it: ``str(error)`` is GUI-neutral (no command-line options), and
``error.cli_message`` is what the command line prints, with its options (``--device cpu``) where they help.
Raw library text (PyTorch's, safetensors') never is the message: see :func:`describe_weights_error`.
"""

from __future__ import annotations

import logging
import re
import zipfile

log = logging.getLogger(__name__)


class LabelTuneError(Exception):
    """A problem the user can act on; the CLI prints it as one line and exits with status 2.

    ``cli`` is the command-line wording where it differs (it names options); the GUI shows ``str()``.
    """

    def __init__(self, message: str, *, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli if cli is not None else message


class UnusableInputError(LabelTuneError):
    """The data given cannot be used (no images, one class only, unknown format...)."""


class WeightsUnavailableError(LabelTuneError):
    """Pretrained weights are not in the store and cannot be downloaded."""


class InvalidWeightsError(LabelTuneError):
    """A weights file does not fit the architecture it is meant for."""


class ImageDecodeError(LabelTuneError):
    """A file could not be decoded as an image; the message says why."""


class StorageError(LabelTuneError, OSError):
    """A file or folder could not be written or read: disk full, read-only, permission denied, gone.

    Made by :func:`labeltune.core.file_problems.storage_error`, the one place that words such failures.
    It is an ``OSError`` too (with the original ``errno``), so code that handled the raw error still does.
    """

    def __init__(self, message: str, *, cli: str | None = None, errno: int | None = None) -> None:
        super().__init__(message, cli=cli)
        self.errno = errno


NOT_WEIGHTS = "this file is not a PyTorch/safetensors weights file"
INCOMPLETE = "the file is incomplete or damaged (for example a download that stopped early)"
HOLDS_OBJECTS = (
    "the file holds Python objects besides the weights, which LabelTune never loads (they could run code)"
)
HAS_OBJECTS = f"{HOLDS_OBJECTS}; use the network's official weights file"


PICKLED = "the file is a Python pickle (objects that could run code), which LabelTune never loads"


def is_pickle(source: str) -> bool:
    """Whether the file ``source`` is a pickle (``pickle.dump``) or a ``torch.save`` archive (one inside).

    A safetensors file never starts so; a file that does was made by someone else's ``torch.save`` or
    ``pickle.dump`` and is refused unread (ADR 0043).
    """
    try:
        with open(source, "rb") as f:
            head = f.read(2)
            if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
                return True
            if head != b"PK":
                return False
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                return any(name.endswith(".pkl") for name in archive.namelist())
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def describe_weights_error(exc: BaseException, source: str = "") -> str:
    """A plain reason for a failure of ``torch.load`` / safetensors / ``load_state_dict`` on ``source``.

    PyTorch's own text is logged, never shown: it can suggest ``weights_only=False``, which would let a
    file run code.  Reasons: not a weights file, incomplete, holds objects, or for another network.
    """
    text = str(exc)
    log.info("weights file %s: %s: %s", source or "?", type(exc).__name__, text)
    if "size mismatch" in text or "Missing key" in text or "Unexpected key" in text:
        shapes = text.count("size mismatch for ")
        missing = _count_keys(text, "Missing key(s) in state_dict:")
        unexpected = _count_keys(text, "Unexpected key(s) in state_dict:")
        parts = [
            f"{n} {what}"
            for n, what in (
                (shapes, "tensors of other shapes"),
                (missing, "tensors missing"),
                (unexpected, "unexpected tensors"),
            )
            if n
        ]
        return "the file is for another network: " + ", ".join(parts)
    if "Unsupported global" in text or "GLOBAL" in text:  # the pickle names classes or functions
        return HAS_OBJECTS
    if source and is_pickle(source):  # a pickle where safetensors was expected (model.safetensors...)
        return PICKLED
    if isinstance(exc, EOFError) or re.search(r"central directory|unexpected EOF|truncat|incomplete", text):
        return INCOMPLETE
    return NOT_WEIGHTS


def _count_keys(text: str, heading: str) -> int:
    start = text.find(heading)
    if start < 0:
        return 0
    line = text[start + len(heading) :].split("\n", 1)[0]
    return len(re.findall(r'"[^"]+"', line))
