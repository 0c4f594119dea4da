"""Out of device memory in a training step: the same batch again in halved micro-batches, accumulated.

Simulated on the CPU: the model (or the task's loss) raises ``torch.OutOfMemoryError`` when a forward
pass gets more than ``K`` items, as a GPU does when the batch does not fit.
"""

from __future__ import annotations

import csv
import json
import math
import threading
from pathlib import Path

import pytest
import torch

from labeltune.core.batch_plan import (
    BatchPlan,
    DeviceLostError,
    OutOfMemoryAtFloorError,
    is_device_lost,
    is_out_of_memory,
)
from labeltune.core.datasets import scan
from labeltune.core.image_task import ClassificationTask, TensorBatches
from labeltune.core.progress import Progress
from labeltune.core.trainer import Callback, Trainer
from labeltune.core.training import TrainConfig, train


# -- the plan ----------------------------------------------------------------------------------------------
def test_halving_keeps_the_batch_per_step_and_stops_at_the_floor():
    plan = BatchPlan.of(64)
    seen = [plan.describe()]
    while plan.can_halve():
        smaller = plan.halved()
        assert smaller.batch == 64 and smaller.micro * smaller.accumulation == 64
        plan = smaller
        seen.append(plan.describe())
    assert seen == [
        "64",
        "32 x 2 accumulated",
        "16 x 4 accumulated",
        "8 x 8 accumulated",
        "4 x 16 accumulated",
        "2 x 32 accumulated",
        "1 x 64 accumulated",
    ]
    with pytest.raises(ValueError):
        plan.halved()
    assert BatchPlan.of(64, floor=8).halved().halved().halved().can_halve() is False
    assert BatchPlan.of(50).halved().halved() == BatchPlan(50, 13, 1)  # 13 + 13 + 13 + 11 items
    assert BatchPlan.of(50, 13).accumulation == 4
    assert BatchPlan.of(64).out_of_memory_message(BatchPlan.of(64).halved()) == (
        "out of memory at batch 64: continuing with 32 x 2 accumulated"
    )


def test_out_of_memory_and_lost_devices_are_told_apart_by_type_and_message():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1.2 GB)"))
    assert is_out_of_memory(RuntimeError("XPU out of memory. Tried to allocate 20.00 MiB"))
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x2)"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only the errors a device raises
    assert is_device_lost(RuntimeError("CUDA error: unknown error\nCUDA kernel errors might be ..."))
    assert is_device_lost(RuntimeError("CUDA error: device-side assert triggered"))
    assert not is_device_lost(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_device_lost(RuntimeError("shapes cannot be multiplied"))


# -- the trainer -------------------------------------------------------------------------------------------
class SmallMemoryModel(torch.nn.Module):
    """A linear classifier on a 'device' that holds at most ``limit`` items per forward pass."""

    def __init__(self, limit: int = 10**9) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 3)
        self.limit = limit
        self.passes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and len(x) > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(x)} items")
        if self.training:
            self.passes.append(len(x))
        return self.linear(x)


class CountingAdam(torch.optim.Adam):
    """Adam that counts its steps (a step taken twice would show)."""

    steps = 0

    def step(self, closure=None):  # type: ignore[no-untyped-def, override]
        self.steps += 1
        return super().step(closure)


