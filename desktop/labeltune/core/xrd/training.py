"""Train the XRD phase-identification network: pretrain on simulated patterns, fine-tune on measurements.

Three sources, told apart by what the folder holds:

* a **library** folder (``library.json``): patterns are simulated on the fly from its phases, so no two
  batches are alike (the seed papers' simulated-to-real transfer);
* a **simulated data** folder (``patterns.npy`` + ``labels.csv`` + ``meta.json`` from
  ``labeltune xrd simulate``): a fixed set, the library named in ``meta.json``;
* a **labeled measurement** folder (``labels.csv`` with ``path,phases[,fractions]``; an XRD project is one):
  fine-tuning from ``--init RUN_DIR``; every batch mixes the measurements (lightly augmented) with fresh
  simulated patterns so the network does not forget the phases the measurements do not show.

A label may name a phase or only a formula (``TiO2``); a formula standing for several polymorphs is
trained as "at least one of them": the loss sees the largest of their logits.

The loop is the image side's :class:`~labeltune.core.trainer.Trainer` with XRD's batch source and task
(``core/xrd/train_task.py``) and the shared callbacks (``core/train_callbacks.py``). The run folder
(``core/xrd/run_files.py``) holds ``config.json`` (``"domain": "xrd"``), ``model.safetensors``,
``history.csv``, ``metrics.json`` and a copy of the library in ``library/`` so the run predicts on its own.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labeltune.core import distributed
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import Progress, ProgressCallback, no_progress
from labeltune.core.train_callbacks import EachEpoch, History, ProgressBar
from labeltune.core.train_step import EpochRecord
from labeltune.core.trainer import Callback, Trainer
from labeltune.core.xrd.library import LIBRARY_FILE, Library, load_library
from labeltune.core.xrd.measured import LABELS_FILE, Measured, grid_of, load_measured, source_kind
from labeltune.core.xrd.model import XrdNet, XrdNetConfig
from labeltune.core.xrd.run_files import (
    DOMAIN,
    MODEL_FILE,
    config_writer,
    copy_library,
    load_xrd_net,
    save_xrd_model,
    write_metrics,
)
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.train_task import SimulatedBatches, XrdTask, evaluate_net, xrd_trainer


@dataclass
class XrdRunResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    history: list[EpochRecord]
    metrics: dict[str, Any]
    stopped: bool = False
    phases: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``--json`` output)."""
        return {
            "domain": DOMAIN,
            "run_dir": str(self.run_dir),
            "stopped": self.stopped,
            "epochs": len(self.history),
            "phases": len(self.phases),
            "metrics": self.metrics,
        }


class BestModelFile(Callback):
    """Writes ``model.safetensors`` after every epoch that the task's rule makes the best so far."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_epoch_end(self, trainer: Trainer, record: EpochRecord) -> None:
        """Save the model when ``record`` is the best epoch."""
        if trainer.state.best_epoch == record.epoch:
            save_xrd_model(self.run_dir, trainer.model)  # type: ignore[arg-type]


@dataclass
class _Start:
    """Where a run starts: the library, the source's kind and grid, and the model to fine-tune (if any)."""

    kind: str
    library: Library
    grid: np.ndarray
    init_net: XrdNet | None = None
    init_state: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    added_phases: dict[str, Any] | None = None  # the library adds phases to the --init run's (xrd/extend.py)


