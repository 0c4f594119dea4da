"""Issue 15: mixed precision on the CPU (bf16 autocast), memory-aware micro-batches, and the CLI's options."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from conftest import write_class_folder  # tests/conftest.py
from labeltune import cli
from labeltune.core import device as device_module
from labeltune.core.batch_plan import BatchPlan
from labeltune.core.device import mixed_precision
from labeltune.core.image_task import TensorBatches
from labeltune.core.memory_probe import MemoryAwareBatch, plan_for, probe
from labeltune.core.train_config import TrainConfig
from labeltune.core.trainer import Callback, Trainer

CPU = torch.device("cpu")


class DtypeSpy(nn.Module):
    """A small conv net that records the dtype its first layer computed in (per forward pass)."""

    def __init__(self, classes: int = 3, batchnorm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8) if batchnorm else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(8, classes)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        self.dtypes.append(h.dtype)
        h = torch.relu(self.norm(h)).mean((2, 3))
        return self.fc(self.drop(h))


def _data(n: int = 24, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 3, size, size, generator=g) * 0.3 + y.view(-1, 1, 1, 1).float()
    return x, y


def _trainer(model: nn.Module, amp: bool = False, batch: int = 8, callbacks: Any = (), **kw: Any) -> Trainer:
    x, y = _data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = TensorBatches(x, y, batch, CPU, shuffle=True, seed=1)
    return Trainer(
        model, optimizer, nn.functional.cross_entropy, batches, None, 1, 3, amp=amp, callbacks=callbacks, **kw
    )


# -- precision ------------------------------------------------------------------------------------------
def test_mixed_precision_is_bf16_on_a_cpu_with_native_bf16_and_off_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(device_module, "cpu_bf16_supported", lambda: True)
    assert mixed_precision("cpu", True) is torch.bfloat16
    assert mixed_precision("cpu", False) is None
    assert mixed_precision("cuda", True) is torch.float16
    assert mixed_precision("mps", True) is None
    assert device_module.resolved_precision(CPU, "auto") == "bf16"
    assert device_module.resolved_precision(CPU, "fp32") == "fp32"
    monkeypatch.setattr(device_module, "cpu_bf16_supported", lambda: False)
    assert mixed_precision("cpu", True) is None
    assert device_module.resolved_precision(CPU, "auto") == "fp32"


def test_trainer_steps_and_validates_in_bf16_on_the_cpu_with_amp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_module, "cpu_bf16_supported", lambda: True)
    torch.manual_seed(0)
    model = DtypeSpy()
    x, y = _data()
    trainer = _trainer(model, amp=True)
    trainer.val_batches = TensorBatches(x, y, 12, CPU)
    trainer.task.val = trainer.val_batches  # type: ignore[attr-defined]
    state = trainer.fit()
    assert model.dtypes and set(model.dtypes) == {torch.bfloat16}  # training steps and validation
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32 (autocast)
    assert state.history[0].val_accuracy > 0.5  # it learns (3 separable classes: chance is 1/3)

    fp32 = DtypeSpy()
    _trainer(fp32, amp=False).fit()
    assert set(fp32.dtypes) == {torch.float32}


def test_auto_precision_on_the_cpu_follows_what_was_measured_per_backbone_and_strategy() -> None:
    """Where bf16 trained slower here (AlexNet; EfficientNet-Lite0's partial) and a linear head: fp32."""
    from labeltune.core.training import _precision

    cuda = torch.device("cuda")
    assert _precision(TrainConfig(backbone="resnet18", strategy="full"), CPU) == "auto"
    assert _precision(TrainConfig(backbone="densenet201", strategy="partial"), CPU) == "auto"
    assert _precision(TrainConfig(backbone="efficientnet_lite0", strategy="full"), CPU) == "auto"
    assert _precision(TrainConfig(backbone="efficientnet_lite0", strategy="partial"), CPU) == "fp32"
    assert _precision(TrainConfig(backbone="mobilenet_v3_large", strategy="partial"), CPU) == "fp32"
    assert _precision(TrainConfig(backbone="alexnet", strategy="full"), CPU) == "fp32"
    assert _precision(TrainConfig(backbone="resnet18", strategy="features"), CPU) == "fp32"
    assert _precision(TrainConfig(backbone="resnet18", strategy="full", precision="fp32"), CPU) == "fp32"
    assert _precision(TrainConfig(backbone="efficientnet_lite0", strategy="features"), cuda) == "auto"


def test_precision_is_validated() -> None:
    TrainConfig(precision="fp32").validate()
    with pytest.raises(Exception, match="precision"):
        TrainConfig(precision="fp8").validate()


# -- memory-aware batches ------------------------------------------------------------------------------
def test_plan_for_takes_the_largest_even_micro_batch_that_fits() -> None:
    # 1000 bytes free, 60 % usable = 600; 100 fixed; 20 per item: 25 fit -> 32 runs as 16 x 2
    assert plan_for(32, 1000, 100, 20) == BatchPlan(32, 16)
    assert plan_for(32, 10**9, 100, 20) == BatchPlan(32, 32)  # all fits: whole batch
    assert plan_for(32, 100, 100, 20) == BatchPlan(32, 1)  # nothing fits: one at a time (the retry's floor)
    assert plan_for(30, 1000, 100, 40) == BatchPlan(30, 10)  # 12 fit -> 3 passes of 10, not 12 + 12 + 6


def test_probe_measures_activation_memory_per_item() -> None:
    """A real probe step on the CPU: the memory per item is at least what its first layer's output takes."""
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))
    x, y = torch.randn(8, 3, 64, 64), torch.arange(8) % 3
    model(x[:1])  # materialise the lazy layer
    trainer = Trainer(model, torch.optim.AdamW(model.parameters()), nn.functional.cross_entropy,
                      TensorBatches(x, y, 8, CPU), None, 1, 3)  # fmt: skip
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = probe(trainer, (x, y), free=10**12)
    conv_output = 32 * 64 * 64 * 4  # bytes of one item's first activation (float32)
    assert result.item_bytes >= conv_output
    assert result.item_bytes < 50 * conv_output  # and not the whole batch or the weights counted per item
    assert result.plan == BatchPlan(8, 8)
    assert all(p.grad is None for p in model.parameters())  # nothing of the probe is kept
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class Notices(Callback):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def on_batch_plan_change(self, trainer: Trainer, plan: BatchPlan, message: str) -> None:
        self.messages.append(message)


