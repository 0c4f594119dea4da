"""The files of an XRD run folder: ``config.json``, ``model.safetensors``, ``metrics.json``, ``library/``.

``history.csv`` is written by the trainer's history callback (``core/train_callbacks.py``), as for images.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from labeltune.core.atomic import write_atomic, write_text_atomic
from labeltune.core.errors import UnusableInputError, describe_weights_error
from labeltune.core.run_schema import RUN_SCHEMA, RUN_SCHEMA_KEY, check_run_schema
from labeltune.core.xrd.library import LIBRARY_FILE, Library, LibraryError, load_library
from labeltune.core.xrd.measured import Measured
from labeltune.core.xrd.model import XrdNet, XrdNetConfig
from labeltune.core.xrd.train_config import XrdTrainConfig

DOMAIN = "xrd"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
LIBRARY_DIR = "library"


def save_xrd_model(run_dir: Path, net: XrdNet) -> None:
    """Write ``model.safetensors`` atomically; floating-point tensors are stored as float16.

    Half the size (the shipped model is in the repository) and no measurable change in the outputs:
    loading casts them back to float32.
    """
    from safetensors.torch import save_file

    state = {
        k: (v.half() if v.is_floating_point() else v).detach().contiguous().cpu()
        for k, v in net.state_dict().items()
    }
    write_atomic(run_dir / MODEL_FILE, lambda tmp: save_file(state, str(tmp)))


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A finished XRD run's ``config.json`` (raises UnusableInputError)."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise UnusableInputError(f"{run_dir}: no such folder (expected an XRD run folder)")
    if (Path(run_dir) / LIBRARY_FILE).is_file():
        raise UnusableInputError(
            f"{run_dir} is a reference library, not a trained model: train a model on it first",
            cli=f"{run_dir} is a reference library, not a trained model: train one with "
            f"labeltune train {run_dir} --domain xrd --out RUN_DIR",
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnusableInputError(f"{run_dir} is not a finished run: {exc}") from None
    if not isinstance(config, dict) or config.get("domain") != DOMAIN:
        raise UnusableInputError(f'{run_dir} is not an XRD run (config.json has no "domain": "xrd")')
    check_run_schema(run_dir, config)
    if not (Path(run_dir) / MODEL_FILE).is_file():
        raise UnusableInputError(f"{run_dir} has no {MODEL_FILE}")
    return config


def load_xrd_net(run_dir: Path) -> tuple[XrdNet, dict[str, Any], Library]:
    """The network, config and library of a finished XRD run."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    try:
        library = load_library(run_dir / LIBRARY_DIR)
        net = XrdNet(XrdNetConfig.from_json(config["net"]))
        net.load_state_dict(load_file(str(run_dir / MODEL_FILE), device="cpu"))
    except LibraryError as exc:
        raise UnusableInputError(f"{run_dir}: its library copy cannot be read: {exc}") from None
    except Exception as exc:  # damaged safetensors, shape mismatch
        reason = describe_weights_error(exc, str(run_dir / MODEL_FILE))
        raise UnusableInputError(f"cannot load the XRD model in {run_dir}: {MODEL_FILE}: {reason}") from None
    return net.eval(), config, library


def copy_library(library: Library, run_dir: Path) -> None:
    """Copy the library into the run folder (``library/``), so the run predicts on its own."""
    if library.path is None:
        raise ValueError("the library has no folder")
    target = run_dir / LIBRARY_DIR
    if target.resolve() == Path(library.path).resolve():
        return
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(library.path, target)


def config_writer(
    run_dir: Path,
    config: XrdTrainConfig,
    net: XrdNet,
    library: Library,
    grid: np.ndarray,
    source: Path,
    kind: str,
    measured: Measured | None,
) -> Callable[[], None]:
    """A function that (re)writes the run's ``config.json``; ``created`` stays the first call's time."""
    created = dt.datetime.now().astimezone().isoformat(timespec="seconds")

    def write() -> None:
        data = {
            RUN_SCHEMA_KEY: RUN_SCHEMA,
            "domain": DOMAIN,
            "net": net.config.to_json(),
            "library": LIBRARY_DIR,
            "wavelength": library.wavelength,
            "grid": {"two_theta_min": float(grid[0]), "two_theta_max": float(grid[-1]), "points": len(grid)},
            "phases": library.names,
            "formulas": [p.formula for p in library.phases],
            "threshold": 0.5,
            "train": config.to_json(),
            "source": str(source),
            "source_kind": kind,
            "created": created,
        }
        if measured is not None:  # so a later comparison knows which patterns this model has seen
            data["measured_patterns"] = list(measured.paths)
        write_text_atomic(run_dir / CONFIG_FILE, json.dumps(data, indent=1))

    return write


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json`` atomically."""
    write_text_atomic(run_dir / METRICS_FILE, json.dumps(metrics, indent=1))