def _start(source: Path, config: XrdTrainConfig) -> _Start:
    """Read the source folder's kind and library and the starting model (raises UnusableInputError)."""
    kind = source_kind(source)
    init_net: XrdNet | None = None
    init_config: dict[str, Any] | None = None
    init_state: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = {}
    if config.init is not None:
        init_net, init_config, init_library = load_xrd_net(config.init)
        init_state = {k: v.detach().clone() for k, v in init_net.state_dict().items()}
    if kind == "library":
        library = load_library(source)
    elif kind == "simulated":
        meta = json.loads((source / "meta.json").read_text(encoding="utf-8"))
        lib_path = meta.get("library")
        if not lib_path or not (Path(lib_path) / LIBRARY_FILE).is_file():
            raise UnusableInputError(f"{source}/meta.json names no readable library ({lib_path!r})")
        library = load_library(lib_path)
    else:
        if init_net is None:
            raise UnusableInputError(
                f"{source} holds measured patterns: fine-tuning starts from a pretrained XRD model "
                "(for example the shipped one); choose it first",
                cli=f"{source} holds measured patterns: fine-tuning needs --init RUN_DIR, a pretrained XRD "
                "run (for example the shipped models/xrd-li-mn-ti-o-f)",
            )
        library = init_library
    added: dict[str, Any] | None = None
    if init_net is not None and init_library.names != library.names:
        from labeltune.core.xrd.extend import added_phases_record, extend_net, extends

        if not extends(init_library.names, library.names):
            raise UnusableInputError(
                f"the starting model {config.init} was trained on other phases than {source}: "
                "use the same library, or one that adds phases to it",
                cli=f"--init {config.init} was trained on other phases than {source}: use the same "
                "library, or one that adds phases to it",
            )
        init_net = extend_net(init_net, init_library.names, library.names)
        added = added_phases_record(str(config.init), init_library.names, library.names)
        init_state = None  # the check against the previous model needs the same phases
    if init_config is not None:
        g = init_config["grid"]
        grid = np.linspace(g["two_theta_min"], g["two_theta_max"], g["points"])
    elif kind == "simulated":
        g = meta["grid"]
        grid = np.linspace(g["two_theta_min"], g["two_theta_max"], g["points"])
    else:
        grid = grid_of(library)
    return _Start(kind, library, grid, init_net, init_state, meta, added)


