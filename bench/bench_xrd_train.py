"""XRD training and prediction: LabelTune's loop against a plain PyTorch loop, side by side in one run.

Run: ``.venv/bin/python bench/bench_xrd_train.py [--quick] [--library DIR]``. Not a test: prints figures.

* **Training.** ``train_xrd`` on a library simulates every batch on the fly (no pattern seen twice) and
  validates each epoch. The reference is the textbook loop over the same network with patterns simulated
  *beforehand* (simulation not timed) — the fastest a fixed-dataset loop can go. The ratio says what
  on-the-fly simulation and the bookkeeping cost per pattern.
* **Prediction.** Seconds per measured pattern with the fit (``predict_patterns``), and the network alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from labeltune.core.xrd.library import Library, build_library, load_library
from labeltune.core.xrd.measured import grid_of
from labeltune.core.xrd.model import XrdNet, XrdNetConfig
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xrd" / "li_mn_ti_o_f"


def _library(path: str | None, tmp: Path) -> Library:
    if path is not None:
        return load_library(path)
    cifs = sorted((DATA / "references").glob("*.cif"))
    if not cifs:
        raise SystemExit(f"no CIFs in {DATA / 'references'}; pass --library DIR")
    return build_library(cifs, tmp / "library")


def _plain_loop(library: Library, patterns: int, batch: int) -> float:
    """Patterns/s of a plain AdamW loop over pre-simulated tensors (simulation not timed)."""
    grid = grid_of(library)
    cfg = SimulationConfig(points=len(grid), min_fraction=0.03)
    data = simulate(library, patterns, cfg, seed=0)
    x = torch.from_numpy(data.x)
    y = torch.from_numpy(data.present).float()
    net = XrdNet(XrdNetConfig(n_phases=len(library.phases), points=len(grid)))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    start = time.perf_counter()
    for i in range(0, patterns - batch + 1, batch):
        logits, _ = net(x[i : i + batch])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[i : i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (patterns // batch * batch) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", default=None, metavar="DIR")
    parser.add_argument("--quick", action="store_true", help="fewer patterns")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    per_epoch = 2048 if args.quick else 8192
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        library = _library(args.library, tmp)
        print(f"library: {len(library.phases)} phases; {per_epoch} patterns per epoch, batch 128, 2 threads")
        ours, plain = [], []
        for r in range(2):
            plain.append(_plain_loop(library, per_epoch, 128))
            config = XrdTrainConfig(epochs=1, patterns_per_epoch=per_epoch, validation_patterns=256, seed=r)
            assert library.path is not None
            start = time.perf_counter()
            train_xrd(library.path, config, tmp / f"run{r}")
            ours.append(per_epoch / (time.perf_counter() - start))
        o, p = statistics.median(ours), statistics.median(plain)
        print(f"plain loop, pre-simulated data   {p:8.0f} patterns/s")
        print(f"train_xrd, simulated on the fly  {o:8.0f} patterns/s   ratio {o / p:.2f}x the plain loop")

        patterns = sorted((DATA / "patterns").glob("*.xy"))
        if patterns:
            from labeltune.core.xrd.inference import load_xrd_model, predict_patterns

            model = load_xrd_model(tmp / "run0")
            start = time.perf_counter()
            predict_patterns(model, patterns, default_wavelength=1.5406, fit=False)
            net_only = (time.perf_counter() - start) / len(patterns)
            start = time.perf_counter()
            predict_patterns(model, patterns, default_wavelength=1.5406, fit=True)
            with_fit = (time.perf_counter() - start) / len(patterns)
            print(
                f"predict {len(patterns)} measured patterns: {net_only * 1000:.0f} ms each (network), "
                f"{with_fit:.2f} s each with the fit (a barely trained model: more fits than usual)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
