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

The run folder holds ``config.json`` (``"domain": "xrd"``), ``model.safetensors``, ``history.csv``,
``metrics.json`` and a copy of the library in ``library/`` so the run predicts on its own.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labeltune.core.errors import UnusableInputError, describe_weights_error
from labeltune.core.progress import Progress, ProgressCallback, StoppedError, check_stop, no_progress
from labeltune.core.trainer import EpochRecord
from labeltune.core.xrd.library import LIBRARY_FILE, Library, LibraryError, load_library
from labeltune.core.xrd.metrics import FormulaError, label_key, resolve_label
from labeltune.core.xrd.model import XrdNet, XrdNetConfig, network_fractions
from labeltune.core.xrd.simulate import SimulationConfig, simulate

DOMAIN = "xrd"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
LIBRARY_DIR = "library"
LABELS_FILE = "labels.csv"


@dataclass
class XrdTrainConfig:
    """Settings of one XRD training run."""

    epochs: int = 30
    patterns_per_epoch: int = 8192
    """Simulated patterns per epoch (on-the-fly sources); a fixed simulated set uses all of it per epoch."""
    batch_size: int = 128
    lr: float | None = None
    """Peak learning rate; None: 2e-3 from scratch, 5e-4 when fine-tuning from ``init``."""
    weight_decay: float = 1e-4
    seed: int = 0
    init: Path | None = None
    max_phases: int = 3
    min_fraction: float = 0.03
    """Smallest weight fraction of a phase in a simulated training pattern (fainter ones are invisible)."""
    monochromatic: bool = False
    validation_patterns: int = 1024
    measured_share: float = 0.5
    """Share of each fine-tuning batch taken from the labeled measurements."""
    fraction_weight: float = 1.0
    threads: int | None = None
    check_folds: int = 5
    """Fine-tuning from ``init`` on measurements: how many folds the held-out check splits the labeled
    patterns into (fewer patterns: one fold each, i.e. leave-one-out); below 2, no held-out check."""

    def resolved_lr(self) -> float:
        """The peak learning rate actually used."""
        if self.lr is not None:
            return self.lr
        return 5e-4 if self.init is not None else 2e-3

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that cannot work."""
        if self.epochs < 1 or self.batch_size < 2 or self.patterns_per_epoch < self.batch_size:
            raise ValueError("need epochs >= 1, batch size >= 2 and patterns per epoch >= batch size")
        if self.resolved_lr() <= 0 or not 0 <= self.measured_share <= 1 or self.max_phases < 1:
            raise ValueError("need lr > 0, 0 <= measured share <= 1 and max phases >= 1")

    def to_json(self) -> dict[str, Any]:
        """JSON builtins (paths as strings)."""
        out = asdict(self)
        out["init"] = str(self.init) if self.init is not None else None
        out["lr"] = self.resolved_lr()
        return out


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


# -- sources --------------------------------------------------------------------------------------------
@dataclass
class _Measured:
    """Labeled measurements on the library grid: x (n, points), groups of library indices per pattern."""

    x: np.ndarray
    groups: list[list[list[int]]]
    fractions: list[list[float] | None]
    paths: list[str]
    keys: list[set[str]] = field(default_factory=list)
    """Each pattern's labeled phases as formula keys (:func:`~labeltune.core.xrd.metrics.label_key`)."""

    def subset(self, rows: Sequence[int]) -> _Measured:
        """The patterns at ``rows``."""
        idx = list(rows)
        return _Measured(
            self.x[idx],
            [self.groups[i] for i in idx],
            [self.fractions[i] for i in idx],
            [self.paths[i] for i in idx],
            [self.keys[i] for i in idx] if self.keys else [],
        )


def source_kind(source: Path) -> str:
    """``"library"``, ``"simulated"`` or ``"measured"`` (raises UnusableInputError otherwise)."""
    if (source / LIBRARY_FILE).is_file():
        return "library"
    if (source / "patterns.npy").is_file() and (source / "meta.json").is_file():
        return "simulated"
    if (source / LABELS_FILE).is_file():
        return "measured"
    raise UnusableInputError(
        f"{source} is not an XRD library (library.json), simulated set (patterns.npy + meta.json) "
        "or labeled folder (labels.csv with path,phases[,fractions])"
    )


