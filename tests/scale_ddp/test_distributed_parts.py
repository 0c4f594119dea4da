"""The parts of a torchrun fit that one process can check: sharding, threads per rank, the signal rules."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
import torch

from conftest import write_library  # tests/conftest.py (pytest puts tests/ on sys.path)
from labeltune.cli_output import stop_on_ctrl_c
from labeltune.core import distributed
from labeltune.core.image_task import TensorBatches


def test_each_step_is_shared_out_over_the_ranks_without_overlap() -> None:
    x, y = torch.arange(37).float().unsqueeze(1), torch.arange(37)
    alone = TensorBatches(x, y, 8, torch.device("cpu"), shuffle=True, seed=3)
    ranks = []
    for rank in range(3):
        part = TensorBatches(x, y, 8, torch.device("cpu"), shuffle=True, seed=3)
        part.shard = (rank, 3)
        ranks.append(part)
    assert len(alone) == 5 and [len(r) for r in ranks] == [5, 5, 5]  # the last step (5 items) has 3+
    for step, whole in enumerate(alone.batches(2)):
        parts = [list(r.batches(2))[step][1].tolist() for r in ranks]
        assert sorted(i for p in parts for i in p) == sorted(
            whole[1].tolist()
        )  # the same global batch, split
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_last_step_smaller_than_the_ranks_is_left_out() -> None:
    x, y = torch.zeros(17, 1), torch.arange(17)
    batches = TensorBatches(x, y, 8, torch.device("cpu"))
    assert len(batches) == 3
    batches.shard = (1, 2)
    assert len(batches) == 2  # 1 item left: one rank would have none and DDP would wait for it
    assert [len(b[1]) for b in batches.batches(1)] == [4, 4]


def test_a_cpu_is_shared_out_between_the_ranks_on_it() -> None:
    assert distributed.rank_threads(2, cpus=2) == 1
    assert distributed.rank_threads(2, cpus=16) == 8
    assert distributed.rank_threads(4, cpus=2) == 1


def test_outside_torchrun_everything_is_one_process() -> None:
    assert not distributed.launched({"WORLD_SIZE": "1"}) and not distributed.launched({})
    assert distributed.launched({"WORLD_SIZE": "2", "RANK": "1"})
    assert distributed.world() is None and distributed.is_main() and distributed.shard() == (0, 1)
    assert distributed.from_main("x") == "x" and distributed.all_sum([1.0, 2.0]) == [1.0, 2.0]
    assert distributed.local_main_first(lambda first: first) is True
    assert distributed.describe({"WORLD_SIZE": "4", "RANK": "1"}) == "rank 1 of 4"


def test_under_torchrun_sigterm_stops_and_a_repeated_signal_does_not_abort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_ctrl_c() as stop:
        signal.raise_signal(signal.SIGTERM)  # torchrun passes its SIGTERM on to every rank
        assert stop.is_set()
        signal.raise_signal(signal.SIGINT)  # ... and the user's Ctrl+C: no KeyboardInterrupt
    assert signal.getsignal(signal.SIGTERM) == before


def test_alone_a_second_ctrl_c_still_aborts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(KeyboardInterrupt), stop_on_ctrl_c() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        signal.raise_signal(signal.SIGINT)


def test_agreed_batches_stop_every_rank_at_the_same_step() -> None:
    from labeltune.core.progress import StoppedError

    source = TensorBatches(torch.zeros(8, 1), torch.arange(8), 2, torch.device("cpu"))
    local, agreed = threading.Event(), threading.Event()
    batches = distributed.AgreedBatches(source, torch.nn.Linear(1, 1), local, agreed)
    seen = []
    with pytest.raises(StoppedError):
        for step, batch in enumerate(batches.batches(1)):
            seen.append(batch[1].tolist())
            if step == 1:
                local.set()  # this rank's signal: the next step is not started
    assert seen == [[0, 1], [2, 3]] and agreed.is_set() and len(batches) == 4


def test_xrd_batches_are_shared_out_over_the_ranks(tmp_path: Path) -> None:
    import numpy as np

    from labeltune.core.xrd.library import load_library
    from labeltune.core.xrd.simulate import SimulationConfig
    from labeltune.core.xrd.train_config import XrdTrainConfig
    from labeltune.core.xrd.train_task import SimulatedBatches

    library = load_library(write_library(tmp_path / "lib"))
    config = XrdTrainConfig(epochs=1, patterns_per_epoch=40, batch_size=10)
    fixed = (torch.arange(40).float().unsqueeze(1), torch.zeros(40, 2, dtype=torch.bool), torch.zeros(40, 2))

    def batches(rank: int, ranks: int, fixed_set: tuple[torch.Tensor, ...] | None) -> list[torch.Tensor]:
        torch.manual_seed(0)  # as train_xrd: the same order on every rank
        rng = np.random.default_rng(0)
        source = SimulatedBatches(
            config, library, SimulationConfig(points=64, max_phases=2), None, fixed_set, 5, rng, 4
        )
        source.shard = (rank, ranks)
        return [b.x for b in source.batches(1)]

    whole = batches(0, 1, fixed)
    parts = [batches(r, 2, fixed) for r in range(2)]
    for step, batch in enumerate(whole):  # a fixed simulated set: each step's items split over the ranks
        assert sorted(torch.cat([p[step] for p in parts]).flatten().tolist()) == sorted(
            batch.flatten().tolist()
        )
    simulated = [
        batches(r, 2, None) for r in range(2)
    ]  # fresh patterns: each rank makes half, different ones
    assert [len(b) for b in simulated[0]] == [5] * 4 and [len(b) for b in simulated[1]] == [5] * 4
    assert not torch.equal(simulated[0][0], simulated[1][0])
