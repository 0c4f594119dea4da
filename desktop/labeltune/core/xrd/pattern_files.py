"""Which files are powder patterns: the suffixes the readers know; files and folders expanded into them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labeltune.core.errors import UnusableInputError

PATTERN_SUFFIXES = {
    ".xy", ".xye", ".xrdml", ".ras", ".rasx", ".raw", ".txt", ".dat", ".csv", ".cif",
    ".uxd", ".gsa", ".gss", ".fxye", ".brml", ".rd", ".sd", ".udf", ".cpi",
}  # fmt: skip


def collect_patterns(inputs: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files and folders (recursively) → pattern files; unknown file types are reported."""
    paths: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if (
                    child.is_file()
                    and child.suffix.lower() in PATTERN_SUFFIXES
                    and child.name != "labels.csv"
                ):
                    paths.append(child)
        elif path.is_file():
            paths.append(path)
        else:
            raise UnusableInputError(f"{path} does not exist")
    return paths, skipped
