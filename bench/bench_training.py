"""Training benchmark: LabelTune's training runs against plain PyTorch references, side by side.

Run: ``.venv/bin/python bench/bench_training.py [--quick] [--profile]``. Not a test: it prints a table of
ratios (and writes ``bench/out/training.json``) and asserts nothing. The machine may be shared and noisy, so
every figure is a ratio of timings taken in this one run, alternating the two sides where it matters.

Random weights throughout (``weights="none"``: nothing to download). That changes one cost only: a
*features* run from random weights first calibrates BatchNorm statistics on up to 64 training images, which
a run from pretrained weights does not do. It is shown separately.

1. *features*, 10 epochs, cold cache, against ONE forward pass of the same backbone over the same images
   (Pillow decode + ``inference_mode`` + batch 32): in fp32, and with the engine's own CPU settings
   (channels_last + bf16 autocast where the CPU has it). Target <= 1.2x.
2. The textbook frozen-backbone loop (torchvision transfer-learning tutorial: ``ImageFolder``,
   ``Resize``/``ToTensor``/``Normalize``, ``DataLoader(batch_size=32, shuffle=True, num_workers=0)``, new
   last layer, SGD lr 0.001 momentum 0.9, ``model.train()`` so the backbone runs every epoch, validation
   every epoch) against *features*. The tutorial loop runs fewer epochs; its 10-epoch time is its setup +
   10 x its fastest epoch (conservative). Target: LabelTune >= 8x faster.
3. The same *features* run again with another learning rate (warm cache) against the cold run. Target
   >= 50x. The re-run's time is broken down (``labeltune.core.training``'s steps wrapped with timers), a
   ``labeltune train`` CLI re-run is timed end to end (imports included) against a CLI cold run, and a
   re-run with ``threads=1`` shows what the head-training loop loses to thread synchronisation.
4. *full* fine-tuning step time (training batches only: a callback times consecutive batches of an epoch)
   against a plain PyTorch loop on the same decoded tensors: same model, batch size, input size, AdamW,
   fp32. Rotating order, medians. Target: within 5 % (ratio <= 1.05). The plain loop again in LabelTune's
   CPU memory format (channels_last) separates LabelTune's loop overhead from what that format wins.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import functools
import io
import json
import math
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from labeltune.core import training
from labeltune.core.backbones import get_spec
from labeltune.core.datasets import scan
from labeltune.core.device import cpu_bf16_supported
from labeltune.core.imaging import is_image_file, load_array
from labeltune.core.trainer import Callback, Trainer

CORN_IMAGES = Path("/work/shared/data/corn_leaf/images")
OUT_DIR = Path(__file__).resolve().parent / "out"
BATCH = 32
EPOCHS = 10
CALIBRATION = "BatchNorm calibration (compute / load)"


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark mode."""

    backbone: str
    input_size: int
    per_class: int | None  # images per class for 1-3 (None: all)
    rounds: int  # cold features runs and forward passes of each kind, alternating
    warm_runs: int  # per cold run: warm re-runs of each kind (default threads, threads=1), alternating
    textbook_epochs: int  # per round (next to the cold features run), then extrapolated to EPOCHS
    full_backbone: str
    full_input_size: int
    full_steps: int  # training steps per engine epoch (train images = full_steps * BATCH)
    full_rounds: int  # rounds of LabelTune / plain / plain channels_last, in rotating order


FULL = Settings("densenet201", 224, None, 2, 2, 1, "resnet18", 224, 4, 3)
# Quick: the same images at 112 px (a quarter of the compute), single rounds; a smoke run, noisier.
QUICK = Settings("resnet18", 112, None, 1, 2, 1, "resnet18", 128, 3, 3)
EPOCH_FILES = "  of which per-epoch files (history, checkpoint.pt)"


# -- data -----------------------------------------------------------------------------------------------
def make_dataset(folder: Path, per_class: int | None, synthetic_per_class: int = 60) -> str:
    """Copy the corn-leaf images (or write synthetic 640x480 JPEGs) into ``folder/<class>/``."""
    if CORN_IMAGES.is_dir():
        for class_dir in sorted(p for p in CORN_IMAGES.iterdir() if p.is_dir()):
            files = sorted(p for p in class_dir.iterdir() if is_image_file(p))[:per_class]
            (folder / class_dir.name).mkdir(parents=True, exist_ok=True)
            for path in files:
                shutil.copyfile(path, folder / class_dir.name / path.name)
        return f"corn_leaf ({CORN_IMAGES})"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    for c in range(4):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class or synthetic_per_class):
            freq = 2 + c + rng.uniform(0, 1)
            channels = [np.sin(freq * (x / 640 + k / 3) * np.pi) * np.cos(y / 480 * np.pi) for k in range(3)]
            image = 127 + 100 * np.stack(channels, axis=-1)
            image += rng.standard_normal(image.shape).astype(np.float32) * 8
            image = np.clip(image, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"class{c}" / f"img{i:04d}.jpg", quality=90)
    return "synthetic 640x480 JPEGs"


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))