def read_labels_csv(folder: Path) -> list[tuple[Path, list[str], list[float] | None]]:
    """Rows of ``labels.csv``: (pattern path, phase tokens, fractions or None). Raises UnusableInputError."""
    path = folder / LABELS_FILE
    rows: list[tuple[Path, list[str], list[float] | None]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "path" not in reader.fieldnames or "phases" not in reader.fieldnames:
            raise UnusableInputError(f"{path}: needs a header with the columns path,phases[,fractions]")
        for line, row in enumerate(reader, start=2):
            rel = (row.get("path") or "").strip()
            if not rel:
                continue
            tokens = [t.strip() for t in (row.get("phases") or "").split(";") if t.strip()]
            raw = (row.get("fractions") or "").strip()
            fractions: list[float] | None = None
            if raw:
                try:
                    fractions = [float(v) for v in raw.split(";")]
                except ValueError:
                    raise UnusableInputError(
                        f"{path}:{line}: fractions must be numbers joined by ';'"
                    ) from None
                if len(fractions) != len(tokens):
                    raise UnusableInputError(
                        f"{path}:{line}: {len(tokens)} phases but {len(fractions)} fractions"
                    )
                total = sum(fractions)
                if total > 1.5:  # percent
                    fractions = [v / 100.0 for v in fractions]
                    total /= 100.0
                if abs(total - 1.0) > 0.02 or min(fractions) < 0:
                    raise UnusableInputError(
                        f"{path}:{line}: weight fractions must be >= 0 and sum to 1 (or 100 %), not {total:g}"
                    )
            p = Path(rel)
            rows.append((p if p.is_absolute() else folder / p, tokens, fractions))
    if not rows:
        raise UnusableInputError(f"{path} lists no patterns")
    return rows


def grid_of(library: Library, points: int | None = None) -> np.ndarray:
    """The model's 2θ grid for a library (0.02° steps by default)."""
    lo, hi = library.two_theta_range
    n = points if points is not None else round((hi - lo) / 0.02) + 1
    return np.linspace(lo, hi, n)


def pattern_on_grid(pattern: Any, library: Library, grid: np.ndarray) -> np.ndarray:
    """A measured :class:`Pattern` at the library wavelength, interpolated onto ``grid`` (zeros outside)."""
    if pattern.wavelength is not None and abs(pattern.wavelength - library.wavelength) > 1e-3:
        pattern = pattern.converted(library.wavelength)
    values = np.interp(grid, pattern.two_theta, pattern.intensity, left=0.0, right=0.0)
    values = np.maximum(values, 0.0)
    top = values.max()
    return (values / top if top > 0 else values).astype(np.float32)  # type: ignore[no-any-return]


def load_measured(
    folder: Path, library: Library, grid: np.ndarray, default_wavelength: float | None = None
) -> _Measured:
    """Read a labeled measurement folder onto ``grid`` (raises UnusableInputError with every problem)."""
    from labeltune.core.xrd.readers import read_pattern

    xs: list[np.ndarray] = []
    groups: list[list[list[int]]] = []
    fractions: list[list[float] | None] = []
    paths: list[str] = []
    keys: list[set[str]] = []
    problems: list[str] = []
    for path, tokens, fracs in read_labels_csv(folder):
        try:
            pattern = read_pattern(path, default_wavelength=default_wavelength)
            group = [resolve_label(t, library) for t in tokens]
            key = {label_key(t, library) for t in tokens}
        except (UnusableInputError, FormulaError, OSError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        xs.append(pattern_on_grid(pattern, library, grid))
        groups.append(group)
        fractions.append(fracs)
        paths.append(str(Path(path).resolve()))
        keys.append(key)
    if problems and not xs:
        raise UnusableInputError("no usable labeled pattern: " + "; ".join(problems[:5]))
    if problems:
        raise UnusableInputError(
            f"{len(problems)} labeled pattern(s) cannot be used (fix or remove them from labels.csv): "
            + "; ".join(problems[:5])
        )
    return _Measured(np.stack(xs), groups, fractions, paths, keys)


# -- losses -------------------------------------------------------------------------------------------
def _targets(groups: list[list[list[int]]], n_phases: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, weight) for the phases labeled unambiguously; ambiguous groups get weight 0 here."""
    target = torch.zeros(len(groups), n_phases)
    weight = torch.ones(len(groups), n_phases)
    for i, pattern_groups in enumerate(groups):
        for group in pattern_groups:
            if len(group) == 1:
                target[i, group[0]] = 1.0
            else:
                weight[i, group] = 0.0
    return target, weight


def _presence_loss(logits: torch.Tensor, groups: list[list[list[int]]]) -> torch.Tensor:
    target, weight = _targets(groups, logits.shape[1])
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum")
    terms = 0
    extra = logits.new_zeros(())
    for i, pattern_groups in enumerate(groups):
        for group in pattern_groups:
            if len(group) > 1:  # at least one polymorph present: the largest logit should be positive
                extra = extra + nn.functional.softplus(-logits[i, group].max())
                terms += 1
    return (bce + extra) / (weight.sum() + terms).clamp_min(1.0)


def _fraction_loss(frac_logits: torch.Tensor, fractions: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the true weight fractions and the softmax over the present phases."""
    masked = frac_logits.float().masked_fill(~present, -1e4)
    log_p = torch.log_softmax(masked, dim=1)
    return -(fractions * log_p).sum(dim=1).mean()


# -- evaluation ----------------------------------------------------------------------------------------
@dataclass
class _Eval:
    loss: float
    exact: float
    recall: float
    macro_f1: float
    fraction_mae: float


def _evaluate(
    net: XrdNet,
    x: torch.Tensor,
    present: torch.Tensor,
    fractions: torch.Tensor,
    stop_event: threading.Event | None = None,
) -> _Eval:
    net.eval()
    logits_all, frac_all = [], []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            check_stop(stop_event)
            logits, frac = net(x[i : i + 256])
            logits_all.append(logits)
            frac_all.append(frac)
    logits = torch.cat(logits_all)
    frac_logits = torch.cat(frac_all)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, present.float()).item()
    pred = logits > 0
    exact = (pred == present).all(dim=1).float().mean().item()
    tp = (pred & present).sum(0).float()
    fp = (pred & ~present).sum(0).float()
    fn = (~pred & present).sum(0).float()
    support = (tp + fn) > 0
    f1 = torch.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), torch.ones_like(tp))
    recall = (tp.sum() / (tp + fn).sum().clamp_min(1)).item()
    est = network_fractions(frac_logits, present)
    mae = ((est - fractions).abs().sum() / present.sum().clamp_min(1)).item() * 100.0
    macro = f1[support].mean().item() if support.any() else 0.0
    return _Eval(loss, exact, recall, macro, mae)


