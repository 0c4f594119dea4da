"""The engine and the CLI must work without Qt, and the GUI's start page must not pay for importing torch.

Each check runs in a fresh interpreter (``sys.executable -c``) so modules imported by other tests do not
hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6")
#: Modules the GUI imports to draw its start page (backbone list, weights present, scan, projects).
START_PAGE_MODULES = (
    "labeltune.core.backbones",
    "labeltune.core.weights",
    "labeltune.core.datasets",
    "labeltune.core.project",
)


def _run(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_and_cli_import_without_qt() -> None:
    report = _run(
        f"""
        import importlib, importlib.abc, json, pkgutil, sys

        BLOCKED = {QT_MODULES!r}

        class BlockQt(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked: the engine must not need Qt")
                return None

        sys.meta_path.insert(0, BlockQt())
        for name in BLOCKED:
            sys.modules.pop(name, None)

        import labeltune.core

        imported = []
        failures = {{}}
        modules = [m.name for m in pkgutil.walk_packages(labeltune.core.__path__, "labeltune.core.")]
        for name in [*modules, "labeltune.cli"]:
            try:
                importlib.import_module(name)
                imported.append(name)
            except Exception as exc:
                failures[name] = f"{{type(exc).__name__}}: {{exc}}"
        qt_loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({{"imported": imported, "failures": failures, "qt": qt_loaded}}))
        """
    )
    assert report["failures"] == {}
    assert report["qt"] == []
    imported = report["imported"]
    assert isinstance(imported, list)
    assert "labeltune.cli" in imported
    # the walk really found the engine
    for name in ("labeltune.core.training", "labeltune.core.inference", "labeltune.core.datasets"):
        assert name in imported


def test_cli_runs_without_qt() -> None:
    report = _run(
        f"""
        import contextlib, io, json, sys

        for name in {QT_MODULES!r}:
            sys.modules[name] = None  # any import of it raises ImportError

        from labeltune import cli

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["backbones", "--json"])
        print(json.dumps({{"code": code, "names": [row["name"] for row in json.loads(out.getvalue())]}}))
        """
    )
    assert report["code"] == 0
    names = report["names"]
    assert isinstance(names, list) and "resnet18" in names


def test_start_page_modules_do_not_import_torch() -> None:
    report = _run(
        f"""
        import json, sys

        for name in {START_PAGE_MODULES!r}:
            __import__(name)
        heavy = sorted(m for m in ("torch", "torchvision", "onnx", "onnxruntime") if m in sys.modules)
        print(json.dumps({{"heavy": heavy}}))
        """
    )
    assert report["heavy"] == []