# -- helpers --------------------------------------------------------------------------------------------
def torchvision_model(name: str, num_classes: int | None = None) -> nn.Module:
    """The torchvision model ``name`` (random weights), its last Linear replaced when ``num_classes``."""
    from torchvision import models

    kwargs: dict[str, Any] = {"aux_logits": False, "init_weights": True} if name == "inception_v3" else {}
    model = models.get_model(name, weights=None, **kwargs)
    if num_classes is not None:
        replace_head(model, num_classes)
    return model


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Replace the model's last ``nn.Linear`` (``fc`` / ``classifier[-1]``) by a new one for our classes."""
    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, attr = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    setattr(parent, attr, nn.Linear(old.in_features, num_classes))


def normalize(x: torch.Tensor, backbone: str) -> torch.Tensor:
    spec = get_spec(backbone)
    return (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def fmt_list(values: Sequence[float], digits: int = 2) -> str:
    return "[" + ", ".join(f"{v:.{digits}f}" for v in values) + "]"


def train_config(s: Settings, **changes: Any) -> training.TrainConfig:
    base: dict[str, Any] = {
        "backbone": s.backbone,
        "strategy": "features",
        "weights": "none",
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "input_size": s.input_size,
        "patience": 0,
        "seed": 0,
    }
    return training.TrainConfig(**{**base, **changes})


def run_engine(
    data_root: Path, config: training.TrainConfig, run_dir: Path, cache_root: Path, **kw: Any
) -> training.RunResult:
    """``train()`` on a fresh scan; the process's thread count is restored afterwards."""
    threads = torch.get_num_threads()
    try:
        return training.train(scan(data_root), config, run_dir, cache_root=cache_root, **kw)
    finally:
        torch.set_num_threads(threads)


# -- 1. one forward pass --------------------------------------------------------------------------------
def forward_pass(paths: Sequence[Path], backbone: str, size: int, optimised: bool) -> dict[str, float]:
    """Decode with Pillow and run the backbone once over ``paths`` (batch 32); seconds, split."""
    model = torchvision_model(backbone).eval()
    fmt = torch.channels_last if optimised else torch.contiguous_format
    model.to(memory_format=fmt)
    autocast = optimised and cpu_bf16_supported()
    decode = forward = 0.0
    start = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(paths), BATCH):
            t0 = time.perf_counter()
            arrays = [
                np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
                for p in paths[b : b + BATCH]
            ]
            x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
            x = normalize(x, backbone).contiguous(memory_format=fmt)
            t1 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                model(x).float()
            t2 = time.perf_counter()
            decode += t1 - t0
            forward += t2 - t1
    return {"seconds": time.perf_counter() - start, "decode": decode, "forward": forward}


