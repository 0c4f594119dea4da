"""What XRD plugs into the trainer: a batch source of simulated (+ measured) patterns and its loss.

:class:`SimulatedBatches` synthesises simulated mixtures per batch (or draws from a fixed simulated set)
and mixes in the labeled measurements, augmented; :class:`XrdTask` is the presence + fraction loss, the
evaluation on held-out simulated patterns and XRD's best-epoch rule: the lowest validation loss, or the
last epoch when fine-tuning on measurements (the simulated validation does not show what they teach).
:func:`fine_tune_net` is the held-out check's per-fold fine-tuning, through the same trainer.
See docs/adr/0022-one-trainer.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from labeltune.core.progress import ProgressCallback, StoppedError, check_stop
from labeltune.core.train_callbacks import ProgressBar
from labeltune.core.train_step import EpochRecord, StepOutput, TrainingTask, Validation
from labeltune.core.trainer import Trainer
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.measured import Measured
from labeltune.core.xrd.model import XrdNet, network_fractions
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig


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
class XrdEval:
    """Numbers of one evaluation on simulated patterns."""

    loss: float
    exact: float
    recall: float
    macro_f1: float
    fraction_mae: float


def evaluate_net(
    net: XrdNet,
    x: torch.Tensor,
    present: torch.Tensor,
    fractions: torch.Tensor,
    stop_event: threading.Event | None = None,
) -> XrdEval:
    """Presence loss, exact sets, recall, macro F1 and fraction error of ``net`` on the given patterns."""
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
    return XrdEval(loss, exact, recall, macro, mae)


# -- batches -------------------------------------------------------------------------------------------
@dataclass
class XrdBatch:
    """One training batch: inputs, label groups per pattern, and fractions/presence of the simulated rows."""

    x: torch.Tensor
    groups: list[list[list[int]]]
    fractions: torch.Tensor
    present: torch.Tensor
    measured_fractions: torch.Tensor | None = None
    """The measured rows' labeled weight fractions (n_measured, n_phases); a row of zeros where unknown."""