class Notices(Callback):
    """Keeps what the trainer says about its batch plan."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def on_batch_plan_change(self, trainer: Trainer, plan: BatchPlan, message: str) -> None:
        self.messages.append(message)


def small_trainer(model: SmallMemoryModel, epochs: int = 3) -> tuple[Trainer, CountingAdam, Notices]:
    torch.manual_seed(1)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    cpu = torch.device("cpu")
    optimizer = CountingAdam(model.parameters(), lr=0.05)
    notices = Notices()
    trainer = Trainer(
        model,
        optimizer,
        torch.nn.functional.cross_entropy,
        TensorBatches(x, y, 16, cpu, shuffle=True, seed=3),
        TensorBatches(x, y, 16, cpu),
        epochs,
        3,
        callbacks=[notices],
    )
    return trainer, optimizer, notices


def test_an_accumulated_step_has_the_whole_batchs_gradient():
    """One batch of 16 on a model that holds 5: four passes (5 + 5 + 5 + 1 ... halved to 4 x 4)."""
    torch.manual_seed(2)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    whole, short = SmallMemoryModel(), SmallMemoryModel(limit=5)
    whole.linear.load_state_dict(short.linear.state_dict())
    task = ClassificationTask(torch.nn.functional.cross_entropy, None, 3)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    gradients = []
    for model in (whole, short):
        optimizer = CountingAdam(model.parameters(), lr=0.0)  # lr 0: the step leaves the gradient to compare
        trainer = Trainer(model, optimizer, task, TensorBatches(x, y, 16, torch.device("cpu")), None, 1)
        value = trainer._train_step((x, y), scaler, "cpu")
        assert value is not None and optimizer.steps == 1
        gradients.append([p.grad.clone() for p in model.parameters()])
    assert short.passes == [4, 4, 4, 4]  # 16 -> 8 -> 4 items per pass; the failed passes left nothing
    assert whole.passes == [16]
    for full, accumulated in zip(*gradients, strict=True):
        assert torch.allclose(full, accumulated, atol=1e-6)
        assert full.abs().sum() > 0


def test_training_continues_in_halved_micro_batches_with_the_same_result():
    reference, _, quiet = small_trainer(SmallMemoryModel())
    reference.fit()
    model = SmallMemoryModel(limit=6)
    trainer, optimizer, notices = small_trainer(model)
    state = trainer.fit()

    assert notices.messages == [
        "out of memory at batch 16: continuing with 8 x 2 accumulated",
        "out of memory at batch 8: continuing with 4 x 4 accumulated",  # 8 was still too big
    ]
    assert quiet.messages == []
    assert trainer.micro_batch == 4 and set(model.passes) == {4}  # and it stays so: no retry each batch
    assert optimizer.steps == 3 * 4  # one step per batch: no batch skipped, none stepped twice
    assert [(r.batch_size, r.micro_batch) for r in state.history] == [(16, 4)] * 3
    assert [(r.batch_size, r.micro_batch) for r in reference.state.history] == [(16, 16)] * 3
    for p, q in zip(reference.model.parameters(), model.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)
    assert [r.train_loss for r in state.history] == pytest.approx(
        [r.train_loss for r in reference.state.history], abs=1e-5
    )


def test_out_of_memory_with_a_single_item_ends_with_a_clear_error():
    model = SmallMemoryModel(limit=0)
    trainer, optimizer, notices = small_trainer(model)
    with pytest.raises(OutOfMemoryAtFloorError, match="out of memory even with a batch of 1"):
        trainer.fit()
    assert optimizer.steps == 0 and len(notices.messages) == 4  # 16 -> 8 -> 4 -> 2 -> 1, then the floor


def test_a_lost_gpu_is_a_clear_error_not_an_out_of_memory_retry():
    class LostModel(SmallMemoryModel):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training and len(self.passes) >= 5:
                raise RuntimeError("CUDA error: unknown error\nCompile with TORCH_USE_CUDA_DSA")
            return super().forward(x)

    model = LostModel()
    trainer, optimizer, notices = small_trainer(model)
    with pytest.raises(DeviceLostError) as caught:
        trainer.fit()
    text = str(caught.value)
    assert "the GPU stopped answering in epoch 2 (CUDA error: unknown error)" in text
    assert "checkpoint of epoch 1 is kept" in text and notices.messages == []
    assert optimizer.steps == 5


# -- a whole run, the CLI and what the user reads ------------------------------------------------------------
def out_of_memory_above(limit: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every image training pass with more than ``limit`` images fail as a full GPU does."""
    passes: list[int] = []
    original = ClassificationTask.loss

    def loss(self: ClassificationTask, model: torch.nn.Module, batch: object) -> object:
        n = len(batch[1])  # type: ignore[index]
        if n > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {n * 20} MiB")
        passes.append(n)
        return original(self, model, batch)

    monkeypatch.setattr(ClassificationTask, "loss", loss)
    return passes


def tiny(**kwargs: object) -> TrainConfig:
    values: dict[str, object] = dict(
        backbone="resnet18", weights="none", epochs=3, batch_size=8, input_size=32, patience=0, lr=3e-3
    )
    values.update(kwargs)
    return TrainConfig(**values)  # type: ignore[arg-type]


