"""Is a fine-tuned XRD model better than the one it started from? Judged on held-out labeled measurements.

A fine-tune learns from the project's labeled measurements, so those patterns cannot judge the run that saw
them, and simulated validation judges something else (a user trial: 69.0 % vs 72.6 % on simulated patterns,
the measurements never asked). The check (ADR 13):

* split the labeled patterns into ``check_folds`` folds (one pattern per fold when there are fewer:
  leave-one-out); for each fold, fine-tune a fresh copy of the previous model on the other folds exactly as
  the run itself was fine-tuned, and call the phases of the held-out fold;
* so every pattern is called by a model that did not see it, and the previous model calls all of them:
  both are scored on the same patterns, by formula as ``labeltune evaluate`` does — patterns with every
  phase right, then phase F1;
* the better one wins; on a tie the same simulated validation patterns decide, and the fine-tuned one wins
  when it is no worse there. Without two labeled patterns (or when stopped before the check), the models
  are compared on the simulated validation patterns only, and the comparison says why.

The network's calls are scored (threshold 0.5), not the least-squares fit that refines them in the app:
fine-tuning changes the network, and the fit of every fold would cost minutes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labeltune.core.progress import ProgressCallback, StoppedError
from labeltune.core.xrd.library import Library
from labeltune.core.xrd.measured import Measured
from labeltune.core.xrd.metrics import canonical_formula, phase_set_metrics
from labeltune.core.xrd.model import XrdNet, XrdNetConfig
from labeltune.core.xrd.run_files import CONFIG_FILE
from labeltune.core.xrd.simulate import SimulationConfig
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.train_task import evaluate_net, fine_tune_net

MEASURED = "measured"
SIMULATED = "simulated"


@dataclass
class MeasuredScore:
    """How well one model called the phases of a set of labeled measurements (by formula)."""

    patterns: int
    exact: int
    """Patterns whose every phase was called, and nothing else."""
    precision: float
    recall: float
    f1: float

    @classmethod
    def of(cls, truth: Sequence[set[str]], predicted: Sequence[set[str]]) -> MeasuredScore:
        """Score predicted formula-key sets against the labeled ones."""
        m = phase_set_metrics(list(truth), list(predicted))
        f1 = 2 * m.precision * m.recall / (m.precision + m.recall) if m.precision + m.recall else 0.0
        return cls(m.n, round(m.exact_accuracy * m.n), m.precision, m.recall, f1)

    def rank(self) -> tuple[int, float]:
        """What "better" means: more patterns fully right, then a higher phase F1."""
        return self.exact, round(self.f1, 4)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "patterns": self.patterns,
            "exact": self.exact,
            "exact_accuracy": round(self.exact / self.patterns, 4) if self.patterns else 0.0,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }

    @classmethod
    def from_json(cls, data: Any) -> MeasuredScore | None:
        """The score in ``data``, or None when it is not one."""
        try:
            return cls(
                int(data["patterns"]),
                int(data["exact"]),
                float(data["precision"]),
                float(data["recall"]),
                float(data["f1"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class Comparison:
    """The fine-tuned model against the previous one, and which the project should use."""

    previous: str
    """The previous model's run folder."""
    basis: str
    """``"measured"`` (held-out labeled patterns) or ``"simulated"`` (simulated validation only)."""
    reason: str | None = None
    """Why the basis is ``"simulated"``."""
    folds: int = 0
    complete: bool = True
    """False when Stop ended the held-out check early: only the folds done are scored."""
    previous_score: MeasuredScore | None = None
    new_score: MeasuredScore | None = None
    previous_trained_on: int = 0
    """How many scored patterns the previous model was itself fine-tuned on (its score is optimistic)."""
    simulated_patterns: int = 0
    simulated_previous: float = 0.0
    simulated_new: float = 0.0
    winner: str = "new"

    @property
    def adopt(self) -> bool:
        """Whether the fine-tuned model should replace the previous one."""
        return self.winner == "new"

    @property
    def previous_name(self) -> str:
        """The previous model's folder name."""
        return Path(self.previous).name

    def decide(self) -> None:
        """Set :attr:`winner`: measured score first, the simulated validation on a tie or without one."""
        if self.basis == MEASURED and self.new_score is not None and self.previous_score is not None:
            new, old = self.new_score.rank(), self.previous_score.rank()
            if new != old:
                self.winner = "new" if new > old else "previous"
                return
        self.winner = "new" if self.simulated_new >= self.simulated_previous else "previous"

    def text(self) -> str:
        """The comparison in plain words (facts only; the caller says what it did about it)."""
        sim = (
            f"on {self.simulated_patterns} simulated validation patterns, all phases right in "
            f"{self.simulated_new * 100:.1f} % (fine-tuned) vs "
            f"{self.simulated_previous * 100:.1f} % (current)"
        )
        new, old = self.new_score, self.previous_score
        if self.basis != MEASURED or new is None or old is None:
            return (
                f"Compared with the current model ({self.previous_name}) on simulated patterns only, because "
                f"{self.reason or 'no labeled pattern could be held out'}: {sim}."
            )
        n = new.patterns
        how = "leave-one-out" if self.folds >= n else f"{self.folds}-fold cross-validation"
        early = "; stopped early, so only these were checked" if not self.complete else ""
        text = (
            f"On {n} labeled pattern{'s' if n != 1 else ''}, each held out of the fine-tuning once "
            f"({how}{early}), "
            f"the fine-tuned model found all phases in {new.exact} of {n}, the current one "
            f"({self.previous_name}) in {old.exact} of {n}"
        )
        if new.exact == old.exact:
            text += f"; phase F1 {new.f1:.2f} vs {old.f1:.2f}"
            if new.rank() == old.rank():
                text += f"; {sim}"
        text += "."
        if self.previous_trained_on:
            text += (
                f" The current model was itself fine-tuned on {self.previous_trained_on} of them, so its "
                "figure is optimistic."
            )
        return text

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``metrics.json``'s ``comparison``)."""
        return {
            "previous": self.previous,
            "basis": self.basis,
            "reason": self.reason,
            "folds": self.folds,
            "complete": self.complete,
            "previous_score": None if self.previous_score is None else self.previous_score.to_json(),
            "new_score": None if self.new_score is None else self.new_score.to_json(),
            "previous_trained_on": self.previous_trained_on,
            "simulated": {
                "patterns": self.simulated_patterns,
                "previous_exact_accuracy": round(self.simulated_previous, 4),
                "new_exact_accuracy": round(self.simulated_new, 4),
            },
            "winner": self.winner,
            "adopt": self.adopt,
            "text": self.text(),
        }

    @classmethod
    def from_json(cls, data: Any) -> Comparison | None:
        """The comparison in ``data`` (a ``metrics.json``'s ``comparison``), or None."""
        if not isinstance(data, dict) or not isinstance(data.get("previous"), str):
            return None
        raw = data.get("simulated")
        sim: dict[str, Any] = raw if isinstance(raw, dict) else {}
        try:
            return cls(
                previous=data["previous"],
                basis=str(data.get("basis", SIMULATED)),
                reason=data.get("reason"),
                folds=int(data.get("folds") or 0),
                complete=bool(data.get("complete", True)),
                previous_score=MeasuredScore.from_json(data.get("previous_score")),
                new_score=MeasuredScore.from_json(data.get("new_score")),
                previous_trained_on=int(data.get("previous_trained_on") or 0),
                simulated_patterns=int(sim.get("patterns") or 0),
                simulated_previous=float(sim.get("previous_exact_accuracy") or 0.0),
                simulated_new=float(sim.get("new_exact_accuracy") or 0.0),
                winner=str(data.get("winner", "new")),
            )
        except (TypeError, ValueError):
            return None

    def metrics_json(self) -> dict[str, Any]:
        """What goes into the new run's ``metrics.json``: the comparison, and its own held-out score."""
        out: dict[str, Any] = {"comparison": self.to_json()}
        if self.basis == MEASURED and self.new_score is not None:
            out["measured_heldout"] = {**self.new_score.to_json(), "folds": self.folds}
        return out


