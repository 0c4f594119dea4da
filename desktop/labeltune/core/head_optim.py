"""AdamW and the cosine schedule for a *features* run's head, without ``torch.optim``.

Every ``torch.optim`` optimiser's constructor imports ``torch._dynamo`` on its first use (PyTorch wraps
it in ``torch._disable_dynamo``): 1-2 s of a cached re-run on a quiet 2-core CPU, 8 s on a busy one, for
a head that trains in a fraction of that (docs/adr/0059). These two classes compute what
``torch.optim.AdamW`` (its single-tensor path, which a CPU uses) and ``CosineAnnealingLR`` compute, operation
for operation, so the head ends with the same weights, and their ``state_dict`` has the same layout, so a
checkpoint written by either continues with either.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class HeadAdamW:
    """``torch.optim.AdamW(params, lr, weight_decay=weight_decay)`` (betas 0.9/0.999, eps 1e-8)."""

    def __init__(self, groups: Iterable[dict[str, Any]], lr: float, weight_decay: float = 1e-2) -> None:
        defaults = {
            "lr": lr,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            "weight_decay": weight_decay,
            "amsgrad": False,
            "maximize": False,
            "foreach": None,
            "capturable": False,
            "differentiable": False,
            "fused": None,
            "decoupled_weight_decay": True,
        }
        self.param_groups: list[dict[str, Any]] = [{**defaults, **group} for group in groups]
        for group in self.param_groups:
            group["params"] = list(group["params"])
        self.state: dict[Any, dict[str, Any]] = {}

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (as ``Optimizer.zero_grad``)."""
        for p in self._params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    def step(self) -> None:
        """One AdamW step over the parameters that have a gradient."""
        import torch

        with torch.no_grad():
            for group in self.param_groups:
                lr, wd, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
                beta1, beta2 = group["betas"]
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    grad = param.grad
                    state = self.state.get(param)
                    if not state:
                        state = {
                            "step": torch.tensor(0.0, dtype=torch.float32),
                            "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                            "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                        }
                        self.state[param] = state
                    step_t, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
                    step_t += 1
                    if wd != 0:
                        param.mul_(1 - lr * wd)
                    exp_avg.lerp_(grad, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    step = step_t.item()
                    bias_correction1 = 1 - beta1**step
                    bias_correction2 = 1 - beta2**step
                    step_size = lr / bias_correction1
                    bias_correction2_sqrt = bias_correction2**0.5
                    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                    param.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.Optimizer.state_dict``'s layout: states by parameter index, groups with indices."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append(
                {**{k: v for k, v in group.items() if k != "params"}, "params": list(range(start, start + n))}
            )
            start += n
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, stored: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s (or ``torch.optim.AdamW``'s) output."""
        params = self._params()
        for group, saved in zip(self.param_groups, stored["param_groups"], strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, s in stored["state"].items():
            param = params[int(i)]
            self.state[param] = {
                k: (v.to(param.device) if k != "step" else v.float().cpu()) for k, v in s.items()
            }


class HeadCosineSchedule:
    """``torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max)`` (eta_min 0), stepped per epoch."""

    def __init__(self, optimizer: HeadAdamW, T_max: int) -> None:
        self.optimizer, self.T_max, self.eta_min = optimizer, T_max, 0.0
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._step_count = 1
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self) -> None:
        """Advance one epoch (the same recurrence as PyTorch's)."""
        self._step_count += 1
        self.last_epoch += 1
        groups, epoch, t_max = self.optimizer.param_groups, self.last_epoch, self.T_max
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            lrs = [
                g["lr"] + (base - self.eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                for base, g in zip(self.base_lrs, groups, strict=True)
            ]
        else:
            lrs = [
                (1 + math.cos(math.pi * epoch / t_max))
                / (1 + math.cos(math.pi * (epoch - 1) / t_max))
                * (g["lr"] - self.eta_min)
                + self.eta_min
                for g in groups
            ]
        for group, lr in zip(groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs

    def state_dict(self) -> dict[str, Any]:
        """The counters (the names PyTorch's scheduler stores them under)."""
        keys = ("T_max", "eta_min", "base_lrs", "last_epoch", "_step_count", "_last_lr")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, stored: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s (or ``CosineAnnealingLR``'s) output."""
        for key in ("T_max", "eta_min", "base_lrs", "last_epoch", "_step_count", "_last_lr"):
            if key in stored:
                setattr(self, key, stored[key])