# -- 2. the textbook loop -------------------------------------------------------------------------------
def textbook_loop(root: Path, backbone: str, size: int, epochs: int, scratch: Path) -> dict[str, Any]:
    """The torchvision transfer-learning tutorial's frozen-backbone loop; setup and per-epoch seconds."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    start = time.perf_counter()
    spec = get_spec(backbone)
    tf = transforms.Compose(
        [transforms.Resize((size, size)), transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)]
    )
    full = datasets.ImageFolder(str(root), tf)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(0)).tolist()
    n_val = round(0.2 * len(full))
    loaders = {
        "train": DataLoader(Subset(full, order[n_val:]), batch_size=BATCH, shuffle=True, num_workers=0),
        "val": DataLoader(Subset(full, order[:n_val]), batch_size=BATCH, shuffle=False, num_workers=0),
    }
    model = torchvision_model(backbone)
    for param in model.parameters():
        param.requires_grad = False
    replace_head(model, len(full.classes))  # the new layer's parameters are the only trainable ones
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
    setup = time.perf_counter() - start
    best_acc, epoch_seconds = -1.0, []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for phase in ("train", "val"):
            model.train(phase == "train")
            running_loss, corrects = 0.0, 0
            for inputs, labels in loaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                corrects += int(torch.sum(preds == labels.data))
            if phase == "train":
                scheduler.step()
            elif corrects / max(n_val, 1) > best_acc:  # the tutorial keeps the best weights on disk
                best_acc = corrects / max(n_val, 1)
                torch.save(model.state_dict(), scratch / "best_model_params.pt")
        epoch_seconds.append(time.perf_counter() - t0)
    return {"setup": setup, "epoch_seconds": epoch_seconds}


# -- 3. where a run's time goes -------------------------------------------------------------------------
def _timed_parts() -> list[tuple[str, Any, str]]:
    """(label, owner, attribute) of ``train()``'s steps, in order; nested ones start with spaces."""
    from labeltune.core import features, train_callbacks, train_inputs, weights

    return [
        ("prepare_data (hash files, split)", training, "prepare_data"),
        ("write_manifest", training, "write_manifest"),
        ("resolve_weights", weights, "resolve_weights"),
        ("build_classifier (construct + init model)", training, "build_classifier"),
        ("FeatureCache open", features.FeatureCache, "__init__"),
        (CALIBRATION, train_inputs, "calibrated_batchnorm"),
        ("extract_features (cache read / decode + backbone)", train_inputs, "extract_features"),
        ("write_run_config", training, "write_run_config"),
        ("Trainer.fit (10 epochs: head steps + validation)", Trainer, "fit"),
        (EPOCH_FILES, train_callbacks.Checkpoints, "on_epoch_end"),
        ("predict_batches (final validation)", training, "predict_batches"),
        ("save_model (model.safetensors)", training, "save_model"),
        ("write_history", train_callbacks, "write_history"),
    ]


