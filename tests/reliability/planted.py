"""Planted payloads: files that would create a marker file if anything unpickled them (ADR 0043)."""

from __future__ import annotations

import pathlib
import pickle
from collections.abc import Callable
from pathlib import Path


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: the marker file appearing proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self) -> tuple[Callable[..., object], tuple[Path]]:
        return (pathlib.Path.touch, (self.marker,))


def plant_pickle(file: Path, marker: Path) -> Path:
    """Write a plain ``pickle.dump`` of the payload to ``file``."""
    file.write_bytes(pickle.dumps(Payload(marker)))
    return file


def plant_torch(file: Path, marker: Path) -> Path:
    """Write a ``torch.save`` archive whose state dict holds the payload among real tensors."""
    import torch

    torch.save({"weight": torch.zeros(2), "model": {"conv.weight": Payload(marker)}}, file)
    return file


def one_line(text: str) -> str:
    """The single line of a CLI error; fails when there are several or a traceback."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


_TRAINED: dict[str, tuple[Path, Path]] = {}


def trained_project(base: Path) -> tuple[Path, Path]:
    """A small project with one finished run (``train_small_project``), trained once per session.

    ``base`` is a session-lived folder (``tmp_path_factory.getbasetemp()``); callers copy the run
    folder before planting anything in it.
    """
    if "run" not in _TRAINED:
        from conftest import train_small_project  # tests/conftest.py

        root = base / "untrusted-trained"
        root.mkdir(exist_ok=True)
        _TRAINED["run"] = train_small_project(root, {})
    return _TRAINED["run"]
