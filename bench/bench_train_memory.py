"""Peak memory and step speed of each strategy and backbone: LabelTune (fp32, mixed) against a plain loop.

Run: ``.venv/bin/python bench/bench_train_memory.py [--quick] [--backbones a,b] [--profile]``. Not a test: it
prints a table (and writes ``bench/out/train_memory.json``). Each cell runs in a subprocess of its own, so
one measurement's peak does not mask another's: the child's peak RSS (``ru_maxrss``) and, on CUDA, the
allocator's peak (``max_memory_allocated``).

Per backbone x strategy at the default batch (32; ``--quick``: 8 images at a smaller size):

- *features*: one inference pass of the frozen network over a batch (what filling the feature cache
  costs), then head steps on the pooled features;
- *partial*: the frozen trunk's output (as cached), then steps of the top block + head;
- *full*: steps of the whole network (BatchNorm frozen as LabelTune does for pretrained weights).

Three ways for *partial* and *full*: ``plain`` = a plain PyTorch fp32 loop (NCHW, no autocast, PyTorch's
default AdamW), ``fp32`` = LabelTune's ``--precision fp32`` (channels_last, fused AdamW), ``mixed`` =
LabelTune's default ``--precision auto`` as the trainer resolves it for the backbone and strategy
(``training._precision``: bf16 autocast + channels_last where ``BackboneSpec.cpu_bf16_strategies`` says it
pays, fp32 elsewhere; fp16 AMP on CUDA) with its fused AdamW (``core/optimizer.py``, docs/adr/0060). Each
reports the median step time and the child's peak memory; ``--repeats`` runs the whole grid several times,
the ways of a cell one after another, and reports the medians (a loaded machine drifts). *partial* also
shows ``plain+prefix``: a plain loop that runs the frozen prefix (fp32, eval, no_grad) in every step, as a
loop without LabelTune's trunk cache does, and the prefix's time per batch both ways (LabelTune pays its
bf16 inference pass once per item, into the cache). The micro-batch LabelTune's memory probe
(``core/memory_probe.py``) picks for *full* on this machine is shown as well. It prints the top operators
(torch.profiler) of one plain and one mixed step of *partial* and *full* per backbone (``--no-profile``:
not).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
BACKBONES = ("densenet201", "inception_v3", "alexnet", "efficientnet_lite0")
STRATEGIES = ("features", "partial", "full")
WAYS = ("plain", "fp32", "mixed")
PREFIX = "plain+prefix"  # partial only
BEFORE = "before"  # --before: mixed with PyTorch's default AdamW, as LabelTune stepped before ADR 0060
CHECKPOINTED = "mixed+memory_efficient"  # DenseNet full: mixed with torchvision's checkpointed dense layers


# -- the child: one measurement ------------------------------------------------------------------------
def child(
    backbone: str, strategy: str, way: str, batch: int, size: int | None, steps: int, profile: bool
) -> dict:
    """Build the classifier (random weights), run ``steps`` steps of ``strategy`` ``way``; report."""
    import torch

    from labeltune.core.backbones import get_spec
    from labeltune.core.device import mixed_precision
    from labeltune.core.memory_probe import probe
    from labeltune.core.model import ModelConfig, build_classifier

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size = size or get_spec(backbone).input_size
    config = ModelConfig.for_backbone(backbone, [str(i) for i in range(4)], size)
    model: Any = build_classifier(config, None).to(device)
    plain = way in ("plain", PREFIX)
    fmt = torch.channels_last if not plain and device.type in ("cuda", "cpu") else torch.contiguous_format
    auto = False
    if way in ("mixed", BEFORE, CHECKPOINTED):  # what the trainer resolves --precision auto to
        from labeltune.core.train_config import TrainConfig
        from labeltune.core.training import _precision

        auto = _precision(TrainConfig(backbone=backbone, strategy=strategy), device) == "auto"
    dtype = mixed_precision(device.type, auto)
    x = torch.rand(batch, 3, size, size, device=device)
    y = torch.arange(batch, device=device) % 4
    frozen = torch.nn.Sequential(model.normalize, model.trunk)
    if strategy == "features":
        frozen.append(model.top)
    prefix_s = None
    if strategy != "full":
        frozen.eval()
        frozen.requires_grad_(False)
        # LabelTune fills its cache in bf16 inference (core/features.py); a plain loop runs fp32 NCHW
        fill = torch.autocast(device.type, torch.bfloat16, enabled=not plain and device.type == "cpu")
        frozen.to(memory_format=fmt)
        ticks = []
        for _ in range(2):
            start = time.perf_counter()
            with torch.inference_mode() if not plain else torch.no_grad(), fill:
                inputs = frozen(x.contiguous(memory_format=fmt)).float()
            ticks.append(time.perf_counter() - start)
        prefix_s = min(ticks)
        inputs = inputs.clone()
        trainable = model.head if strategy == "features" else torch.nn.Sequential(model.top, model.head)
    else:
        inputs, trainable = x, model
        for m in model.modules():  # frozen BatchNorm, as for pretrained weights
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
            if way == CHECKPOINTED and hasattr(m, "memory_efficient"):  # torchvision's _DenseLayer
                m.memory_efficient = True  # recompute each layer's concatenation + 1x1 conv in backward
    trainable.to(memory_format=fmt)
    if inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=fmt)
    if way == PREFIX:  # the frozen prefix in every step, then the trainable part
        inputs, net = x, torch.nn.Sequential(frozen, trainable)
    else:
        net = trainable
    params = [p for p in trainable.parameters() if p.requires_grad]
    if plain or way == BEFORE:
        optimizer: Any = torch.optim.AdamW(params, lr=1e-4)
    else:
        from labeltune.core.optimizer import adamw

        optimizer = adamw(params, lr=1e-4, weight_decay=0.01)

    def step() -> None:
        with torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None):
            if way == PREFIX:
                with torch.no_grad():
                    h = frozen(inputs)
                logits = trainable(h)
            else:
                logits = net(inputs)
            loss = torch.nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    out: dict[str, Any] = {
        "step_s": statistics.median(times[1:]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        "prefix_s": prefix_s,
        "precision": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32") if dtype else "fp32",
    }
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        out["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
    if strategy == "full" and way == "mixed":  # what the memory probe picks for the default batch
        from labeltune.core.image_task import TensorBatches
        from labeltune.core.trainer import Trainer

        trainer = Trainer(model, optimizer, torch.nn.functional.cross_entropy,
                          TensorBatches(x, y, batch, device), None, 1, 4, amp=True)  # fmt: skip
        result = probe(trainer, (x, y))
        out["probe"] = {
            "plan": result.plan.describe(),
            "item_mb": result.item_bytes / 2**20,
            "fixed_mb": result.fixed_bytes / 2**20,
            "free_mb": result.free_bytes / 2**20,
        }
    return out


def run_child(args: list[str], timeout: float) -> dict[str, Any]:
    """One cell in a fresh process."""
    cmd = [sys.executable, __file__, "--child", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The cell of several repeats: median step time and prefix time, the largest peak, the last extras."""
    good = [r for r in runs if "step_s" in r]
    if not good:
        return runs[-1] if runs else {"error": "-"}
    cell = {k: v for r in good for k, v in r.items()}  # the profile comes from the first repeat only
    cell["step_s"] = statistics.median(r["step_s"] for r in good)
    cell["step_s_all"] = [round(r["step_s"], 4) for r in good]
    cell["peak_rss_mb"] = max(r["peak_rss_mb"] for r in good)
    if good[0].get("prefix_s") is not None:
        cell["prefix_s"] = statistics.median(r["prefix_s"] for r in good)
    return cell


