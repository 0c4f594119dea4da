"""Training benchmark: LabelTune's training runs against plain PyTorch references, side by side.

Run: ``.venv/bin/python bench/bench_training.py [--quick] [--profile]``. Not a test: prints a table of
ratios (and writes ``bench/out/training.json``); nothing is asserted. The machine is shared and noisy, so
every figure is a ratio of two timings taken in the same process, alternating where it matters.

Random weights everywhere (``--weights none``: no download), which changes no timing except one thing:
a *features* run from random weights first calibrates BatchNorm statistics on up to 64 training images
(``ad5acf0``), a cost that a run from pretrained weights does not pay. It is reported separately.

1. *features*, 10 epochs, cold cache, against ONE forward pass of the same backbone over the same images
   (Pillow decode + ``inference_mode``, batch 32): in fp32, and with the engine's own CPU optimisations
   (channels_last + bf16 autocast where the CPU supports it). Target <= 1.2x.
2. The textbook frozen-backbone loop (torchvision transfer-learning tutorial: ``ImageFolder``,
   ``Resize``/``ToTensor``/``Normalize``, ``DataLoader(batch_size=32, shuffle=True, num_workers=0)``, new
   head, SGD lr 0.001 momentum 0.9, backbone re-run every epoch, validation every epoch) against
   *features*. The tutorial loop runs a few epochs; its 10-epoch time is setup + 10 x the mean epoch.
   Target: LabelTune >= 8x faster.
3. The same *features* run again with another learning rate (warm cache) against the cold run. Target
   >= 50x. The re-run's fixed costs are broken down (functions of ``labeltune.core.training`` wrapped
   with timers) and a ``labeltune train`` CLI re-run is timed end to end, imports included.
4. *full* fine-tuning step time (training batches only, timed by a callback between consecutive batches
   of an epoch) against a plain PyTorch loop on the same decoded tensors: same model, batch size, input
   size, AdamW, fp32. Alternating order, medians. Target: within 5 % (ratio <= 1.05).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import json
import math
import os
import platform
import pstats
import random
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
OUT_FILE = Path(__file__).resolve().parent / "out" / "training.json"
BATCH = 32
EPOCHS = 10


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark mode."""

    backbone: str
    input_size: int
    per_class: int | None  # images per class for 1-3 (None: all)
    rounds: int  # cold features runs and forward passes, alternating
    warm_runs: int
    textbook_epochs: int  # measured, then extrapolated to EPOCHS
    full_backbone: str
    full_input_size: int
    full_steps: int  # training steps per engine epoch (train images = full_steps * BATCH)
    full_epochs: int
    full_rounds: int  # engine/plain pairs, alternating order


FULL = Settings("resnet18", 224, None, 2, 3, 2, "resnet18", 224, 4, 1, 3)
QUICK = Settings("resnet18", 160, 25, 1, 2, 1, "resnet18", 128, 3, 1, 1)


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
    count = per_class or synthetic_per_class
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    for c in range(4):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            freq = 2 + c + rng.uniform(0, 1)
            image = np.stack(
                [
                    127 + 100 * np.sin(freq * (x / 640 + k / 3) * np.pi) * np.cos(y / 480 * np.pi)
                    for k in range(3)
                ],
                axis=-1,
            )
            image += rng.standard_normal(image.shape).astype(np.float32) * 8
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                folder / f"class{c}" / f"img{i:04d}.jpg", quality=90
            )
    return "synthetic 640x480 JPEGs"


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p))


def warm_file_cache(root: Path) -> None:
    for path in image_files(root):
        path.read_bytes()


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
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


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
) -> Any:
    data = scan(data_root)
    start = time.perf_counter()
    result = training.train(data, config, run_dir, cache_root=cache_root, **kw)
    result.wall = time.perf_counter() - start
    return result


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
            else:
                acc = corrects / max(len(loaders["val"].dataset), 1)  # type: ignore[arg-type]
                if acc > best_acc:  # the tutorial keeps the best weights on disk
                    best_acc = acc
                    torch.save(model.state_dict(), scratch / "best_model_params.pt")
        epoch_seconds.append(time.perf_counter() - t0)
    return {"setup": setup, "epoch_seconds": epoch_seconds}