def predicted_keys(net: XrdNet, x: np.ndarray, phase_keys: Sequence[str]) -> list[set[str]]:
    """The formula keys of the phases the network calls present (probability >= 0.5) in each row of ``x``."""
    net.eval()
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(np.ascontiguousarray(x)))
    called = (logits > 0).numpy()
    return [{phase_keys[int(j)] for j in np.flatnonzero(row)} for row in called]


def fold_rows(n: int, folds: int, seed: int) -> list[list[int]]:
    """``n`` pattern indices shuffled (by ``seed``) into ``min(folds, n)`` folds of near-equal size."""
    order = np.random.default_rng(seed).permutation(n)
    return [sorted(int(i) for i in part) for part in np.array_split(order, min(folds, n)) if len(part)]


def _trained_on(previous: Path, paths: Sequence[str]) -> int:
    """How many of ``paths`` the previous run was fine-tuned on (its ``config.json`` lists them)."""
    try:
        seen = json.loads((previous / CONFIG_FILE).read_text(encoding="utf-8")).get("measured_patterns") or []
    except (OSError, ValueError, AttributeError):
        return 0
    return len(set(map(str, seen)) & set(paths))


def compare_with_previous(
    previous: Path,
    init_state: dict[str, torch.Tensor],
    net_config: XrdNetConfig,
    library: Library,
    sim_config: SimulationConfig,
    measured: Measured | None,
    config: XrdTrainConfig,
    validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    simulated_new: float,
    kind: str,
    stopped: bool,
    report: ProgressCallback,
    stop_event: threading.Event | None,
) -> Comparison:
    """Compare the run just trained from ``init_state`` with that previous model (module docstring)."""

    def previous_net() -> XrdNet:
        net = XrdNet(net_config)
        net.load_state_dict(init_state)
        return net.eval()

    val_x, val_present, val_frac = validation
    comparison = Comparison(
        previous=str(previous),
        basis=SIMULATED,
        simulated_patterns=len(val_x),
        simulated_previous=evaluate_net(previous_net(), val_x, val_present, val_frac).exact,
        simulated_new=simulated_new,
    )
    n = 0 if measured is None else len(measured.x)
    if kind != MEASURED or measured is None:
        comparison.reason = "this run learned from simulated patterns only: there are no labeled measurements"
    elif stopped:
        comparison.reason = "the training was stopped before the held-out check"
    elif n < 2:
        comparison.reason = (
            "only 1 pattern is labeled: one must be held out while the others are learned from"
        )
    elif config.check_folds < 2:
        comparison.reason = "the held-out check was turned off (fewer than 2 check folds)"
    else:
        _held_out_check(comparison, previous_net, library, sim_config, measured, config, report, stop_event)
    comparison.decide()
    return comparison


