"""The test tree stays collectable: pytest (rootdir imports, no __init__.py) needs unique test file names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_names_are_unique_across_folders() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert names, "no test files found"
    assert [name for name, count in names.items() if count > 1] == []