# -- 3. fixed costs of a warm re-run --------------------------------------------------------------------
#: (label, owner, attribute): what ``train()`` spends its time on; owners are patched only while timing.
def _timed_parts() -> list[tuple[str, Any, str]]:
    from labeltune.core import features, weights

    return [
        ("prepare_data (hash files, split)", training, "prepare_data"),
        ("write_manifest", training, "write_manifest"),
        ("resolve_weights", weights, "resolve_weights"),
        ("build_classifier (construct + init model)", training, "build_classifier"),
        ("FeatureCache open", features.FeatureCache, "__init__"),
        ("BatchNorm calibration (load / compute)", training, "_calibrated_batchnorm"),
        ("extract_features (cache read / backbone)", training, "extract_features"),
        ("_write_config", training, "_write_config"),
        ("Trainer.fit (epochs)", Trainer, "fit"),
        ("  of which per-epoch files (history, checkpoint.pt)", training._RunFilesCallback, "on_epoch_end"),
        ("predict_batches (final validation)", training, "predict_batches"),
        ("save_model (model.safetensors)", training, "save_model"),
        ("write_history", training, "write_history"),
    ]


@contextlib.contextmanager
def timing_patches() -> Iterator[dict[str, float]]:
    """Wrap the engine's steps with timers (in this process only); yield label -> seconds."""
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


def fresh_process_seconds(code: str) -> float:
    """Seconds a fresh interpreter takes to run ``code`` (which prints its own timing)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cli_rerun(data_root: Path, s: Settings, cache_root: Path, out: Path, lr: float) -> dict[str, Any]:
    """``labeltune train`` as a user runs it again (warm cache): wall seconds and its own figures."""
    cmd = [
        sys.executable,
        "-m",
        "labeltune",
        "train",
        str(data_root),
        "--backbone",
        s.backbone,
        "--weights",
        "none",
        "--epochs",
        str(EPOCHS),
        "--patience",
        "0",
        "--input-size",
        str(s.input_size),
        "--lr",
        str(lr),
        "--out",
        str(out),
        "--json",
    ]
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


# -- 4. full fine-tuning --------------------------------------------------------------------------------
class StepTimer(Callback):
    """Seconds between consecutive training batches of the same epoch (the first batch of each is left out:
    its interval would include the previous epoch's validation and files, or the first-call warm-up)."""

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
    x: torch.Tensor, y: torch.Tensor, backbone: str, num_classes: int, steps: int, epochs: int, lr: float
) -> list[float]:
    """Plain PyTorch full fine-tuning on float NCHW tensors (already normalised): AdamW, fp32."""
    torch.manual_seed(0)
    model = torchvision_model(backbone, num_classes).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    intervals = []
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
        last = None
        for b in range(steps):
            index = order[b * BATCH : (b + 1) * BATCH]
            loss = criterion(model(x[index]), y[index])
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
    """Engine *full* runs and plain loops on the same images, alternating; per-step seconds."""
    folder = tmp / "full_data"
    n_train = s.full_steps * BATCH
    files = image_files(source)
    by_class: dict[str, list[Path]] = {}
    for path in files:
        by_class.setdefault(path.parent.name, []).append(path)
    per_class = math.ceil(n_train / len(by_class))
    chosen = [p for ps in by_class.values() for p in ps[:per_class]][:n_train]
    for path in chosen:
        (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.parent.name / path.name)
    classes = sorted(by_class)
    arrays = [load_array(p, s.full_input_size) for p in image_files(folder)]
    labels = [classes.index(p.parent.name) for p in image_files(folder)]
    x = normalize(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255.0), s.full_backbone)
    x = x.contiguous()
    y = torch.tensor(labels)
    config = training.TrainConfig(
        backbone=s.full_backbone,
        strategy="full",
        weights="none",
        epochs=s.full_epochs,
        batch_size=BATCH,
        val_fraction=0.0,
        input_size=s.full_input_size,
        augment=False,
        patience=0,
    )
    engine_steps: list[float] = []
    plain_steps: list[float] = []
    epoch_records: list[float] = []
    for r in range(s.full_rounds):
        for which in ("engine", "plain") if r % 2 == 0 else ("plain", "engine"):
            if which == "engine":
                timer = StepTimer()
                result = run_engine(
                    folder, config, tmp / f"full-run{r}", tmp / f"full-cache{r}", callbacks=[timer]
                )
                if result.train_size != n_train:
                    raise RuntimeError(f"engine trained on {result.train_size} images, not {n_train}")
                engine_steps += timer.steps
                epoch_records += [rec.seconds for rec in result.history]
            else:
                plain_steps += plain_full_loop(
                    x, y, s.full_backbone, len(classes), s.full_steps, s.full_epochs, config.resolved_lr()
                )
    # What augmentation (on by default, off above) adds to a step: one batch, timed on its own.
    from labeltune.core.augment import augment_batch

    batch = torch.rand(BATCH, 3, s.full_input_size, s.full_input_size)
    augment_batch(batch)
    start = time.perf_counter()
    for _ in range(5):
        augment_batch(batch)
    return {
        "engine_steps": engine_steps,
        "plain_steps": plain_steps,
        "engine_epoch_seconds": epoch_records,
        "augment_batch_seconds": (time.perf_counter() - start) / 5,
        "train_images": n_train,
    }