def history_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_run_that_runs_out_of_memory_finishes_and_says_so(image_folder, tmp_path, monkeypatch):
    passes = out_of_memory_above(4, monkeypatch)
    messages: list[str] = []
    result = train(
        scan(image_folder()),
        tiny(strategy="features", epochs=3),
        tmp_path / "run",
        lambda p: messages.append(p.message),
        threading.Event(),
    )
    assert not result.stopped and result.epochs_run == 3
    assert result.metrics["accuracy"] >= 0.6  # it learned (chance: 1/3)
    note = "out of memory at batch 8: continuing with 4 x 2 accumulated"
    assert any(m.endswith(note) and m.startswith("epoch 1/3") for m in messages)
    assert max(passes) == 4  # 39 images: four batches of 8 (4 + 4 each) and one of 7 (4 + 3)
    rows = history_rows(tmp_path / "run")
    assert [(r["epoch"], r["batch_size"], r["micro_batch"]) for r in rows] == [
        ("1", "8", "4"),
        ("2", "8", "4"),
        ("3", "8", "4"),
    ]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["batch_size"] == 8


def test_the_cli_prints_the_notice_and_fails_in_one_line_at_the_floor(
    image_folder, tmp_path, monkeypatch, capsys
):
    from labeltune import cli

    data = image_folder()
    out_of_memory_above(4, monkeypatch)
    code = cli.main(
        [
            "train",
            str(data),
            "--strategy",
            "features",
            "--backbone",
            "resnet18",
            "--weights",
            "none",
            "--input-size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path / "a"),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "out of memory at batch 8: continuing with 4 x 2 accumulated" in captured.err
    assert json.loads(captured.out)["epochs_run"] == 1

    out_of_memory_above(0, monkeypatch)
    code = cli.main(
        [
            "train",
            str(data),
            "--strategy",
            "features",
            "--backbone",
            "resnet18",
            "--weights",
            "none",
            "--input-size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path / "b"),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    [line] = [line for line in captured.err.splitlines() if line.startswith("labeltune: error:")]
    assert "out of memory even with a batch of 1" in line
    assert captured.out == ""


def test_progress_reports_keep_the_notice(monkeypatch):
    """The GUI's stage line reads the train progress message: the notice stays on it for the run."""
    from labeltune.core.train_callbacks import ProgressBar

    seen: list[Progress] = []
    bar = ProgressBar(seen.append, 2)
    model = SmallMemoryModel(limit=6)
    trainer, _, _ = small_trainer(model, epochs=2)
    trainer.callbacks.append(bar)
    trainer.fit()
    noted = [p for p in seen if "out of memory at batch 16" in p.message]
    assert noted and noted[0].stage == "train"
    assert seen[-1].message.startswith("epoch 2/2 loss") and "out of memory at batch 8:" in seen[-1].message


def test_a_lost_gpu_keeps_the_checkpoint_and_the_run_continues_on_the_cpu(
    image_folder, tmp_path, monkeypatch, capsys
):
    from labeltune import cli
    from labeltune.core.run_state import stopped_run

    monkeypatch.setenv("LABELTUNE_CHECKPOINT_SECONDS", "0")
    original = ClassificationTask.loss
    calls = [0]

    def loss(self: ClassificationTask, model: torch.nn.Module, batch: object) -> object:
        calls[0] += 1
        if calls[0] == 7:  # epoch 2 (five batches an epoch)
            raise RuntimeError(
                "CUDA error: unknown error\nCUDA kernel errors might be asynchronously reported"
            )
        return original(self, model, batch)

    monkeypatch.setattr(ClassificationTask, "loss", loss)
    run = tmp_path / "run"
    args = ["train", str(image_folder()), "--strategy", "features", "--backbone", "resnet18", "--weights"]
    args += ["none", "--input-size", "32", "--epochs", "3", "--batch-size", "8", "--out", str(run), "--json"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(
        "labeltune: error: the GPU stopped answering in epoch 2 (CUDA error: unknown error)"
    )
    assert f"the checkpoint of epoch 1 is kept. Continue with: labeltune train --resume {run}" in err
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 1 and len(history_rows(run)) == 1
    found = stopped_run(run)
    assert found is not None and found.interrupted  # the app offers to continue it too

    assert cli.main(["train", "--resume", str(run), "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_run"] == 3 and not summary["stopped"]
    assert [row["epoch"] for row in history_rows(run)] == ["1", "2", "3"]
    assert json.loads((run / "config.json").read_text())["train"]["device"] == "cpu"


def test_the_train_panel_shows_the_notice_and_finishes(qtbot, image_folder, tmp_path, monkeypatch):
    from labeltune.core.project import Project
    from labeltune.core.settings import Settings
    from labeltune.ui.session import ProjectSession
    from labeltune.ui.train_panel import TrainPanel

    folder = tmp_path / "project"
    with Project.create(folder) as project:
        dataset = scan(image_folder())
        project.add_source(dataset.root)
        project.add_samples(dataset.samples)
    out_of_memory_above(4, monkeypatch)
    session = ProjectSession(Settings(backbone="resnet18", weights="none", epochs=2, batch_size=8))
    session.open(folder)
    panel = TrainPanel(session)
    qtbot.addWidget(panel)
    panel.form.input_size_spin.setValue(32)
    panel.form.epochs_spin.setValue(2)
    panel.show()
    try:
        assert not panel.monitor.notice_label.isVisible()
        with qtbot.waitSignal(panel.run_finished, timeout=180_000):
            panel.start()
        notice = panel.monitor.notice_label
        assert notice.isVisible()  # after the run, still there to read
        assert notice.text() == "⚠ out of memory at batch 8: continuing with 4 x 2 accumulated"
        result = panel.last_result
        assert result is not None and result.epochs_run == 2
        assert [(r.batch_size, r.micro_batch) for r in result.history] == [(8, 4), (8, 4)]
    finally:
        panel.shutdown()
        session.close()


def test_xrd_training_goes_on_in_smaller_micro_batches(monkeypatch):
    """XRD runs the same trainer: its task splits a batch (simulated rows first) when memory runs out."""
    from labeltune.core.xrd.model import XrdNet, XrdNetConfig
    from labeltune.core.xrd.train_config import XrdTrainConfig
    from labeltune.core.xrd.train_task import XrdBatch, XrdTask

    class Source:
        device = torch.device("cpu")
        batch_size = 12

        def __len__(self) -> int:
            return 1

        def batches(self, epoch: int) -> list[XrdBatch]:
            generator = torch.Generator().manual_seed(epoch)
            present = torch.rand(8, 3, generator=generator) > 0.5
            present[:, 0] = True
            fractions = present.float() / present.float().sum(1, keepdim=True)
            groups = [[[int(j)] for j in torch.nonzero(row).flatten()] for row in present]
            groups += [[[1]], [[2]], [[0], [2]], [[1]]]  # four measured patterns after the simulated ones
            x = torch.rand(12, 256, generator=generator)
            return [XrdBatch(x, groups, fractions, present)]

    original = XrdTask.loss
    sizes: list[tuple[int, int, int, int]] = []

    def loss(self: XrdTask, model: torch.nn.Module, batch: XrdBatch) -> object:
        if len(batch.x) > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.5 GiB")
        sizes.append((len(batch.x), len(batch.groups), len(batch.fractions), len(batch.present)))
        return original(self, model, batch)

    monkeypatch.setattr(XrdTask, "loss", loss)
    torch.manual_seed(0)
    net = XrdNet(XrdNetConfig(n_phases=3, points=256))
    notices = Notices()
    trainer = Trainer(
        net, torch.optim.AdamW(net.parameters(), lr=1e-3), XrdTask(XrdTrainConfig(), None), Source(), None, 2,
        callbacks=[notices],
    )  # fmt: skip
    state = trainer.fit()

    assert notices.messages == [
        "out of memory at batch 12: continuing with 6 x 2 accumulated",
        "out of memory at batch 6: continuing with 3 x 4 accumulated",
    ]
    # 12 patterns in slices of 3: the simulated rows (8) carry fractions, the measured ones (4) do not
    assert sizes[:4] == [(3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 2, 2), (3, 3, 0, 0)]
    assert [(r.batch_size, r.micro_batch) for r in state.history] == [(12, 3), (12, 3)]
    assert all(math.isfinite(r.train_loss) for r in state.history)