@contextlib.contextmanager
def timing_patches() -> Iterator[dict[str, float]]:
    """Wrap the engine's steps with timers (in this process, while inside); yield label -> seconds."""
    seconds: dict[str, float] = {}
    restore: list[tuple[Any, str, Any]] = []

    def wrap(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start

        return timed

    for label, owner, attr in _timed_parts():
        original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        restore.append((owner, attr, original))
        setattr(owner, attr, wrap(label, original))
    try:
        yield seconds
    finally:
        for owner, attr, original in reversed(restore):
            setattr(owner, attr, original)


def breakdown(parts: dict[str, float], total: float) -> list[tuple[str, float]]:
    """The timed steps in ``train()`` order, plus the rest of ``seconds_total``."""
    out = [(label, parts[label]) for label, _, _ in _timed_parts() if label in parts]
    accounted = sum(secs for label, secs in out if not label.startswith(" "))
    out.append(("rest (imports in _fit, device, optimizer, metrics.json)", total - accounted))
    return out


def fresh_process_seconds(code: str) -> float:
    """Seconds a fresh interpreter takes to run ``code`` (which prints its own timing last)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def import_seconds() -> dict[str, float]:
    timed = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
    return {
        label: fresh_process_seconds(timed.format(code))
        for label, code in (
            ("import torch", "import torch"),
            ("import torch, torchvision", "import torch, torchvision"),
            ("import labeltune.cli + torch + torchvision.models", "import labeltune.cli, torchvision.models"),
        )
    }


def hashing_speed(tmp: Path, dataset_bytes: int) -> dict[str, float]:
    """``file_sha256`` throughput on a 64 MB file in the OS cache (every run hashes every file)."""
    from labeltune.core.hashing import file_sha256

    big = tmp / "hash-probe.bin"
    big.write_bytes(np.random.default_rng(0).bytes(64 << 20))
    file_sha256(big)
    start = time.perf_counter()
    file_sha256(big)
    seconds = time.perf_counter() - start
    big.unlink()
    return {"mb_per_s": 64 * 1.048576 / seconds, "dataset_mb": dataset_bytes / 1e6}


def cli_run(data_root: Path, s: Settings, cache_root: Path, out: Path, lr: float) -> dict[str, Any]:
    """``labeltune train`` as a user types it: wall seconds and the run's own figures."""
    cmd = [sys.executable, "-m", "labeltune", "train", str(data_root), "--backbone", s.backbone]
    cmd += [
        "--weights",
        "none",
        "--epochs",
        str(EPOCHS),
        "--patience",
        "0",
        "--input-size",
        str(s.input_size),
    ]
    cmd += ["--lr", str(lr), "--out", str(out), "--json"]
    env = {**os.environ, "LABELTUNE_CACHE_DIR": str(cache_root)}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    summary = json.loads(done.stdout)
    return {
        "wall": wall,
        "seconds_total": summary["seconds_total"],
        "seconds_features": summary["seconds_features"],
    }


def profile_warm_run(data_root: Path, s: Settings, cache_root: Path, run_dir: Path) -> str:
    data = scan(data_root)
    profiler = cProfile.Profile()
    profiler.enable()
    training.train(data, train_config(s, lr=2e-4), run_dir, cache_root=cache_root)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
    return text.getvalue()


# -- 4. full fine-tuning --------------------------------------------------------------------------------
class StepTimer(Callback):
    """Seconds between consecutive training batches of one epoch (an epoch's first batch is left out: its
    interval would hold the fit's warm-up or the previous epoch's validation and files)."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self._last: float | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self._last = None

    def on_batch_end(self, trainer: Trainer, batch: int, batches: int, loss: float) -> None:
        now = time.perf_counter()
        if batch > 1 and self._last is not None:
            self.steps.append(now - self._last)
        self._last = now

    def on_epoch_end(self, trainer: Trainer, record: Any) -> None:
        self._last = None


def plain_full_loop(
    x: torch.Tensor,
    y: torch.Tensor,
    backbone: str,
    num_classes: int,
    steps: int,
    lr: float,
    fmt: torch.memory_format = torch.contiguous_format,
) -> list[float]:
    """Plain PyTorch full fine-tuning of one epoch on float NCHW tensors (normalised): AdamW, fp32.

    ``fmt=torch.channels_last`` gives the model and each batch LabelTune's CPU memory format: that variant
    tells LabelTune's loop overhead apart from what the memory format wins.
    """
    torch.manual_seed(0)
    model = torchvision_model(backbone, num_classes).train().to(memory_format=fmt)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    order = torch.randperm(len(y))
    intervals, last = [], None
    for b in range(steps):
        index = order[b * BATCH : (b + 1) * BATCH]
        loss = criterion(model(x[index].contiguous(memory_format=fmt)), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
        now = time.perf_counter()
        if last is not None:
            intervals.append(now - last)
        last = now
    return intervals


def bench_full(s: Settings, tmp: Path, source: Path) -> dict[str, Any]:
    """Engine *full* runs and plain loops (NCHW, channels_last) on the same images, in rotating order."""
    folder = tmp / "full_data"
    n_train = s.full_steps * BATCH
    by_class: dict[str, list[Path]] = {}
    for path in image_files(source):
        by_class.setdefault(path.parent.name, []).append(path)
    per_class = math.ceil(n_train / len(by_class))
    for path in [p for ps in by_class.values() for p in ps[:per_class]][:n_train]:
        (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.parent.name / path.name)
    classes = sorted(by_class)
    files = image_files(folder)
    x = torch.from_numpy(np.stack([load_array(p, s.full_input_size) for p in files]))  # the engine's decoder
    x = normalize(x.permute(0, 3, 1, 2).float().div(255.0), s.full_backbone).contiguous()
    y = torch.tensor([classes.index(p.parent.name) for p in files])
    config = training.TrainConfig(
        backbone=s.full_backbone,
        strategy="full",
        weights="none",
        epochs=1,
        batch_size=BATCH,
        val_fraction=0.0,
        input_size=s.full_input_size,
        augment=False,
        patience=0,
    )
    steps: dict[str, list[float]] = {"engine": [], "plain": [], "plain_cl": []}
    epoch_seconds: list[float] = []
    files_seconds: list[float] = []  # per epoch: history.csv + checkpoint.pt
    checkpoint_mb = 0.0
    orders = [
        ("engine", "plain", "plain_cl"),
        ("plain_cl", "plain", "engine"),
        ("plain", "engine", "plain_cl"),
    ]
    for r in range(s.full_rounds):
        for which in orders[r % len(orders)]:
            if which == "engine":
                timer = StepTimer()
                with timing_patches() as parts:
                    run_dir = tmp / f"full-run{r}"
                    result = run_engine(folder, config, run_dir, tmp / f"full-cache{r}", callbacks=[timer])
                if result.train_size != n_train:
                    raise RuntimeError(f"engine trained on {result.train_size} images, not {n_train}")
                steps[which] += timer.steps
                epoch_seconds += [rec.seconds for rec in result.history]
                files_seconds.append(parts.get(EPOCH_FILES, 0.0) / max(len(result.history), 1))
                checkpoint_mb = (run_dir / training.CHECKPOINT_FILE).stat().st_size / 1e6
            else:
                fmt = torch.channels_last if which == "plain_cl" else torch.contiguous_format
                lr = config.resolved_lr()
                steps[which] += plain_full_loop(x, y, s.full_backbone, len(classes), s.full_steps, lr, fmt)
            latest = steps[which][-(s.full_steps - 1) :]
            print(f"  full fine-tuning {which} {r + 1}: steps {fmt_list(latest)} s", flush=True)
    # Augmentation is on by default (off above, to train on the same tensors): its cost per batch.
    from labeltune.core.augment import augment_batch

    batch = torch.rand(BATCH, 3, s.full_input_size, s.full_input_size).contiguous(
        memory_format=torch.channels_last
    )
    augment_batch(batch)
    start = time.perf_counter()
    for _ in range(5):
        augment_batch(batch)
    return {
        "engine_steps": steps["engine"],
        "plain_steps": steps["plain"],
        "plain_channels_last_steps": steps["plain_cl"],
        "engine_epoch_seconds": epoch_seconds,
        "augment_batch_seconds": (time.perf_counter() - start) / 5,
        "train_images": n_train,
        "epoch_files_seconds": files_seconds,
        "checkpoint_mb": checkpoint_mb,
    }


# -- the run --------------------------------------------------------------------------------------------
def measure(s: Settings, tmp: Path, profile: bool) -> dict[str, Any]:
    data_root = tmp / "data"
    source = make_dataset(data_root, s.per_class)
    paths = image_files(data_root)
    for path in paths:  # into the OS file cache before anything is timed
        path.read_bytes()
    print(
        f"data: {source}, {len(paths)} images; {s.backbone} at {s.input_size} px; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, bf16 autocast: {cpu_bf16_supported()}",
        flush=True,
    )
    if hasattr(os, "getloadavg"):
        print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)", flush=True)
    m: dict[str, Any] = {"source": source, "images": len(paths)}

    # 1, 2 and 3 (cold side): forward passes, cold features runs and the textbook loop, alternating, so
    # that load from other processes falls on both sides of each ratio alike.
    fwd: dict[str, list[dict[str, float]]] = {"fp32": [], "opt": []}
    cold: list[training.RunResult] = []
    cold_parts: list[dict[str, float]] = []
    books: list[dict[str, Any]] = []
    warm: list[training.RunResult] = []  # 3 (warm side), right after each cold run, on its cache
    warm1: list[training.RunResult] = []  # the same with threads=1
    for r in range(s.rounds):
        steps = (
            ("fp32", "features", "textbook", "opt") if r % 2 == 0 else ("opt", "textbook", "features", "fp32")
        )
        for step in steps:
            if step == "textbook":
                books.append(textbook_loop(data_root, s.backbone, s.input_size, s.textbook_epochs, tmp))
                print(f"  textbook loop {r + 1}: epochs {fmt_list(books[-1]['epoch_seconds'])} s", flush=True)
            elif step == "features":
                with timing_patches() as parts:
                    cold.append(run_engine(data_root, train_config(s), tmp / f"cold{r}", tmp / f"cache{r}"))
                cold_parts.append(dict(parts))
                print(f"  features cold run {r + 1}: {cold[-1].seconds_total:.2f} s", flush=True)
                for w in range(s.warm_runs):  # same config, other learning rates
                    for threads in (None, 1) if w % 2 == 0 else (1, None):
                        config = train_config(s, lr=5e-4 / (w + 2), threads=threads)
                        result = run_engine(
                            data_root, config, tmp / f"warm{r}-{w}-{threads}", tmp / f"cache{r}"
                        )
                        (warm if threads is None else warm1).append(result)
                    last, last1 = warm[-1].seconds_total, warm1[-1].seconds_total
                    print(f"    warm re-run {w + 1}: {last:.3f} s, threads=1: {last1:.3f} s", flush=True)
            else:
                fwd[step].append(forward_pass(paths, s.backbone, s.input_size, step == "opt"))
                print(f"  forward pass {step} {r + 1}: {fwd[step][-1]['seconds']:.2f} s", flush=True)
    m |= {"forward": fwd, "cold": cold, "cold_parts": cold_parts}
    m["textbook"] = {
        "setup": median([b["setup"] for b in books]),
        "epoch_seconds": [e for b in books for e in b["epoch_seconds"]],
    }
    m |= {"warm": warm, "warm_threads1": warm1}

    # 3: one more warm re-run of each kind, its steps timed; then the CLI, cold and warm, and imports.
    for threads in (None, 1):
        with timing_patches() as parts:
            config = train_config(s, lr=3e-4, threads=threads)
            result = run_engine(data_root, config, tmp / f"warm-parts-{threads}", tmp / "cache0")
        m["warm_timed" if threads is None else "warm_timed_threads1"] = (result, dict(parts))
    cli_warm = cli_run(data_root, s, tmp / "cache0", tmp / "cli-warm", 2.5e-4)
    cli_cold = cli_run(data_root, s, tmp / "cache-cli", tmp / "cli-cold", 1e-3)
    print(
        f"  CLI cold run: {cli_cold['wall']:.2f} s wall, warm re-run: {cli_warm['wall']:.2f} s wall",
        flush=True,
    )
    m |= {"cli_warm": cli_warm, "cli_cold": cli_cold, "imports": import_seconds()}
    m["hashing"] = hashing_speed(tmp, sum(p.stat().st_size for p in paths))
    m["profile"] = profile_warm_run(data_root, s, tmp / "cache0", tmp / "warm-prof") if profile else ""

    # 4: full fine-tuning.
    m["full"] = bench_full(s, tmp, data_root)
    return m


def summarise(s: Settings, m: dict[str, Any]) -> list[dict[str, Any]]:
    """The table rows (and derived figures, stored in ``m``)."""
    cold_total = median([r.seconds_total for r in m["cold"]])
    cold_features = median([r.seconds_features for r in m["cold"]])
    calibration = median([p.get(CALIBRATION, 0.0) for p in m["cold_parts"]])
    fwd32 = median([f["seconds"] for f in m["forward"]["fp32"]])
    fwd_opt = median([f["seconds"] for f in m["forward"]["opt"]])
    warm = median([r.seconds_total for r in m["warm"]])
    warm1 = median([r.seconds_total for r in m["warm_threads1"]])
    warm_features = median([r.seconds_features for r in m["warm"]])
    book = m["textbook"]
    book_10 = book["setup"] + EPOCHS * min(book["epoch_seconds"])
    engine_step = median(m["full"]["engine_steps"])
    plain_step = median(m["full"]["plain_steps"])
    cli_cold, cli_warm = m["cli_cold"]["wall"], m["cli_warm"]["wall"]
    m["derived"] = {"textbook_10_epochs": book_10, "calibration": calibration}

    rows: list[dict[str, Any]] = []

    def row(name: str, ours: float, ref: float, ratio: float, target: str, ok: bool | None) -> None:
        rows.append(
            {
                "measurement": name,
                "labeltune_s": ours,
                "reference_s": ref,
                "ratio": ratio,
                "target": target,
                "pass": ok,
            }
        )

    opt = "bf16+CL" if cpu_bf16_supported() else "CL"
    row(
        "1  features 10 ep cold / 1 fwd pass fp32",
        cold_total,
        fwd32,
        cold_total / fwd32,
        "<= 1.20",
        cold_total / fwd32 <= 1.2,
    )
    row(
        f"1b features 10 ep cold / 1 fwd pass {opt}",
        cold_total,
        fwd_opt,
        cold_total / fwd_opt,
        "<= 1.20",
        None,
    )
    no_cal = cold_total - calibration
    row("1c   same minus BN calibration / fwd fp32", no_cal, fwd32, no_cal / fwd32, "<= 1.20", None)
    row(f"1d   same minus BN calibration / fwd {opt}", no_cal, fwd_opt, no_cal / fwd_opt, "<= 1.20", None)
    row(
        f"2  textbook 10 ep (from {len(book['epoch_seconds'])}) / features",
        cold_total,
        book_10,
        book_10 / cold_total,
        ">= 8",
        book_10 / cold_total >= 8,
    )
    row(
        "3  cold / warm re-run (seconds_total)",
        warm,
        cold_total,
        cold_total / warm,
        ">= 50",
        cold_total / warm >= 50,
    )
    ratio_f = cold_features / warm_features if warm_features > 0 else math.inf
    row("3b cold / warm (seconds_features)", warm_features, cold_features, ratio_f, ">= 50", None)
    row("3c cold / warm re-run with threads=1", warm1, cold_total, cold_total / warm1, ">= 50", None)
    row("3d CLI cold / CLI warm (wall, with imports)", cli_warm, cli_cold, cli_cold / cli_warm, ">= 50", None)
    row(
        f"4  full FT step LabelTune / plain ({s.full_backbone} {s.full_input_size})",
        engine_step,
        plain_step,
        engine_step / plain_step,
        "<= 1.05",
        engine_step / plain_step <= 1.05,
    )
    plain_cl = median(m["full"]["plain_channels_last_steps"])
    row(
        "4b full FT step LabelTune / plain channels_last",
        engine_step,
        plain_cl,
        engine_step / plain_cl,
        "<= 1.05",
        None,
    )
    # Load from other processes only ever adds time: the fastest steps are the least disturbed figures.
    fastest, fastest_cl = min(m["full"]["engine_steps"]), min(m["full"]["plain_channels_last_steps"])
    row(
        "4c   fastest steps: LabelTune / plain channels_last",
        fastest,
        fastest_cl,
        fastest / fastest_cl,
        "<= 1.05",
        None,
    )
    return rows


def report(s: Settings, m: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    fwd, cold, full = m["forward"], m["cold"], m["full"]
    print()
    print("1. features run (cold cache) against one forward pass")
    for key, label in (
        ("fp32", "fp32"),
        ("opt", "bf16 + channels_last" if cpu_bf16_supported() else "channels_last"),
    ):
        runs = fwd[key]
        total, decode, forward = (median([f[k] for f in runs]) for k in ("seconds", "decode", "forward"))
        print(
            f"   forward pass {label:<21} {total:7.2f} s  (decode {decode:.2f} s, backbone {forward:.2f} s)"
        )
    totals, features = [r.seconds_total for r in cold], [r.seconds_features for r in cold]
    print(f"   features run seconds_total    {median(totals):7.2f} s  (runs {fmt_list(totals)})")
    print(f"   features run seconds_features {median(features):7.2f} s  (runs {fmt_list(features)})")
    print(f"   where cold run 1's {cold[0].seconds_total:.2f} s go:")
    for label, secs in breakdown(m["cold_parts"][0], cold[0].seconds_total):
        print(f"     {label:<58} {secs:7.3f} s  {100 * secs / cold[0].seconds_total:5.1f} %")
    book = m["textbook"]
    print()
    print(
        f"2. textbook loop: setup {book['setup']:.2f} s (median), epochs {fmt_list(book['epoch_seconds'])} s"
    )
    book_10 = m["derived"]["textbook_10_epochs"]
    print(f"   {EPOCHS} epochs = setup + {EPOCHS} x fastest epoch = {book_10:.1f} s (extrapolated)")
    print()
    warm = m["warm"]
    totals, features = [r.seconds_total for r in warm], [r.seconds_features for r in warm]
    print(f"3. warm re-run seconds_total {fmt_list(totals, 3)} s, seconds_features {fmt_list(features, 3)} s")
    print(f"   with threads=1: seconds_total {fmt_list([r.seconds_total for r in m['warm_threads1']], 3)} s")
    (timed, parts), (timed1, parts1) = m["warm_timed"], m["warm_timed_threads1"]
    print(f"   where one more warm re-run's time goes{'default threads':>39}{'threads=1':>20}")
    rows1 = dict(breakdown(parts1, timed1.seconds_total))
    for label, secs in [*breakdown(parts, timed.seconds_total), ("seconds_total", timed.seconds_total)]:
        secs1 = rows1.get(label, timed1.seconds_total)
        print(
            f"     {label:<58} {secs:7.3f} s {100 * secs / timed.seconds_total:5.1f} %"
            f"  {secs1:7.3f} s {100 * secs1 / timed1.seconds_total:5.1f} %"
        )
    for name in ("cli_cold", "cli_warm"):
        c = m[name]
        print(
            f"   `labeltune train` {name[4:]:<4}: {c['wall']:6.2f} s wall; "
            f"seconds_total {c['seconds_total']:.2f} s, seconds_features {c['seconds_features']:.2f} s"
        )
    for label, secs in m["imports"].items():
        print(f"     fresh interpreter: {label:<52} {secs:5.2f} s")
    speed, mb = m["hashing"]["mb_per_s"], m["hashing"]["dataset_mb"]
    per_image = median([r.seconds_features for r in cold]) / m["images"]
    print(
        f"   every run sha256-hashes every file (prepare_data): {speed:.0f} MB/s here, {mb:.1f} MB of images "
        f"= {1000 * mb / speed:.0f} ms.\n   Not measured, projected: a 5 MB camera photo takes "
        f"{5000 / speed:.1f} ms to hash, against {1000 * per_image:.1f} ms/image of backbone in the cold run."
    )
    if m["profile"]:
        print("   cProfile of a warm re-run (cumulative):")
        print(m["profile"])
    engine_step = median(full["engine_steps"])
    print()
    n = full["train_images"]
    print(
        f"4. full fine-tuning: {n} training images, batch {BATCH}, {s.full_rounds} rounds in rotating order"
    )
    for label, key in (
        ("LabelTune          ", "engine_steps"),
        ("plain loop (NCHW)  ", "plain_steps"),
        ("plain channels_last", "plain_channels_last_steps"),
    ):
        step, fastest = median(full[key]), min(full[key])
        print(
            f"   {label} {step:.3f} s/step median ({BATCH / step:5.1f} img/s), fastest {fastest:.3f} s; "
            f"steps {fmt_list(full[key])}"
        )
    per_epoch = median(full["engine_epoch_seconds"])
    print(
        f"   LabelTune EpochRecord.seconds median {per_epoch:.2f} s = {n / per_epoch:.1f} img/s "
        "(with the first batch's warm-up)"
    )
    files, mb = median(full["epoch_files_seconds"]), full["checkpoint_mb"]
    print(
        f"   after each epoch LabelTune writes history.csv + checkpoint.pt ({mb:.0f} MB): {files:.2f} s "
        f"= {100 * files / per_epoch:.1f} % of an epoch here"
    )
    aug = full["augment_batch_seconds"]
    print(
        f"   augmentation (on by default, off above): {1000 * aug:.0f} ms per batch "
        f"= {100 * aug / engine_step:.1f} % of a step"
    )
    print()
    header = f"{'measurement':<52} {'LabelTune s':>11} {'reference s':>11} {'ratio':>8} {'target':>8}  result"
    print(header)
    print("-" * len(header))
    for r in rows:
        mark = "info" if r["pass"] is None else ("PASS" if r["pass"] else "MISS")
        print(
            f"{r['measurement']:<52} {r['labeltune_s']:>11.3f} {r['reference_s']:>11.3f} "
            f"{r['ratio']:>7.2f}x {r['target']:>8}  {mark}"
        )
    print("PASS/MISS against the brief's targets; 'info' rows give context (ratios: measurement's order).")


def to_json(s: Settings, m: dict[str, Any], rows: Sequence[dict[str, Any]], quick: bool) -> dict[str, Any]:
    def runs(results: Sequence[training.RunResult]) -> list[dict[str, Any]]:
        return [r.to_json() | {"history": [h.to_json() for h in r.history]} for r in results]

    return {
        "mode": "quick" if quick else "full",
        "settings": asdict(s),
        "data": m["source"],
        "images": m["images"],
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "bf16_autocast": cpu_bf16_supported(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "rows": list(rows),
        "forward_pass": m["forward"],
        "features_cold": runs(m["cold"]),
        "features_cold_parts": m["cold_parts"],
        "features_warm": runs(m["warm"]),
        "features_warm_threads1": runs(m["warm_threads1"]),
        "warm_parts": m["warm_timed"][1] | {"seconds_total": m["warm_timed"][0].seconds_total},
        "warm_parts_threads1": m["warm_timed_threads1"][1]
        | {"seconds_total": m["warm_timed_threads1"][0].seconds_total},
        "cli_cold": m["cli_cold"],
        "cli_warm": m["cli_warm"],
        "imports": m["imports"],
        "hashing": m["hashing"],
        "textbook": m["textbook"],
        "derived": m["derived"],
        "full": m["full"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images, smaller inputs (about 2 minutes)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of a warm re-run")
    parser.add_argument(
        "--backbone",
        default=None,
        help="backbone of the features measurements (default: densenet201, the corn-leaf paper's recipe; "
        "resnet18 with --quick)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON results (default bench/out/training[-quick].json)"
    )
    args = parser.parse_args(argv)
    args.out = args.out or OUT_DIR / ("training-quick.json" if args.quick else "training.json")
    s = QUICK if args.quick else FULL
    if args.backbone:
        s = dataclasses.replace(s, backbone=args.backbone)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labeltune-bench-") as tmp:
        m = measure(s, Path(tmp), args.profile)
    rows = summarise(s, m)
    report(s, m, rows)
    if args.quick:
        print("--quick: smaller inputs and single rounds, a smoke run; judge the targets by a full run.")
    load = f"; load average now {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"benchmark wall time {time.perf_counter() - start:.0f} s{load}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(to_json(s, m, rows, args.quick), indent=2, default=str))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