# -- the run --------------------------------------------------------------------------------------------
def profile_warm_run(data_root: Path, s: Settings, cache_root: Path, run_dir: Path) -> str:
    profiler = cProfile.Profile()
    data = scan(data_root)
    profiler.enable()
    training.train(data, train_config(s, lr=2e-4), run_dir, cache_root=cache_root)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    return text.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images, smaller inputs (~2 minutes)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of a warm re-run")
    parser.add_argument("--out", type=Path, default=OUT_FILE, help="JSON results file")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    random.seed(0)
    bench_start = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="labeltune-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data_root = tmp / "data"
        source = make_dataset(data_root, s.per_class)
        paths = image_files(data_root)
        warm_file_cache(data_root)
        print(
            f"data: {source}, {len(paths)} images; {s.backbone} at {s.input_size} px; "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: {cpu_bf16_supported()}",
            flush=True,
        )

        # 1 + 2 + 3 (cold side): alternate forward passes and cold features runs.
        fwd: dict[str, list[dict[str, float]]] = {"fp32": [], "opt": []}
        cold: list[Any] = []
        parts_cold: list[dict[str, float]] = []
        for r in range(s.rounds):
            steps: list[str] = ["fp32", "features", "opt"] if r % 2 == 0 else ["opt", "features", "fp32"]
            for step in steps:
                if step == "features":
                    with timing_patches() as parts:
                        cold.append(
                            run_engine(data_root, train_config(s), tmp / f"cold{r}", tmp / f"cache{r}")
                        )
                    parts_cold.append(dict(parts))
                    print(f"  features cold run {r + 1}: {cold[-1].seconds_total:.2f} s", flush=True)
                else:
                    fwd[step].append(forward_pass(paths, s.backbone, s.input_size, step == "opt"))
                    print(f"  forward pass ({step}) {r + 1}: {fwd[step][-1]['seconds']:.2f} s", flush=True)

        # 3 (warm side): same config, another learning rate, on round 0's cache.
        warm = []
        for w in range(s.warm_runs):
            lr = 5e-4 / (w + 1)
            warm.append(run_engine(data_root, train_config(s, lr=lr), tmp / f"warm{w}", tmp / "cache0"))
            print(f"  warm re-run {w + 1}: {warm[-1].seconds_total:.3f} s", flush=True)
        with timing_patches() as parts_warm:
            warm_instrumented = run_engine(
                data_root, train_config(s, lr=3e-4), tmp / "warm-parts", tmp / "cache0"
            )
        cli = cli_rerun(data_root, s, tmp / "cache0", tmp / "warm-cli", 2.5e-4)
        print(f"  CLI warm re-run: {cli['wall']:.2f} s wall", flush=True)
        imports = {
            "python -c pass": fresh_process_seconds(
                "import time; t = time.perf_counter(); print(time.perf_counter() - t)"
            ),
            "import torch": fresh_process_seconds(
                "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
            ),
            "import torch, torchvision.models, labeltune.cli": fresh_process_seconds(
                "import time; t = time.perf_counter(); import torch, torchvision.models, labeltune.cli, "
                "labeltune.core.training; print(time.perf_counter() - t)"
            ),
        }
        profile = profile_warm_run(data_root, s, tmp / "cache0", tmp / "warm-prof") if args.profile else ""

        # 2: the textbook loop.
        book = textbook_loop(data_root, s.backbone, s.input_size, s.textbook_epochs, tmp)
        print(
            f"  textbook loop: {sum(book['epoch_seconds']):.1f} s for {s.textbook_epochs} epoch(s)",
            flush=True,
        )

        # 4: full fine-tuning.
        full = bench_full(s, tmp, data_root)
        print(
            f"  full fine-tuning: {len(full['engine_steps'])} engine / {len(full['plain_steps'])} plain steps timed",
            flush=True,
        )

    # -- figures ---------------------------------------------------------------------------------------
    cold_total = median([r.seconds_total for r in cold])
    cold_features = median([r.seconds_features for r in cold])
    calibration = median([p.get("BatchNorm calibration (load / compute)", 0.0) for p in parts_cold])
    fwd32 = median([f["seconds"] for f in fwd["fp32"]])
    fwd_opt = median([f["seconds"] for f in fwd["opt"]])
    warm_total = median([r.seconds_total for r in warm])
    warm_features = median([r.seconds_features for r in warm])
    book_epoch = statistics.mean(book["epoch_seconds"])
    book_10 = book["setup"] + EPOCHS * book_epoch
    engine_step = median(full["engine_steps"])
    plain_step = median(full["plain_steps"])

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

    row(
        "1  features 10 ep cold / 1 fwd pass fp32",
        cold_total,
        fwd32,
        cold_total / fwd32,
        "<= 1.20",
        cold_total / fwd32 <= 1.2,
    )
    row(
        "1b features 10 ep cold / 1 fwd pass bf16+CL",
        cold_total,
        fwd_opt,
        cold_total / fwd_opt,
        "<= 1.20",
        None,
    )
    pretrained_like = cold_total - calibration
    row(
        "1c same, minus random-init BN calibration / fp32",
        pretrained_like,
        fwd32,
        pretrained_like / fwd32,
        "<= 1.20",
        None,
    )
    row(
        f"2  textbook 10 ep ({s.textbook_epochs} measured) / features",
        cold_total,
        book_10,
        book_10 / cold_total,
        ">= 8",
        book_10 / cold_total >= 8,
    )
    row(
        "3  cold / warm re-run (seconds_total)",
        warm_total,
        cold_total,
        cold_total / warm_total,
        ">= 50",
        cold_total / warm_total >= 50,
    )
    row(
        "3b cold / warm (seconds_features)",
        warm_features,
        cold_features,
        cold_features / warm_features if warm_features > 0 else math.inf,
        ">= 50",
        None,
    )
    row(
        "3c cold / CLI warm re-run (wall, imports incl.)",
        cli["wall"],
        cold_total,
        cold_total / cli["wall"],
        ">= 50",
        None,
    )
    row(
        f"4  full FT step: LabelTune / plain ({s.full_backbone} {s.full_input_size})",
        engine_step,
        plain_step,
        engine_step / plain_step,
        "<= 1.05",
        engine_step / plain_step <= 1.05,
    )

    # -- output ----------------------------------------------------------------------------------------
    print()
    print("1. features run (cold) against one forward pass")
    for label, f in (
        ("fp32", fwd["fp32"]),
        ("bf16 + channels_last" if cpu_bf16_supported() else "channels_last", fwd["opt"]),
    ):
        print(
            f"   forward pass {label:<22} {median([x['seconds'] for x in f]):7.2f} s "
            f"(decode {median([x['decode'] for x in f]):.2f} s, backbone {median([x['forward'] for x in f]):.2f} s)"
        )
    print(
        f"   features run, seconds_total     {cold_total:7.2f} s   (runs: {', '.join(f'{r.seconds_total:.2f}' for r in cold)})"
    )
    print(
        f"   features run, seconds_features  {cold_features:7.2f} s   (backbone compute incl. BN calibration)"
    )
    print("   where a cold run's time goes:")
    for label, secs in breakdown(parts_cold[0], cold[0].seconds_total):
        print(f"     {label:<52} {secs:7.3f} s")
    print()
    print(
        f"2. textbook loop: setup {book['setup']:.2f} s + epochs {', '.join(f'{e:.2f}' for e in book['epoch_seconds'])} s"
    )
    print(f"   extrapolated to {EPOCHS} epochs: setup + {EPOCHS} x {book_epoch:.2f} s = {book_10:.1f} s")
    print()
    print(
        f"3. warm re-run: seconds_total {', '.join(f'{r.seconds_total:.3f}' for r in warm)} s, seconds_features "
        f"{', '.join(f'{r.seconds_features:.3f}' for r in warm)} s"
    )
    print(
        f"   where a warm re-run's time goes (one more run, timed per step: {warm_instrumented.seconds_total:.3f} s):"
    )
    for label, secs in breakdown(parts_warm, warm_instrumented.seconds_total):
        print(f"     {label:<52} {secs:7.3f} s  {100 * secs / warm_instrumented.seconds_total:5.1f} %")
    print(
        f"   CLI `labeltune train` warm re-run: {cli['wall']:.2f} s wall, of which seconds_total {cli['seconds_total']:.2f} s"
    )
    for label, secs in imports.items():
        print(f"     fresh interpreter, {label:<48} {secs:6.2f} s")
    print()
    steps_e, steps_p = full["engine_steps"], full["plain_steps"]
    print(
        f"4. full fine-tuning, {full['train_images']} training images, batch {BATCH}, "
        f"{s.full_rounds} engine/plain pairs (alternating)"
    )
    print(
        f"   LabelTune step {engine_step:.3f} s median ({BATCH / engine_step:.1f} img/s); steps {fmt_list(steps_e)}"
    )
    print(
        f"   plain loop step {plain_step:.3f} s median ({BATCH / plain_step:.1f} img/s); steps {fmt_list(steps_p)}"
    )
    if full["engine_epoch_seconds"]:
        per_epoch = median(full["engine_epoch_seconds"])
        print(
            f"   LabelTune EpochRecord.seconds median {per_epoch:.2f} s = {full['train_images'] / per_epoch:.1f} img/s "
            "(incl. the first batch's warm-up)"
        )
    print(
        f"   augmentation (default on, off above) costs {full['augment_batch_seconds'] * 1000:.0f} ms per batch "
        f"= {100 * full['augment_batch_seconds'] / engine_step:.1f} % of a step"
    )
    if profile:
        print()
        print("cProfile of a warm re-run (cumulative):")
        print(profile)
    print()
    print_table(rows)
    print("PASS/MISS: the brief's targets; 'info' rows are context. Timings on a shared, noisy machine.")
    print(f"benchmark wall time {time.perf_counter() - bench_start:.0f} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "mode": "quick" if args.quick else "full",
        "settings": asdict(s),
        "data": source,
        "images": len(paths),
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "bf16_autocast": cpu_bf16_supported(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "rows": rows,
        "forward_pass": fwd,
        "features_cold": [r.to_json() | {"wall": r.wall} for r in cold],
        "features_cold_parts": parts_cold,
        "features_warm": [r.to_json() | {"wall": r.wall} for r in warm],
        "warm_parts": parts_warm,
        "warm_parts_total": warm_instrumented.seconds_total,
        "cli_warm": cli,
        "imports": imports,
        "textbook": book | {"extrapolated_10": book_10},
        "full": full,
    }
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {args.out}")
    return 0


def breakdown(parts: dict[str, float], total: float) -> list[tuple[str, float]]:
    """The timed steps in ``train()`` order plus what is left (scan excluded: done before ``train``)."""
    labels = [label for label, _, _ in _timed_parts()]
    out = [(label, parts[label]) for label in labels if label in parts]
    accounted = sum(secs for label, secs in out if not label.startswith("  "))
    out.append(("other (imports, device, optimizer, ...)", total - accounted))
    return out


def fmt_list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    header = f"{'measurement':<52} {'LabelTune s':>11} {'reference s':>11} {'ratio':>8} {'target':>8}  result"
    print(header)
    print("-" * len(header))
    for r in rows:
        mark = "info" if r["pass"] is None else ("PASS" if r["pass"] else "MISS")
        print(
            f"{r['measurement']:<52} {r['labeltune_s']:>11.3f} {r['reference_s']:>11.3f} "
            f"{r['ratio']:>7.2f}x {r['target']:>8}  {mark}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