# -- the run ------------------------------------------------------------------------------------------
def _write_history(run_dir: Path, history: Sequence[EpochRecord]) -> None:
    names = list(EpochRecord.__dataclass_fields__)
    with open(run_dir / HISTORY_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        for record in history:
            writer.writerow([getattr(record, n) for n in names])


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
    tmp = run_dir / (MODEL_FILE + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(run_dir / MODEL_FILE)


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


def _copy_library(library: Library, run_dir: Path) -> None:
    if library.path is None:
        raise ValueError("the library has no folder")
    target = run_dir / LIBRARY_DIR
    if target.resolve() == Path(library.path).resolve():
        return
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(library.path, target)


def train_xrd(
    source: Path,
    config: XrdTrainConfig,
    run_dir: Path,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    *,
    default_wavelength: float | None = None,
) -> XrdRunResult:
    """Train (or fine-tune from ``config.init``) and write the run folder; Stop keeps the best model."""
    report = progress or no_progress
    config.validate()
    source = Path(source)
    run_dir = Path(run_dir)
    kind = source_kind(source)
    init_net: XrdNet | None = None
    init_config: dict[str, Any] | None = None
    init_state: dict[str, torch.Tensor] | None = None
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
    if init_net is not None and init_library.names != library.names:
        raise UnusableInputError(
            f"the starting model {config.init} was trained on other phases than {source}: "
            "use the same library",
            cli=f"--init {config.init} was trained on other phases than {source}: use the same library",
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n_phases = len(library.phases)
    if init_config is not None:
        grid = np.linspace(
            init_config["grid"]["two_theta_min"],
            init_config["grid"]["two_theta_max"],
            init_config["grid"]["points"],
        )
    elif kind == "simulated":
        g = meta["grid"]
        grid = np.linspace(g["two_theta_min"], g["two_theta_max"], g["points"])
    else:
        grid = grid_of(library)
    sim_config = SimulationConfig(
        two_theta_min=float(grid[0]),
        two_theta_max=float(grid[-1]),
        points=len(grid),
        max_phases=min(config.max_phases, n_phases),
        min_fraction=config.min_fraction,
        monochromatic=config.monochromatic,
    )
    net = init_net if init_net is not None else XrdNet(XrdNetConfig(n_phases=n_phases, points=len(grid)))
    run_dir.mkdir(parents=True, exist_ok=True)
    _copy_library(library, run_dir)

    # -- data -------------------------------------------------------------------------------------------
    measured: _Measured | None = None
    fixed_x: torch.Tensor | None = None
    fixed_present: torch.Tensor | None = None
    fixed_frac: torch.Tensor | None = None
    report(Progress("Preparing validation patterns", 0, 0))
    val = simulate(library, config.validation_patterns, sim_config, seed=config.seed + 1_000_003)
    val_x = torch.from_numpy(val.x)
    val_present = torch.from_numpy(val.present)
    val_frac = torch.from_numpy(val.fractions)
    if kind == "simulated":
        x_all = np.load(source / "patterns.npy", mmap_mode="r")
        if x_all.shape[1] != len(grid):
            raise UnusableInputError(
                f"{source}: patterns have {x_all.shape[1]} points, meta.json says {len(grid)}"
            )
        with (source / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        names = library.names
        fr = np.array([[float(r.get(n) or 0.0) for n in names] for r in rows], dtype=np.float32)
        fixed_x = torch.from_numpy(np.asarray(x_all, dtype=np.float32))
        fixed_frac = torch.from_numpy(fr)
        fixed_present = fixed_frac > 0
    elif kind == "measured":
        report(Progress("Reading labeled patterns", 0, 0))
        measured = load_measured(source, library, grid, default_wavelength)

    per_epoch = len(fixed_x) if fixed_x is not None else config.patterns_per_epoch
    batches = max(1, per_epoch // config.batch_size)
    total_steps = batches * config.epochs
    optimizer, scheduler = _optimizer(net, config, total_steps, fine_tuning=init_net is not None)
    history: list[EpochRecord] = []
    best_loss = math.inf
    stopped = False
    fixed = None if fixed_x is None else (fixed_x, fixed_present, fixed_frac)
    source_batches = _Batches(config, library, sim_config, measured, fixed, int(rng.integers(2**31)), rng)
    write_config = _config_writer(run_dir, config, net, library, grid, source, kind, measured)
    write_config()
    if on_start is not None:
        on_start(config.epochs, batches)
    step = 0
    try:
        for epoch in range(config.epochs):
            net.train()
            t0 = time.perf_counter()
            loss_sum = 0.0
            exact_sum = 0.0
            seen = 0
            n_labeled = 0
            for b, batch in enumerate(source_batches.epoch(batches, stop_event)):
                loss, exact = _step(net, optimizer, batch, config, stop_event)
                if step < total_steps - 1:
                    scheduler.step()
                step += 1
                exact_sum += exact
                n_labeled += len(batch.present)
                loss_sum += loss * len(batch.x)
                seen += len(batch.x)
                report(
                    Progress(
                        f"Epoch {epoch + 1}/{config.epochs}",
                        b + 1,
                        batches,
                        f"loss {loss_sum / max(seen, 1):.4f}",
                    )
                )
            ev = _evaluate(net, val_x, val_present, val_frac, stop_event)
            record = EpochRecord(
                epoch=epoch + 1,
                train_loss=loss_sum / max(seen, 1),
                train_accuracy=exact_sum / max(n_labeled, 1),
                val_loss=ev.loss,
                val_accuracy=ev.exact,
                val_balanced_accuracy=ev.recall,
                val_macro_f1=ev.macro_f1,
                lr=float(optimizer.param_groups[0]["lr"]),
                seconds=time.perf_counter() - t0,
            )
            history.append(record)
            if ev.loss < best_loss or measured is not None:
                best_loss = ev.loss
                save_xrd_model(run_dir, net)
            _write_history(run_dir, history)
            if on_epoch is not None:
                on_epoch(record)
    except (StoppedError, KeyboardInterrupt) as exc:
        stopped = True
        if not history:
            save_xrd_model(run_dir, net)
        if isinstance(exc, KeyboardInterrupt):
            _finish(run_dir, net, history, library, val_x, val_present, val_frac, measured, stopped=True)
            raise
    metrics = _finish(run_dir, net, history, library, val_x, val_present, val_frac, measured, stopped)
    if init_state is not None:
        from labeltune.core.xrd.model_check import compare_with_previous

        comparison = compare_with_previous(
            Path(str(config.init)),
            init_state,
            net.config,
            library,
            sim_config,
            measured,
            config,
            (val_x, val_present, val_frac),
            float(metrics["simulated_validation"]["exact_accuracy"]),
            kind,
            stopped,
            report,
            stop_event,
        )
        metrics.update(comparison.metrics_json())
        _write_metrics(run_dir, metrics)
    return XrdRunResult(run_dir, history, metrics, stopped, library.names)


@dataclass
class _Batch:
    """One training batch: inputs, label groups per pattern, and fractions/presence of the simulated rows."""

    x: torch.Tensor
    groups: list[list[list[int]]]
    fractions: torch.Tensor
    present: torch.Tensor


class _Batches:
    """Training batches: a fixed simulated set in random order, or fresh simulated patterns.

    With measurements, every batch also draws ``measured_share`` of them (augmented).
    """

    def __init__(
        self,
        config: XrdTrainConfig,
        library: Library,
        sim_config: SimulationConfig,
        measured: _Measured | None,
        fixed: tuple[Any, Any, Any] | None,
        sim_seed: int,
        rng: np.random.Generator,
    ) -> None:
        self.config = config
        self.library = library
        self.sim_config = sim_config
        self.measured = measured
        self.fixed = fixed
        self.sim_seed = sim_seed
        self.rng = rng

    def epoch(self, batches: int, stop_event: threading.Event | None) -> Iterator[_Batch]:
        """The batches of one epoch (Stop is checked before each)."""
        size = self.config.batch_size
        order = torch.randperm(len(self.fixed[0])) if self.fixed is not None else None
        pool_x = pool_p = pool_f = None
        for b in range(batches):
            check_stop(stop_event)
            if order is not None:
                assert self.fixed is not None
                fixed_x, fixed_present, fixed_frac = self.fixed
                idx = order[b * size : (b + 1) * size]
                xb, pb, fb = fixed_x[idx], fixed_present[idx], fixed_frac[idx]
            else:
                n_sim = size
                if self.measured is not None:
                    n_sim = size - round(size * self.config.measured_share)
                if pool_x is None or len(pool_x) < n_sim:
                    wanted = max(n_sim, min(512, n_sim * (batches - b)))  # no more than the epoch needs
                    sim = simulate(self.library, wanted, self.sim_config, seed=self.sim_seed)
                    self.sim_seed += 1
                    pool_x = torch.from_numpy(sim.x)
                    pool_p = torch.from_numpy(sim.present)
                    pool_f = torch.from_numpy(sim.fractions)
                assert pool_p is not None and pool_f is not None
                xb, pb, fb = pool_x[:n_sim], pool_p[:n_sim], pool_f[:n_sim]
                pool_x, pool_p, pool_f = pool_x[n_sim:], pool_p[n_sim:], pool_f[n_sim:]
            groups = [[[int(j)] for j in torch.nonzero(row).flatten()] for row in pb]
            if self.measured is not None:
                xm, gm = _measured_batch(self.measured, size - len(xb), self.rng)
                xb = torch.cat([xb, xm])
                groups = groups + gm
            yield _Batch(xb, groups, fb, pb)


def _optimizer(
    net: XrdNet, config: XrdTrainConfig, total_steps: int, fine_tuning: bool
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR]:
    lr = config.resolved_lr()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.05 if fine_tuning else 0.15
    )
    return optimizer, scheduler


def _step(
    net: XrdNet,
    optimizer: torch.optim.Optimizer,
    batch: _Batch,
    config: XrdTrainConfig,
    stop_event: threading.Event | None = None,
) -> tuple[float, float]:
    """One optimisation step; returns the loss and how many simulated rows had every phase right."""
    logits, frac_logits = net(batch.x)
    loss = _presence_loss(logits, batch.groups)
    if len(batch.fractions):
        n_f = len(batch.fractions)
        loss = loss + config.fraction_weight * _fraction_loss(
            frac_logits[:n_f], batch.fractions, batch.present
        )
    check_stop(stop_event)  # between forward and backward: the backward costs the most
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        pred = logits[: len(batch.present)] > 0
        exact = (pred == batch.present).all(dim=1).float().sum().item()
    return float(loss.item()), float(exact)


def fine_tune_net(
    net: XrdNet,
    config: XrdTrainConfig,
    library: Library,
    sim_config: SimulationConfig,
    measured: _Measured,
    seed: int,
    report: ProgressCallback,
    stop_event: threading.Event | None,
    stage: str,
) -> XrdNet:
    """Fine-tune ``net`` in place on ``measured`` as :func:`train_xrd` does; returns it in eval mode.

    No validation and no files: these are the held-out check's per-fold models.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    batches = max(1, config.patterns_per_epoch // config.batch_size)
    total_steps = batches * config.epochs
    optimizer, scheduler = _optimizer(net, config, total_steps, fine_tuning=True)
    source = _Batches(config, library, sim_config, measured, None, int(rng.integers(2**31)), rng)
    step = 0
    for epoch in range(config.epochs):
        net.train()
        for b, batch in enumerate(source.epoch(batches, stop_event)):
            _step(net, optimizer, batch, config, stop_event)
            if step < total_steps - 1:
                scheduler.step()
            step += 1
            report(Progress(f"{stage}, epoch {epoch + 1}/{config.epochs}", b + 1, batches))
    return net.eval()


def _measured_batch(
    measured: _Measured, n: int, rng: np.random.Generator
) -> tuple[torch.Tensor, list[list[list[int]]]]:
    """``n`` measurements drawn with replacement, augmented: small shift, intensity scale and noise."""
    idx = rng.integers(0, len(measured.x), n)
    x = measured.x[idx].copy()
    shift = rng.integers(-3, 4, n)
    for i in range(n):
        if shift[i]:
            x[i] = np.roll(x[i], int(shift[i]))
    gain = np.exp(rng.normal(0.0, 0.15, (n, 1))).astype(np.float32)
    noise = rng.normal(0.0, 0.01, x.shape).astype(np.float32)
    x = np.clip(x * gain + noise * np.sqrt(np.maximum(x, 1e-4)), 0.0, None)
    return torch.from_numpy(x), [measured.groups[i] for i in idx]


def _config_writer(
    run_dir: Path,
    config: XrdTrainConfig,
    net: XrdNet,
    library: Library,
    grid: np.ndarray,
    source: Path,
    kind: str,
    measured: _Measured | None,
) -> Callable[[], None]:
    created = dt.datetime.now().astimezone().isoformat(timespec="seconds")

    def write() -> None:
        data = {
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
        tmp = run_dir / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(run_dir / CONFIG_FILE)

    return write


def _finish(
    run_dir: Path,
    net: XrdNet,
    history: list[EpochRecord],
    library: Library,
    val_x: torch.Tensor,
    val_present: torch.Tensor,
    val_frac: torch.Tensor,
    measured: _Measured | None,
    stopped: bool,
) -> dict[str, Any]:
    from safetensors.torch import load_file

    _write_history(run_dir, history)
    net.load_state_dict(load_file(str(run_dir / MODEL_FILE), device="cpu"))
    ev = _evaluate(net, val_x, val_present, val_frac)
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
    _write_metrics(run_dir, metrics)
    return metrics


def _write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    tmp = run_dir / (METRICS_FILE + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    tmp.replace(run_dir / METRICS_FILE)


__all__ = [
    "DOMAIN",
    "XrdRunResult",
    "XrdTrainConfig",
    "grid_of",
    "load_measured",
    "load_xrd_net",
    "pattern_on_grid",
    "read_labels_csv",
    "read_run_config",
    "source_kind",
    "train_xrd",
]