def test_little_free_memory_trains_in_micro_batches_with_the_same_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Free memory for 3 items: a batch of 8 runs as micro-batches whose gradients add up to its own."""
    from labeltune.core import memory_probe

    torch.manual_seed(0)
    reference = DtypeSpy()
    probed = DtypeSpy()
    probed.load_state_dict(reference.state_dict())
    _trainer(reference).fit()

    measured: list[int] = []

    def step_memory(
        trainer: Trainer, part: Any
    ) -> tuple[int, int]:  # a measurement that does not depend on the machine
        measured.append(trainer.task.size(part))
        return 1000 * trainer.task.size(part), 5000 + 1000 * trainer.task.size(part)

    monkeypatch.setattr(memory_probe, "step_memory", step_memory)
    params = sum(p.numel() * 4 for p in probed.parameters())
    fixed = 3 * params + 5000
    notices = Notices()
    memory = MemoryAwareBatch(free=int((fixed + 3 * 1000) / memory_probe.MEMORY_SHARE) + 1)
    trainer = _trainer(probed, callbacks=[memory, notices])
    trainer.fit()
    assert measured[-2:] == [2, 4]  # two probe steps (after the CPU's warm-up pass)
    assert memory.result is not None
    assert (memory.result.item_bytes, memory.result.fixed_bytes) == (1000, fixed)
    assert memory.result.plan == BatchPlan(8, 3)  # 3 fit: 8 = 3 + 3 + 2
    assert trainer.micro_batch == 3
    assert notices.messages == [
        "batch 8 does not fit the free memory (0.0 GB): computing it as 3 x 3 accumulated"
    ]
    assert trainer.state.history[0].micro_batch == 3
    assert trainer.state.history[0].batch_size == 8
    for a, b in zip(reference.parameters(), probed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_batch_that_fits_trains_exactly_as_without_the_probe() -> None:
    """BatchNorm statistics, dropout's random draws and the gradients of the probe leave no trace."""
    torch.manual_seed(0)
    reference = DtypeSpy(batchnorm=True, dropout=0.5)
    probed = DtypeSpy(batchnorm=True, dropout=0.5)
    probed.load_state_dict(reference.state_dict())
    torch.manual_seed(5)
    _trainer(reference).fit()
    torch.manual_seed(5)
    memory = MemoryAwareBatch(free=10**12)
    trainer = _trainer(probed, callbacks=[memory])
    trainer.fit()
    assert memory.result is not None and memory.result.plan.accumulation == 1
    assert trainer.micro_batch == 0
    for (name, a), b in zip(reference.state_dict().items(), probed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


# -- the CLI --------------------------------------------------------------------------------------------
def _train(*args: object) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, (json.loads(out.getvalue()) if code == 0 else {}), err.getvalue()


def test_cli_precision_and_automatic_batch_are_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_class_folder(tmp_path / "data", classes=3, per_class=8, size=24)
    fast = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--epochs", "1", "--json"]
    code, _, err = _train("train", data, "--strategy", "full", *fast, "--out", tmp_path / "auto")
    assert code == 0, err
    config = json.loads((tmp_path / "auto" / "config.json").read_text())["train"]
    assert config["batch_auto"] is True and config["batch_size"] == 32
    assert config["precision"] == "auto"
    assert config["precision_used"] == ("bf16" if device_module.cpu_bf16_supported() else "fp32")

    code, _, err = _train(
        "train", data, "--strategy", "full", *fast, "--batch-size", "4", "--precision", "fp32",
        "--out", tmp_path / "fp32",
    )  # fmt: skip
    assert code == 0, err
    config = json.loads((tmp_path / "fp32" / "config.json").read_text())["train"]
    assert config["batch_auto"] is False and config["batch_size"] == 4
    assert config["precision"] == "fp32" and config["precision_used"] == "fp32"
    history = (tmp_path / "fp32" / "history.csv").read_text().splitlines()
    header, first = history[0].split(","), history[1].split(",")
    assert first[header.index("micro_batch")] == "4"  # an explicit batch is never probed


def test_cli_unknown_precision_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", str(tmp_path), "--precision", "half"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "--precision: invalid choice: 'half'" in err


# -- a cached re-run ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", ["alexnet", "inception_v3", "efficientnet_lite0"])
def test_probe_widths_measured_on_a_small_image_are_the_full_sized_ones(
    backbone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post-fit probe-width pass runs on at most 96 px: the same widths as at the backbone's own size."""
    from labeltune.core import probes
    from labeltune.core.backbones import get_spec
    from labeltune.core.model import ModelConfig, build_classifier

    size = get_spec(backbone).input_size
    model = build_classifier(ModelConfig.for_backbone(backbone, ["a", "b"], size), None)
    small = probes.probe_dims(model, backbone, size)
    monkeypatch.setattr(probes, "PROBE_DIMS_SIZE", size)
    assert small == probes.probe_dims(model, backbone, size)
    assert len(small) == 2 and all(width > 0 for width in small)
