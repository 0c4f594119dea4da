"""Stop is answered inside a long step: before the backward pass, between micro-batches and validation.

Deterministic: the model counts its forward calls and the stop is pressed while one of them runs (from
inside it, or from another thread while it blocks), as the GUI's Stop button does. No timing.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from labeltune.core.datasets import scan
from labeltune.core.progress import Progress, StoppedError
from labeltune.core.run_state import stopped_run
from labeltune.core.trainer import TensorBatches, Trainer
from labeltune.core.training import TrainConfig, resume, train


class CountingModel(torch.nn.Module):
    """A linear classifier whose ``on_forward`` hook runs inside each forward pass (numbered from 1)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 2)
        self.calls = 0
        self.train_calls = 0
        self.calls_at_stop: int | None = None
        self.on_forward = lambda call: None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.train_calls += int(self.training)
        self.on_forward(self.calls)
        return self.linear(x)


class CountingSGD(torch.optim.SGD):
    """SGD that counts its steps."""

    steps = 0

    def step(self, closure=None):  # type: ignore[no-untyped-def, override]
        self.steps += 1
        return super().step(closure)


def make_trainer(
    model: CountingModel, stop: threading.Event, n: int = 40, micro_batch: int = 0, val: bool = True
) -> tuple[Trainer, CountingSGD]:
    torch.manual_seed(1)
    x = torch.randn(n, 4)
    y = (x[:, 0] > 0).long()
    cpu = torch.device("cpu")
    optimizer = CountingSGD(model.parameters(), lr=0.5)
    trainer = Trainer(
        model,
        optimizer,
        torch.nn.functional.cross_entropy,
        TensorBatches(x, y, 8, cpu, shuffle=True),
        TensorBatches(x, y, 8, cpu) if val else None,
        3,
        2,
        stop_event=stop,
        micro_batch=micro_batch,
    )
    return trainer, optimizer


def press_stop_at(model: CountingModel, stop: threading.Event, call: int) -> None:
    def on_forward(n: int) -> None:
        if n == call:
            stop.set()
            model.calls_at_stop = n

    model.on_forward = on_forward


def test_stop_during_a_forward_pass_skips_its_backward_and_step():
    model, stop = CountingModel(), threading.Event()
    trainer, optimizer = make_trainer(model, stop)
    press_stop_at(model, stop, 3)  # in the third batch of the first epoch

    state = trainer.fit()

    assert state.stopped_by_user and state.epoch == 0 and state.history == []
    assert model.calls - 3 <= 1  # at most one forward pass after the stop
    assert model.calls == 3
    assert optimizer.steps == 2  # the steps of batches 1 and 2, not the stopped one


def test_stop_from_another_thread_during_a_blocked_micro_batch():
    """The GUI presses Stop while a slow forward pass runs; the next micro-batch never starts."""
    model, stop = CountingModel(), threading.Event()
    trainer, optimizer = make_trainer(model, stop, micro_batch=2)  # 4 micro-batches per batch of 8
    entered, release = threading.Event(), threading.Event()

    def on_forward(n: int) -> None:
        if n == 6:  # the second micro-batch of the second batch
            entered.set()
            assert release.wait(60)

    model.on_forward = on_forward
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(trainer.fit()))
    worker.start()
    assert entered.wait(60)
    stop.set()  # what TaskController.stop() does from the GUI thread
    calls_at_stop = model.calls
    release.set()
    worker.join(60)

    assert not worker.is_alive() and result and trainer.state.stopped_by_user
    assert model.calls - calls_at_stop <= 1
    assert model.calls == 6
    assert optimizer.steps == 1  # only the first batch's step


def test_micro_batches_give_the_same_step_as_the_whole_batch():
    whole, micro = CountingModel(), CountingModel()
    a, _ = make_trainer(whole, threading.Event())
    b, _ = make_trainer(micro, threading.Event(), micro_batch=3)  # 8 = 3 + 3 + 2: unequal shares
    a.fit()
    b.fit()
    assert micro.train_calls == 3 * a.epochs * 5  # three passes per batch, five batches per epoch
    for p, q in zip(whole.parameters(), micro.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)
    assert [r.train_loss for r in a.state.history] == pytest.approx([r.train_loss for r in b.state.history])


def test_stop_during_validation_ends_it_and_the_epoch_does_not_count():
    model, stop = CountingModel(), threading.Event()
    trainer, optimizer = make_trainer(model, stop)
    # epoch 1: 5 training passes, then 5 validation batches; stop in the second validation batch
    press_stop_at(model, stop, 7)

    state = trainer.fit()

    assert state.stopped_by_user and state.epoch == 0 and state.history == []
    assert model.calls == 7  # validation batches 3 to 5 never ran
    assert optimizer.steps == 5


