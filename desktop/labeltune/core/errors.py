"""Exceptions the engine raises for problems a user can fix (bad input, missing weights)."""

from __future__ import annotations


class LabelTuneError(Exception):
    """A problem the user can act on; the CLI prints it as one line and exits with status 2."""


class UnusableInputError(LabelTuneError):
    """The data given cannot be used (no images, one class only, unknown format...)."""


class WeightsUnavailableError(LabelTuneError):
    """Pretrained weights are not in the store and cannot be downloaded."""


class InvalidWeightsError(LabelTuneError):
    """A weights file does not fit the architecture it is meant for."""


class ImageDecodeError(LabelTuneError):
    """A file could not be decoded as an image; the message says why."""
