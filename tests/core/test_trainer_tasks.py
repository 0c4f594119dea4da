"""The trainer runs any domain: a batch source, a TrainingTask (loss, validation, best-epoch rule)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from labeltune.core.progress import Progress, StoppedError  # noqa: E402
from labeltune.core.train_callbacks import History, ProgressBar  # noqa: E402
from labeltune.core.train_step import EpochRecord, StepOutput, TrainingTask, Validation  # noqa: E402
from labeltune.core.trainer import Trainer  # noqa: E402


class Source:
    """Four batches of dicts per epoch; Stop before batch ``stop_at`` of epoch ``stop_epoch``."""

    device = torch.device("cpu")

    def __init__(self, stop_epoch: int = 0, stop_at: int = 0) -> None:
        torch.manual_seed(0)
        self.x = torch.randn(4, 8, 3)
        self.y = self.x.sum(dim=2, keepdim=True)
        self.stop_epoch, self.stop_at = stop_epoch, stop_at

    def __len__(self) -> int:
        return 4

    def batches(self, epoch: int) -> Iterator[dict[str, Any]]:
        for b in range(4):
            if epoch == self.stop_epoch and b + 1 == self.stop_at:
                raise StoppedError()
            yield {"x": self.x[b], "y": self.y[b]}


class Regression(TrainingTask):
    """Squared error; no validation set; the best epoch is the last one."""

    def size(self, batch: Any) -> int:
        return len(batch["x"])

    def loss(self, model: Any, batch: Any) -> StepOutput:
        return StepOutput(((model(batch["x"]) - batch["y"]) ** 2).mean(), 0.0, 0)

    def validate(self, model: Any, stop_event: threading.Event) -> Validation:
        return Validation.none()

    def score(self, record: EpochRecord) -> tuple[float, float]:
        return (float(record.epoch), 0.0)


def trainer(source: Source, callbacks: list[Any]) -> tuple[Trainer, list[int]]:
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    steps: list[int] = []
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: steps.append(n) or 1.0)
    steps.clear()  # LambdaLR calls it once when made
    run = Trainer(
        model, optimizer, Regression(), source, None, 3, scheduler=scheduler, scheduler_interval="step",
        callbacks=callbacks,
    )  # fmt: skip
    return run, steps


def test_a_domain_plugs_in_its_batches_loss_and_best_epoch_rule(tmp_path: Path) -> None:
    reports: list[Progress] = []
    run, steps = trainer(Source(), [ProgressBar(reports.append, 3, per_epoch=True), History(tmp_path)])
    state = run.fit()
    assert [r.epoch for r in state.history] == [1, 2, 3] and state.best_epoch == 3
    assert state.history[-1].train_loss < state.history[0].train_loss
    assert math.isnan(state.history[0].val_loss) and state.history[0].train_accuracy == 0.0
    assert len(steps) == 3 * 4 - 1  # stepped after every batch but the last
    assert [p.stage for p in reports[:5]] == ["Epoch 1/3"] * 4 + ["Epoch 2/3"]
    assert [p.done for p in reports[:4]] == [1, 2, 3, 4] and reports[0].message.startswith("loss ")
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == ",".join(EpochRecord.__dataclass_fields__) and len(lines) == 4


def test_a_batch_source_that_stops_between_batches_ends_the_fit_without_the_partial_epoch() -> None:
    run, _ = trainer(Source(stop_epoch=2, stop_at=3), [])
    state = run.fit()
    assert state.stopped_by_user and state.epoch == 1 and [r.epoch for r in state.history] == [1]


def test_the_image_progress_bar_spans_the_whole_run() -> None:
    reports: list[Progress] = []
    run, _ = trainer(Source(), [ProgressBar(reports.append, 3)])
    run.fit()
    assert {p.stage for p in reports} == {"train"} and reports[-1].done == reports[-1].total == 12
    assert reports[4].message.startswith("epoch 2/3 loss ")