class Deep(torch.nn.Module):
    """Three layers (an in-place ReLU between, as in ResNet and DenseNet); ``hook`` runs inside layer 2."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = torch.nn.ModuleList(
            [torch.nn.Linear(4, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 2)]
        )
        self.relu = torch.nn.ReLU(inplace=True)
        self.ran: list[int] = []
        self.hook = lambda: None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            self.ran.append(i)
            if i == 1:
                self.hook()
            if i < 2:
                x = self.relu(x)
        return x


def deep_trainer(model: Deep, stop: threading.Event) -> tuple[Trainer, CountingSGD]:
    torch.manual_seed(1)
    x = torch.randn(16, 4)
    y = (x[:, 0] > 0).long()
    optimizer = CountingSGD(model.parameters(), lr=0.1)
    batches = TensorBatches(x, y, 8, torch.device("cpu"))
    return Trainer(
        model, optimizer, torch.nn.functional.cross_entropy, batches, None, 2, 2, stop_event=stop
    ), optimizer


def test_stop_inside_a_forward_pass_skips_the_remaining_layers():
    model, stop = Deep(), threading.Event()
    trainer, optimizer = deep_trainer(model, stop)
    model.hook = lambda: stop.set() if len(model.ran) > 3 else None  # in the second batch's layer 2
    before = [p.detach().clone() for p in model.parameters()]
    state = trainer.fit()
    assert state.stopped_by_user
    assert model.ran == [0, 1, 2, 0, 1]  # layer 3 of the stopped pass never ran
    assert optimizer.steps == 1
    assert all(p.grad is None for p in model.parameters())  # nothing half-computed is left behind
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_stop_inside_a_backward_pass_leaves_the_step_unapplied():
    model, stop = Deep(), threading.Event()
    trainer, optimizer = deep_trainer(model, stop)
    arrived: list[str] = []

    def last_layer_gradient(grad: torch.Tensor) -> torch.Tensor:
        if not arrived:
            stop.set()  # Stop pressed while the first backward pass runs
        arrived.append("last")
        return grad

    model.layers[2].weight.register_hook(last_layer_gradient)
    model.layers[0].weight.register_hook(lambda g: arrived.append("first"))
    before = [p.detach().clone() for p in model.parameters()]
    state = trainer.fit()
    assert state.stopped_by_user and optimizer.steps == 0
    assert arrived == ["last"]  # the backward pass ended before the first layer's gradient
    arrived.clear()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # the hooks are removed afterwards: the model trains normally again
    stop.clear()
    trainer.state.stopped_by_user = False
    arrived.append("done")  # the stop above is not pressed again
    assert trainer.fit().epoch == 2 and optimizer.steps == 4


# -- a whole run ----------------------------------------------------------------------------------------
def tiny(**kwargs: object) -> TrainConfig:
    values: dict[str, object] = dict(
        backbone="resnet18", weights="none", epochs=3, batch_size=8, input_size=32, patience=0, lr=3e-3
    )
    values.update(kwargs)
    return TrainConfig(**values)  # type: ignore[arg-type]


def test_stop_while_calibrating_keeps_the_model_and_resume_finishes_the_post_fit(image_folder, tmp_path):
    data = scan(image_folder())
    stop = threading.Event()
    stages: list[str] = []

    def progress(p: Progress) -> None:
        stages.append(p.stage)
        if p.stage == "reliability" and p.done == 0:
            stop.set()  # the user presses Stop while confidence is being calibrated

    run = tmp_path / "run"
    stopped = train(data, tiny(strategy="full"), run, progress, stop)

    assert stopped.stopped and stopped.epochs_run == 3
    assert "calibration" not in stopped.metrics
    assert not list(run.glob("familiarity*"))  # nothing half-fitted was written
    assert stages[-1] == "save"  # the last thing it said: saving the model
    info = stopped_run(run)
    assert info is not None and (info.epochs_run, info.epochs_planned) == (3, 3)

    finished = resume(run)
    assert not finished.stopped and finished.epochs_run == 3
    assert finished.metrics["calibration"]["temperature"] > 0
    assert stopped_run(run) is None
    summary = json.loads((run / "metrics.json").read_text())["summary"]
    assert summary["stopped"] is False and summary["epochs_planned"] == 3


def test_stop_while_reading_the_images_of_a_full_run_leaves_nothing(image_folder, tmp_path):
    data = scan(image_folder())
    stop = threading.Event()

    def progress(p: Progress) -> None:
        if p.stage == "decode":
            stop.set()

    with pytest.raises(StoppedError):
        train(data, tiny(strategy="full"), tmp_path / "run", progress, stop)
    assert not Path(tmp_path / "run").exists()


def test_a_stopped_run_reports_the_best_epochs_validation_without_another_pass(image_folder, tmp_path):
    data = scan(image_folder())
    stop = threading.Event()
    seen: list[int] = []

    def progress(p: Progress) -> None:
        if p.stage == "train" and p.message.startswith("epoch 3/"):
            stop.set()
            seen.append(p.done)

    result = train(data, tiny(strategy="full", epochs=5), tmp_path / "run", progress, stop)
    assert seen and result.stopped and result.epochs_run == 2
    best = result.history[result.best_epoch - 1]
    assert result.metrics["accuracy"] == pytest.approx(best.val_accuracy)
    assert result.to_json()["epochs_planned"] == 5


def test_cli_resume_finishes_a_stopped_project_run(image_folder, tmp_path, capsys):
    from labeltune import cli
    from labeltune.core.project import Project

    folder = tmp_path / "project"
    with Project.create(folder) as project:
        dataset = scan(image_folder())
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
    stop = threading.Event()

    def press_stop_in_epoch_2(p: Progress) -> None:
        if p.stage == "train" and p.message.startswith("epoch 2/"):
            stop.set()

    run = folder / "runs" / "stopped"
    result = train(scan(folder), tiny(strategy="full", epochs=3), run, press_stop_in_epoch_2, stop)
    with Project.open(folder) as project:
        project.record_run(run.name, run, result.backbone, result.strategy, result.to_json())
    assert stopped_run(run) is not None

    capsys.readouterr()
    code = cli.main(["train", "--resume", str(run), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)
    assert summary["stopped"] is False and summary["epochs_run"] == summary["epochs_planned"] == 3
    assert summary["temperature"] is not None
    with Project.open(folder) as project:
        [row] = project.runs()
    assert row["metrics"]["stopped"] is False and row["metrics"]["epochs_run"] == 3
    assert stopped_run(run) is None
