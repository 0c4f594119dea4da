"""Adding classes to a fine-tuned (*full*) run: the new logits' shift when old margins lie (ADR 0064).

A network fine-tuned on the old training items is sure of every one of them, so held-out training folds
keep all old items at any shift and would choose none; on items it never saw the old classes are less
sure, and the new classes take some. For such runs the shift goes as far as the new items, which the network
never saw, can bear.
"""

from __future__ import annotations

import numpy as np
import torch

from labeltune.core import add_classes
from labeltune.core.add_classes import choose_new_class_shift
from labeltune.core.train_config import TrainConfig
from labeltune.core.train_data import PreparedData
from labeltune.core.train_inputs import FitInputs


def inputs_and_template() -> tuple[FitInputs, torch.nn.Linear]:
    """Two old classes the template is sure of, one new class near them (60 training items each)."""
    rng = np.random.default_rng(0)
    n, dim = 60, 4
    old0 = rng.normal(0, 0.3, (n, dim)) + np.array([6, 0, 0, 0])
    old1 = rng.normal(0, 0.3, (n, dim)) + np.array([0, 6, 0, 0])
    new = rng.normal(0, 0.3, (n, dim)) + np.array([1.5, 1.5, 2, 0])
    x = torch.tensor(np.concatenate([old0, old1, new]), dtype=torch.float32)
    labels = np.repeat([0, 1, 2], n)
    data = PreparedData(
        paths=[], hashes=[], labels=labels, is_val=np.zeros(len(labels), bool), classes=["a", "b", "c"],
        skipped=[], groups=[f"g{i}" for i in range(len(labels))],
    )  # fmt: skip
    head = torch.nn.Linear(dim, 3)
    with torch.no_grad():  # RUN's head: the old rows fitted (sure of the old items), the new row fresh
        head.weight[:2] = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0]])
        head.bias[:2] = 0
    inputs = FitInputs(data, "w", head, [], x, torch.from_numpy(labels), x[:0], x, None, lambda t, _: t)
    return inputs, head


def test_a_seen_network_shifts_the_new_classes_as_far_as_their_items_bear(monkeypatch):
    inputs, head = inputs_and_template()
    config = TrainConfig(epochs=30, seed=0, lr=1e-2)
    unseen = choose_new_class_shift(head, inputs, 2, config)
    seen = choose_new_class_shift(head, inputs, 2, config, seen=True)
    assert unseen == 0.0  # the held-out folds lose no old item: nothing to guard against
    assert seen > 0.0
    monkeypatch.setattr(add_classes, "NEW_TOLERANCE_SEEN", 0.5)  # the new items may lose half
    assert choose_new_class_shift(head, inputs, 2, config, seen=True) > seen
    monkeypatch.setattr(add_classes, "NEW_TOLERANCE_SEEN", 0.0)  # none: the plateau of the best
    assert choose_new_class_shift(head, inputs, 2, config, seen=True) <= seen
