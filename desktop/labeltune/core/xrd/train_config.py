"""The settings of an XRD training run (:class:`XrdTrainConfig`) and their validation; no torch import.

The GUI builds one in its own thread and hands it to :class:`~labeltune.workers.xrd.XrdTrainWorker`;
``tests/core/test_train_config.py`` checks that importing this module leaves ``torch`` unloaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


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
    """Smallest weight fraction of a phase in a simulated training pattern, minor phases aside."""
    minor_probability: float = 0.25
    """Share of the simulated mixtures holding one minor phase of 0.5-3 wt % (issue 14: so the network
    proposes minor phases; the fit decides whether the pattern shows them, ADR 0046)."""
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