def _fixed_set(source: Path, library: Library, grid: np.ndarray) -> tuple[torch.Tensor, ...]:
    """A simulated data folder's patterns, presence and fractions."""
    try:  # never allow_pickle: an object array in a shared folder could run code (ADR 0043)
        x_all = np.load(source / "patterns.npy", mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        what = "holds Python objects, which LabelTune never loads (they could run code)"
        reason = what if "pickle" in str(exc) or "objects" in str(exc) else "is not a numeric array"
        raise UnusableInputError(f"{source / 'patterns.npy'} {reason}") from None
    if x_all.shape[1] != len(grid):
        raise UnusableInputError(
            f"{source}: patterns have {x_all.shape[1]} points, meta.json says {len(grid)}"
        )
    with (source / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = library.names
    fr = np.array([[float(r.get(n) or 0.0) for n in names] for r in rows], dtype=np.float32)
    fixed_frac = torch.from_numpy(fr)
    return torch.from_numpy(np.asarray(x_all, dtype=np.float32)), fixed_frac > 0, fixed_frac


def train_xrd(
    source: Path,
    config: XrdTrainConfig,
    run_dir: Path,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    default_wavelength: float | None = None,
) -> XrdRunResult:
    """Train (or fine-tune from ``config.init``) and write the run folder; Stop keeps the best model.

    ``callbacks`` get the trainer's hooks (the GUI's signal bridge); ``on_epoch`` is called with each
    epoch's record.
    """
    report = progress or no_progress
    config.validate()
    source = Path(source)
    run_dir = Path(run_dir)
    start = _start(source, config)
    kind, library, grid, init_net = start.kind, start.library, start.grid, start.init_net
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n_phases = len(library.phases)
    sim_config = SimulationConfig(
        two_theta_min=float(grid[0]),
        two_theta_max=float(grid[-1]),
        points=len(grid),
        max_phases=min(config.max_phases, n_phases),
        min_fraction=config.min_fraction,
        minor_probability=config.minor_probability,
        monochromatic=config.monochromatic,
    )
    net = init_net if init_net is not None else XrdNet(XrdNetConfig(n_phases=n_phases, points=len(grid)))
    measured: Measured | None = None
    if kind == "measured":  # read before the run folder is made: a bad labeled file leaves no half run
        report(Progress("Reading labeled patterns", 0, 0))
        measured = load_measured(source, library, grid, default_wavelength)
    main = distributed.is_main()  # under torchrun, rank 0 writes the run folder (core/distributed.py)
    distributed.main_only(lambda: _make_run_dir(run_dir, library))

    # -- data -------------------------------------------------------------------------------------------
    fixed: tuple[torch.Tensor, ...] | None = None
    report(Progress("Preparing validation patterns", 0, 0))
    val = simulate(library, config.validation_patterns, sim_config, seed=config.seed + 1_000_003)
    validation = (torch.from_numpy(val.x), torch.from_numpy(val.present), torch.from_numpy(val.fractions))
    if kind == "simulated":
        fixed = _fixed_set(source, library, grid)

    # -- the fit ----------------------------------------------------------------------------------------
    per_epoch = len(fixed[0]) if fixed is not None else config.patterns_per_epoch
    local_stop = stop_event or threading.Event()
    # under torchrun the ranks stop together, at a step they agree on
    stop_event = threading.Event() if distributed.world() is not None else local_stop
    batches = SimulatedBatches(
        config,
        library,
        sim_config,
        measured,
        fixed,  # type: ignore[arg-type]
        int(rng.integers(2**31)),
        rng,
        max(1, per_epoch // config.batch_size),
        stop_event,
    )
    write_config = config_writer(run_dir, config, net, library, grid, source, kind, measured)
    if main:
        write_config()
    trainer = xrd_trainer(
        net,
        config,
        batches,
        XrdTask(config, validation, keep_last=measured is not None),
        init_net is not None,
        stop_event,
        [
            ProgressBar(report, config.epochs, per_epoch=True),
            *([History(run_dir), BestModelFile(run_dir)] if main else []),
            *([EachEpoch(on_epoch)] if on_epoch is not None else []),
            *callbacks,
        ],
    )
    distributed.prepare_trainer(trainer, local_stop)
    try:
        state = trainer.fit()
    except KeyboardInterrupt:
        if not main:
            raise
        if not trainer.state.history:
            save_xrd_model(run_dir, net)
        _finish(run_dir, net, trainer.state.history, library, *validation, measured, stopped=True)
        raise
    stopped = state.stopped_by_user
    if not main:  # the other ranks of a torchrun job write nothing
        return XrdRunResult(run_dir, state.history, {}, stopped, library.names)
    if not state.history:  # stopped in the first epoch: the model as it is
        save_xrd_model(run_dir, net)
    metrics = _finish(run_dir, net, state.history, library, *validation, measured, stopped)
    if start.added_phases is not None:
        metrics["added_phases"] = start.added_phases
        write_metrics(run_dir, metrics)
    if start.init_state is not None:
        from labeltune.core.xrd.model_check import compare_with_previous

        comparison = compare_with_previous(
            Path(str(config.init)),
            start.init_state,
            net.config,
            library,
            sim_config,
            measured,
            config,
            validation,
            float(metrics["simulated_validation"]["exact_accuracy"]),
            kind,
            stopped,
            report,
            stop_event,
        )
        metrics.update(comparison.metrics_json())
        write_metrics(run_dir, metrics)
    return XrdRunResult(run_dir, state.history, metrics, stopped, library.names)


def _make_run_dir(run_dir: Path, library: Library) -> None:
    """The run folder with its copy of the library."""
    run_dir.mkdir(parents=True, exist_ok=True)
    copy_library(library, run_dir)


def _finish(
    run_dir: Path,
    net: XrdNet,
    history: list[EpochRecord],
    library: Library,
    val_x: torch.Tensor,
    val_present: torch.Tensor,
    val_frac: torch.Tensor,
    measured: Measured | None,
    stopped: bool,
) -> dict[str, Any]:
    """Reload the kept model (as stored, float16), evaluate it and write ``metrics.json``."""
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(run_dir / MODEL_FILE), device="cpu"))
    ev = evaluate_net(net, val_x, val_present, val_frac)
    metrics: dict[str, Any] = {
        "simulated_validation": {
            "patterns": len(val_x),
            "exact_accuracy": round(ev.exact, 4),
            "recall": round(ev.recall, 4),
            "macro_f1": round(ev.macro_f1, 4),
            "fraction_mae_points": round(ev.fraction_mae, 3),
            "loss": round(ev.loss, 5),
        },
        "epochs": len(history),
        "stopped": stopped,
        "seconds": round(sum(r.seconds for r in history), 1),
    }
    if measured is not None:
        net.eval()
        with torch.no_grad():
            logits, _ = net(torch.from_numpy(measured.x))
        pred = (logits > 0).numpy()
        exact = 0
        for i, pattern_groups in enumerate(measured.groups):
            wanted = {j for g in pattern_groups for j in g}
            ok = all(pred[i, g].any() for g in pattern_groups) and not (
                set(np.flatnonzero(pred[i]).tolist()) - wanted
            )
            exact += bool(ok)
        metrics["measured_training_set"] = {
            "patterns": len(measured.x),
            "exact_accuracy": round(exact / len(measured.x), 4),
            "note": "the patterns this run was fine-tuned on; evaluate on held-out measurements",
        }
    write_metrics(run_dir, metrics)
    return metrics


__all__ = [
    "XrdRunResult",
    "train_xrd",
]