def _held_out_check(
    comparison: Comparison,
    previous_net: Any,
    library: Library,
    sim_config: SimulationConfig,
    measured: Measured,
    config: XrdTrainConfig,
    report: ProgressCallback,
    stop_event: threading.Event | None,
) -> None:
    """Fill in the measured scores: fine-tune per fold, call each held-out fold's phases."""
    phase_keys = [canonical_formula(p.formula) for p in library.phases]
    folds = fold_rows(len(measured.x), config.check_folds, config.seed)
    scored: list[int] = []
    new_keys: list[set[str]] = []
    for f, held_out in enumerate(folds):
        rest = [i for i in range(len(measured.x)) if i not in held_out]
        try:
            net = fine_tune_net(
                previous_net(),
                config,
                library,
                sim_config,
                measured.subset(rest),
                config.seed + 1 + f,
                report,
                stop_event,
                f"Checking on held-out patterns: fold {f + 1}/{len(folds)}",
            )
        except StoppedError:
            comparison.complete = False
            break
        new_keys += predicted_keys(net, measured.x[held_out], phase_keys)
        scored += held_out
    comparison.folds = len(folds)
    if not scored:
        comparison.reason = "the held-out check was stopped before its first fold ended"
        return
    truth = [measured.keys[i] for i in scored]
    comparison.basis = MEASURED
    comparison.new_score = MeasuredScore.of(truth, new_keys)
    comparison.previous_score = MeasuredScore.of(
        truth, predicted_keys(previous_net(), measured.x[scored], phase_keys)
    )
    comparison.previous_trained_on = _trained_on(
        Path(comparison.previous), [measured.paths[i] for i in scored]
    )


__all__ = [
    "Comparison",
    "MeasuredScore",
    "compare_with_previous",
    "fold_rows",
    "predicted_keys",
]