class SimulatedBatches:
    """Training batches: a fixed simulated set in random order, or fresh simulated patterns.

    With measurements, every batch also draws ``measured_share`` of them (augmented). ``batches`` per
    epoch; Stop is checked before each.
    """

    device = torch.device("cpu")

    def __init__(
        self,
        config: XrdTrainConfig,
        library: Library,
        sim_config: SimulationConfig,
        measured: Measured | None,
        fixed: tuple[Any, Any, Any] | None,
        sim_seed: int,
        rng: np.random.Generator,
        batches: int,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.library = library
        self.sim_config = sim_config
        self.measured = measured
        self.fixed = fixed
        self.sim_seed = sim_seed
        self.rng = rng
        self.n_batches = batches
        self.stop_event = stop_event
        #: ``(rank, ranks)`` under torchrun: this process makes its share of each batch (core/distributed.py).
        self.shard = (0, 1)
        self._rank_rng = False

    def __len__(self) -> int:
        return self.n_batches

    @property
    def batch_size(self) -> int:
        """Patterns per optimiser step (what history.csv records as the batch)."""
        return int(self.config.batch_size)

    def batches(self, epoch: int) -> Iterator[XrdBatch]:
        """The batches of one epoch (each epoch draws new ones: ``epoch`` itself is not needed)."""
        rank, ranks = self.shard
        if ranks > 1 and not self._rank_rng:  # each rank draws its own measurements
            self.rng, self._rank_rng = np.random.default_rng([int(self.rng.integers(2**31)), rank]), True
        size = len(range(rank, self.config.batch_size, ranks))  # this rank's share of each step
        batches = self.n_batches
        order = torch.randperm(len(self.fixed[0])) if self.fixed is not None else None
        pool_x = pool_p = pool_f = None
        for b in range(batches):
            check_stop(self.stop_event)
            if order is not None:
                assert self.fixed is not None
                fixed_x, fixed_present, fixed_frac = self.fixed
                whole = self.config.batch_size
                idx = order[b * whole : (b + 1) * whole][rank::ranks]
                xb, pb, fb = fixed_x[idx], fixed_present[idx], fixed_frac[idx]
            else:
                n_sim = self.config.batch_size
                if self.measured is not None:
                    n_sim -= round(n_sim * self.config.measured_share)
                n_sim = len(range(rank, n_sim, ranks))
                if pool_x is None or len(pool_x) < n_sim:
                    wanted = max(n_sim, min(512, n_sim * (batches - b)))  # no more than the epoch needs
                    sim = simulate(self.library, wanted, self.sim_config, seed=self.sim_seed * ranks + rank)
                    self.sim_seed += 1
                    pool_x = torch.from_numpy(sim.x)
                    pool_p = torch.from_numpy(sim.present)
                    pool_f = torch.from_numpy(sim.fractions)
                assert pool_p is not None and pool_f is not None
                xb, pb, fb = pool_x[:n_sim], pool_p[:n_sim], pool_f[:n_sim]
                pool_x, pool_p, pool_f = pool_x[n_sim:], pool_p[n_sim:], pool_f[n_sim:]
            groups = [[[int(j)] for j in torch.nonzero(row).flatten()] for row in pb]
            if self.measured is not None:
                xm, gm, fm = _measured_batch(self.measured, size - len(xb), self.rng, pb.shape[1])
                xb = torch.cat([xb, xm])
                groups = groups + gm
                yield XrdBatch(xb, groups, fb, pb, fm)
                continue
            yield XrdBatch(xb, groups, fb, pb)


def _measured_fractions(measured: Measured, idx: np.ndarray, n_phases: int) -> torch.Tensor:
    """Labeled weight fractions of the rows ``idx`` as (n, n_phases); zeros where a row has none.

    Only labels whose every phase is one library phase count: a formula standing for several polymorphs
    does not say which one holds the weight.
    """
    out = torch.zeros((len(idx), n_phases), dtype=torch.float32)
    for row, i in enumerate(idx):
        fractions, groups = measured.fractions[i], measured.groups[i]
        if fractions is not None and all(len(g) == 1 for g in groups):
            for group, value in zip(groups, fractions, strict=True):
                out[row, group[0]] += float(value)
    return out


def _measured_batch(
    measured: Measured, n: int, rng: np.random.Generator, n_phases: int
) -> tuple[torch.Tensor, list[list[list[int]]], torch.Tensor]:
    """``n`` measurements drawn with replacement, augmented: small shift, intensity scale and noise.

    Also their labeled weight fractions (:func:`_measured_fractions`), which the fraction head learns.
    """
    idx = rng.integers(0, len(measured.x), n)
    x = measured.x[idx].copy()
    shift = rng.integers(-3, 4, n)
    for i in range(n):
        if shift[i]:
            x[i] = np.roll(x[i], int(shift[i]))
    gain = np.exp(rng.normal(0.0, 0.15, (n, 1))).astype(np.float32)
    noise = rng.normal(0.0, 0.01, x.shape).astype(np.float32)
    x = np.clip(x * gain + noise * np.sqrt(np.maximum(x, 1e-4)), 0.0, None)
    return (
        torch.from_numpy(x),
        [measured.groups[i] for i in idx],
        _measured_fractions(measured, idx, n_phases),
    )


# -- the task ------------------------------------------------------------------------------------------
class XrdTask(TrainingTask):
    """Presence (+ weight-fraction) loss per batch; validation on held-out simulated patterns.

    ``validation`` is ``(x, present, fractions)`` (None: no validation). The best epoch has the lowest
    validation loss; with ``keep_last`` (fine-tuning on measurements) it is always the latest.
    """

    def __init__(
        self,
        config: XrdTrainConfig,
        validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        keep_last: bool = False,
    ) -> None:
        self.config, self.validation, self.keep_last = config, validation, keep_last

    def size(self, batch: Any) -> int:
        """Patterns in the batch (simulated and measured)."""
        return len(batch.x)

    def split(self, batch: Any, size: int) -> Iterator[Any]:
        """Slices of ``size`` patterns (after running out of memory; the simulated rows come first).

        The loss is normalised within each slice, so the accumulated step is the whole batch's up to that
        normalisation (as class weights within an image micro-batch).
        """
        n_sim = len(batch.fractions)
        for first in range(0, len(batch.x), size):
            last = first + size
            measured = batch.measured_fractions
            yield XrdBatch(
                batch.x[first:last],
                batch.groups[first:last],
                batch.fractions[first : min(last, n_sim)],
                batch.present[first : min(last, len(batch.present))],
                None if measured is None else measured[max(first - n_sim, 0) : max(last - n_sim, 0)],
            )

    def loss(self, model: nn.Module, batch: Any) -> StepOutput:
        """The loss; correct = simulated rows with every phase right (measured rows are not counted)."""
        logits, frac_logits = model(batch.x)
        loss = _presence_loss(logits, batch.groups)
        if len(batch.fractions):
            n_f = len(batch.fractions)
            loss = loss + self.config.fraction_weight * _fraction_loss(
                frac_logits[:n_f], batch.fractions, batch.present
            )
        if batch.measured_fractions is not None:  # labeled measurements with weighed fractions
            known = batch.measured_fractions.sum(dim=1) > 0
            if bool(known.any()):
                target = batch.measured_fractions[known]
                measured_logits = frac_logits[len(batch.fractions) :][known]
                loss = loss + self.config.fraction_weight * _fraction_loss(
                    measured_logits, target, target > 0
                )
        with torch.no_grad():
            pred = logits[: len(batch.present)] > 0
            exact = (pred == batch.present).all(dim=1).float().sum().item()
        return StepOutput(loss, float(exact), len(batch.present))

    def validate(self, model: nn.Module, stop_event: threading.Event) -> Validation:
        """Exact sets as accuracy, recall as balanced accuracy, macro F1 (NaN without validation)."""
        if self.validation is None:
            return Validation.none()
        ev = evaluate_net(model, *self.validation, stop_event=stop_event)  # type: ignore[arg-type]
        return Validation(ev.loss, ev.exact, ev.recall, ev.macro_f1)

    def score(self, record: EpochRecord) -> tuple[float, float]:
        """The latest epoch (``keep_last``), else the lowest validation loss."""
        return (float(record.epoch), 0.0) if self.keep_last else (-record.val_loss, 0.0)


def make_optimizer(
    net: XrdNet, config: XrdTrainConfig, total_steps: int, fine_tuning: bool
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW with a one-cycle schedule over ``total_steps`` steps (a shorter warm-up when fine-tuning)."""
    lr = config.resolved_lr()
    from labeltune.core.optimizer import adamw

    optimizer = adamw(net.parameters(), lr=lr, weight_decay=config.weight_decay)  # fused (docs/adr/0060)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.05 if fine_tuning else 0.15
    )
    return optimizer, scheduler


def xrd_trainer(
    net: XrdNet,
    config: XrdTrainConfig,
    source: SimulatedBatches,
    task: XrdTask,
    fine_tuning: bool,
    stop_event: threading.Event,
    callbacks: list[Any],
) -> Trainer:
    """The trainer of an XRD run: AdamW and a one-cycle schedule stepped after every batch."""
    optimizer, scheduler = make_optimizer(net, config, len(source) * config.epochs, fine_tuning)
    return Trainer(
        net,
        optimizer,
        task,
        source,
        None,
        config.epochs,
        scheduler=scheduler,
        scheduler_interval="step",
        stop_event=stop_event,
        callbacks=callbacks,
    )


def fine_tune_net(
    net: XrdNet,
    config: XrdTrainConfig,
    library: Library,
    sim_config: SimulationConfig,
    measured: Measured,
    seed: int,
    report: ProgressCallback,
    stop_event: threading.Event | None,
    stage: str,
) -> XrdNet:
    """Fine-tune ``net`` in place on ``measured`` as ``train_xrd`` does; returns it in eval mode.

    No validation and no files: these are the held-out check's per-fold models. Raises
    :class:`StoppedError` when Stop is pressed meanwhile.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    batches = max(1, config.patterns_per_epoch // config.batch_size)
    event = stop_event or threading.Event()
    source = SimulatedBatches(
        config, library, sim_config, measured, None, int(rng.integers(2**31)), rng, batches, event
    )
    progress = ProgressBar(report, config.epochs, per_epoch=True, prefix=stage, show_loss=False)
    trainer = xrd_trainer(net, config, source, XrdTask(config, None, keep_last=True), True, event, [progress])
    if trainer.fit().stopped_by_user:
        raise StoppedError()
    return net.eval()