def _ways(strategy: str, backbone: str) -> tuple[str, ...]:
    if strategy == "features":  # the head is fp32 either way; plain vs mixed shows the cache fill
        return ("plain", "mixed")
    if strategy == "full" and backbone.startswith("densenet"):
        return (*WAYS, CHECKPOINTED)
    return (*WAYS, PREFIX) if strategy == "partial" else WAYS


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the grid, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="batch 8 at 112 px (Inception-v3: 160 px)")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="run each cell this many times; medians")
    parser.add_argument(
        "--profile", action=argparse.BooleanOptionalAction, default=True, help="top operators of a step"
    )
    parser.add_argument("--before", action="store_true", help="also mixed with the unfused AdamW of before")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--child", nargs=7, metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        backbone, strategy, way, batch, size, steps, profile = args.child
        result = child(backbone, strategy, way, int(batch), int(size) or None, int(steps), profile == "1")
        print(json.dumps(result))
        return 0
    import torch

    from labeltune.core.device import cpu_bf16_supported

    batch = 8 if args.quick else 32
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CUDA: {torch.cuda.is_available()}, "
        f"CPU bf16: {cpu_bf16_supported()}; "
        f"batch {batch}{' (quick: small inputs)' if args.quick else ' (the default)'}; "
        f"median of {args.repeats} repeat(s) x {args.steps} step(s)"
    )
    rows: list[dict[str, Any]] = []
    header = f"{'backbone':18s} {'strategy':8s} " + " ".join(
        f"{w + ' s/step':>13s} {w + ' MB':>10s}" for w in WAYS
    )
    print(header + "   mixed vs plain  (mixed = precision)")
    for backbone in args.backbones.split(","):
        size = (160 if backbone == "inception_v3" else 112) if args.quick else 0
        for strategy in args.strategies.split(","):
            row: dict[str, Any] = {"backbone": backbone, "strategy": strategy, "batch": batch, "size": size}
            ways = _ways(strategy, backbone)
            ways = (*ways, BEFORE) if args.before and strategy != "features" else ways
            runs: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
            for repeat in range(args.repeats):  # the ways side by side, so a load change hits all of them
                for way in runs:
                    wanted = args.profile and repeat == 0 and strategy != "features" and way in WAYS[::2]
                    cell = [
                        backbone,
                        strategy,
                        way,
                        str(batch),
                        str(size),
                        str(args.steps),
                        "1" if wanted else "0",
                    ]
                    runs[way].append(run_child(cell, args.timeout))
            for way, done in runs.items():
                row[way] = _median_cell(done)
            rows.append(row)
            cells = []
            for way in WAYS:
                r = row.get(way) or {}
                if "step_s" in r:
                    cells.append(f"{r['step_s']:13.3f} {r['peak_rss_mb']:10.0f}")
                else:
                    cells.append(f"{str(r.get('error', '-'))[:24]:>24s}")
            plain, mixed = row.get("plain", {}), row.get("mixed", {})
            ratio = plain.get("step_s", 0) / mixed["step_s"] if "step_s" in mixed else float("nan")
            used = mixed.get("precision", "?")
            print(
                f"{backbone:18s} {strategy:8s} " + " ".join(cells) + f"   {ratio:5.2f}x ({used})", flush=True
            )
            before = row.get(BEFORE, {})
            if "step_s" in before and "step_s" in mixed:
                print(
                    f"{'':27s}before ADR 0060 (unfused AdamW): {before['step_s']:.3f} s/step -> "
                    f"{plain.get('step_s', 0) / before['step_s']:.2f}x plain; now {ratio:.2f}x"
                )
            saved = row.get(CHECKPOINTED, {})
            if "step_s" in saved and "step_s" in mixed:
                print(
                    f"{'':27s}memory_efficient DenseNet (checkpointed dense layers): {saved['step_s']:.3f} "
                    f"s/step, {saved['peak_rss_mb']:.0f} MB -> {mixed['step_s'] / saved['step_s']:.2f}x the "
                    f"speed and {saved['peak_rss_mb'] / mixed['peak_rss_mb']:.2f}x the memory of mixed"
                )
            prefix = row.get(PREFIX, {})
            if "step_s" in prefix and "step_s" in mixed:
                print(
                    f"{'':27s}plain loop running the frozen prefix each step: {prefix['step_s']:.3f} s/step "
                    f"({prefix['peak_rss_mb']:.0f} MB) -> mixed {prefix['step_s'] / mixed['step_s']:.2f}x; "
                    f"the prefix per batch: plain fp32 {prefix['prefix_s']:.3f} s, LabelTune's bf16 "
                    f"inference {mixed['prefix_s']:.3f} s (once per item, into the trunk cache)"
                )
            if "probe" in mixed:
                p = mixed["probe"]
                print(
                    f"{'':27s}memory probe: batch {batch} as {p['plan']} ({p['item_mb']:.0f} MB per image, "
                    f"{p['fixed_mb']:.0f} MB per step, {p['free_mb'] / 1024:.1f} GB free)"
                )
            for way in ("plain", "mixed"):
                if "profile" in row.get(way, {}):
                    print(f"{'':27s}profile of one {way} {strategy} step ({backbone}), top operators:")
                    print(row[way]["profile"])
    OUT.mkdir(exist_ok=True)
    (OUT / "train_memory.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
