"""Issue 15 (ADR 0060): every fit steps a fused AdamW where the device has one: same training, faster."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from conftest import write_class_folder  # tests/conftest.py
from labeltune.core.datasets import scan_folder
from labeltune.core.optimizer import adamw, fused_supported
from labeltune.core.train_config import TrainConfig
from labeltune.core.trainer import Callback, Trainer
from labeltune.core.training import train


class OptimizerSpy(Callback):
    """Records the optimiser's settings and the number of states it holds when the fit ends."""

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}
        self.groups: list[dict[str, Any]] = []

    def on_fit_end(self, trainer: Trainer) -> None:
        """Keep the optimiser's defaults and its groups' flags."""
        self.defaults = dict(trainer.optimizer.defaults)
        self.groups = [{k: v for k, v in g.items() if k != "params"} for g in trainer.optimizer.param_groups]


def test_an_image_fit_on_the_cpu_steps_a_fused_adamw(tmp_path: Path) -> None:
    """*partial* on the CPU (*full* builds its optimiser on the same line): AdamW, ``fused=True``."""
    data = scan_folder(write_class_folder(tmp_path / "data", classes=2, per_class=6, size=32))
    config = TrainConfig(
        backbone="resnet18", weights="none", strategy="partial", input_size=32, epochs=1, batch_size=4
    )
    spy = OptimizerSpy()
    result = train(data, config, tmp_path / "run", callbacks=[spy], cache_root=tmp_path / "cache")
    assert result.epochs_run == 1
    assert spy.defaults["fused"] is True
    assert spy.groups and all(group["fused"] is True for group in spy.groups)
    assert (tmp_path / "run" / "model.safetensors").is_file()


def _steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 5) -> nn.Module:
    g = torch.Generator().manual_seed(3)
    for _ in range(steps):
        x, y = torch.randn(16, 24, generator=g), torch.randint(0, 3, (16,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model


def test_the_fused_step_is_adamw_within_float32_rounding() -> None:
    """Five steps with two parameter groups (backbone at a lower rate): fused and plain AdamW agree."""
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(24, 32), nn.ReLU(), nn.Linear(32, 3))
    fused, plain = copy.deepcopy(base), copy.deepcopy(base)

    def groups(m: nn.Module) -> list[dict[str, Any]]:
        return [{"params": list(m[0].parameters()), "lr": 1e-3}, {"params": list(m[2].parameters())}]

    _steps(fused, adamw(groups(fused), lr=1e-2, weight_decay=0.05))
    _steps(plain, torch.optim.AdamW(groups(plain), lr=1e-2, weight_decay=0.05))
    moved = [(a - b).abs().max().item() for a, b in zip(base.parameters(), plain.parameters(), strict=True)]
    assert min(moved) > 1e-4  # the weights did move
    for a, b in zip(fused.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_of_an_unfused_optimizer_resumes_in_a_fused_one() -> None:
    """An older run's checkpoint (unfused AdamW state) loads into the new optimiser and steps on alike."""
    torch.manual_seed(1)
    base = nn.Sequential(nn.Linear(24, 3))
    old = copy.deepcopy(base)
    old_opt = torch.optim.AdamW(old.parameters(), lr=1e-2)
    _steps(old, old_opt, 2)
    new = copy.deepcopy(old)
    new_opt = adamw(new.parameters(), lr=1e-2, weight_decay=0.01)
    new_opt.load_state_dict(copy.deepcopy(old_opt.state_dict()))  # as read from a file
    _steps(old, old_opt, 2)
    _steps(new, new_opt, 2)
    for a, b in zip(new.parameters(), old.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fused_only_where_every_parameter_has_a_kernel() -> None:
    """Integer or meta tensors (no fused kernel) fall back to PyTorch's own choice, not an error."""
    assert fused_supported([nn.Parameter(torch.zeros(3))])
    assert fused_supported([{"params": [nn.Parameter(torch.zeros(3))]}])
    assert not fused_supported([])
    assert not fused_supported([torch.zeros(3, device="meta")])
    optimizer = adamw([nn.Parameter(torch.zeros(3, device="meta"))], lr=1e-3, weight_decay=0.0)
    assert not optimizer.defaults["fused"]
