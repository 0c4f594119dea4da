"""Building a model whose weights are replaced at once pulls in no compiler (seconds on every CLI call).

``torch.nn.init.normal_`` on a *meta* tensor goes through torch's Python reference kernels, whose first
use imports ``torch._dynamo`` (about 5 s on a 2-core CPU): every ``predict``, ``suggest`` and
``evaluate`` of a run of the bundled network paid it while loading the run (torchvision's backbones
import it with torchvision itself, ``train`` with ``torch.optim``). Checked in a fresh interpreter,
where nothing has imported it yet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
import torch
from labeltune.core.backbones import build_architecture, build_backbone

state = build_architecture("efficientnet_lite0").state_dict()
parts = build_backbone("efficientnet_lite0", state)
built = dict(torch.nn.Sequential(parts.trunk, parts.top).named_parameters())
assert len(built) > 100 and not any(p.is_meta for p in built.values())
assert any(torch.equal(p, state["_conv_stem.weight"]) for p in built.values()), "not the given weights"
print("dynamo" if "torch._dynamo" in sys.modules else "clean")
"""


def test_building_the_bundled_network_with_its_weights_imports_no_dynamo() -> None:
    desktop = Path(__file__).resolve().parents[2] / "desktop"
    env = {**os.environ, "PYTHONPATH": f"{desktop}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_meta_build_skips_init_only_on_meta_tensors() -> None:
    import torch
    from torch import nn

    from labeltune.core.backbones import meta_build

    real = torch.zeros(4, 4)
    with meta_build():
        conv = nn.Conv2d(3, 4, 3)
        nn.init.normal_(real, 1.0, 0.1)  # another thread's real tensor would still be initialised
    assert conv.weight.is_meta
    assert float(real.mean()) == pytest.approx(1.0, abs=0.2)
    assert nn.init.normal_ is torch.nn.init.normal_ and nn.init.normal_.__module__ == "torch.nn.init"
