"""An XRD model extended to a library that adds phases to its own (``train LIBRARY --init RUN``).

The network is RUN's; the presence and fraction layers gain one output per new phase, RUN's phases' rows
copied to their places in the new library's order. Training then simulates patterns of every phase of
the new library: the old phases rehearse for free (docs/adr/0053). A library that drops or renames a
phase is refused: its outputs would mean something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from labeltune.core.xrd.model import XrdNet


def extends(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether ``new`` holds every phase of ``old`` and more."""
    return set(old) < set(new)


def extend_net(net: XrdNet, old: Sequence[str], new: Sequence[str]) -> XrdNet:
    """``net`` with outputs for ``new`` (a superset of ``old``); the old phases' rows are kept."""
    wider = XrdNet(replace(net.config, n_phases=len(new)))
    state = wider.state_dict()
    rows = torch.tensor([list(new).index(name) for name in old])
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if key.startswith(("presence.", "fraction.")):
                state[key][rows] = value
            else:
                state[key].copy_(value)
    wider.load_state_dict(state)
    return wider


def added_phases_record(run: str, old: Sequence[str], new: Sequence[str]) -> dict[str, Any]:
    """What ``metrics.json`` says about the extension."""
    return {"init_run": run, "old_phases": list(old), "new_phases": [n for n in new if n not in old]}
