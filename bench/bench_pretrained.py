"""Pretrained out of the box: k-fold accuracy of the bundled EfficientNet-Lite0, and the unfamiliar check.

What it measures (README "Accuracy with the bundled network" has the figures):

1. ``labeltune train`` defaults (EfficientNet-Lite0, ImageNet weights, *features*), k-fold cross-validated
   with ``TrainConfig.folds`` on the shared corn photos, the Fish4Knowledge subset split by track, and the
   shipped corn demo (what the app's demo trains on): mean accuracy and a 95 % t-interval over the folds.
   ``--strategies`` adds *partial* / *full* (slow on a CPU: one fold each with ``--quick``).
2. The unfamiliar-input score of a corn run against the baseline the issue names (cosine distance to the
   5th nearest training feature, thresholded at the validation 95th percentile): the share flagged of
   held-out corn photos (false alarms) and of shifted copies (blurred, darkened, recoloured, the gray
   background swapped for soil) and fish photos. Both are fitted on the same run's features.

Needs ``../shared/data`` (falls back to the shipped demos for part 1). Asserts nothing.
Run: ``.venv/bin/python bench/bench_pretrained.py [--quick] [--strategies partial full]``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "desktop"))

T95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 10: 2.26}  # two-sided t quantiles, n - 1 dof


def interval(values: list[float]) -> str:
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    half = T95.get(len(values), 2.0) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f} (folds {', '.join(f'{v:.3f}' for v in values)})"


def cross_validate(
    name: str, source: Path, folds: int, strategy: str, group_by: str | None, work: Path, runs: int = 0
) -> None:
    """Train on ``folds - 1`` folds, validate on the last, for every fold (or the first ``runs``)."""
    from labeltune.core.datasets import scan
    from labeltune.core.training import TrainConfig, train

    data = scan(source)
    accuracies, seconds, ece_before, ece_after, val_flagged = [], [], [], [], []
    for fold in range(runs or folds):
        config = TrainConfig(strategy=strategy, folds=folds, fold=fold, group_by=group_by)
        start = time.perf_counter()
        result = train(data, config, work / f"{name}-{strategy}-{fold}")
        seconds.append(time.perf_counter() - start)
        accuracies.append(float(result.metrics["accuracy"]))
        ece_before.append(result.metrics["calibration"]["ece_before"])
        ece_after.append(result.metrics["calibration"]["ece_after"])
        val_flagged.append(result.metrics["unfamiliar"]["val_unfamiliar_rate"])
    print(
        f"{name:<22}{strategy:<9} accuracy {interval(accuracies)}; ECE {statistics.mean(ece_before):.3f} -> "
        f"{statistics.mean(ece_after):.3f}; validation flagged {statistics.mean(val_flagged):.1%}; "
        f"{statistics.mean(seconds):.0f} s per fold",
        flush=True,
    )


def shifted_copies(paths: list[Path], out: Path) -> dict[str, list[Path]]:
    """Blurred, darkened, recoloured and background-swapped copies (the swap only where there is one)."""
    rng = np.random.default_rng(0)
    made: dict[str, list[Path]] = {k: [] for k in ("blur", "dark", "recolour", "background")}
    for kind in made:
        (out / kind).mkdir(parents=True, exist_ok=True)
    for path in paths:
        image = Image.open(path).convert("RGB")
        name = path.stem + ".png"
        image.filter(ImageFilter.GaussianBlur(6)).save(out / "blur" / name)
        ImageEnhance.Brightness(image).enhance(0.3).save(out / "dark" / name)
        Image.fromarray(np.asarray(image)[..., [2, 0, 1]]).save(out / "recolour" / name)
        for kind in ("blur", "dark", "recolour"):
            made[kind].append(out / kind / name)
        pixels = np.asarray(image).astype(np.int16)
        gray = np.asarray(image.convert("HSV"))[..., 1] < 60  # the lab photos' gray background
        if gray.mean() > 0.25:
            h, w = gray.shape
            soil = np.stack([rng.normal(m, s, (h, w)) for m, s in ((110, 25), (80, 20), (50, 15))], -1)
            soil_image = Image.fromarray(np.clip(soil, 0, 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(2)
            )
            swapped = np.where(gray[..., None], np.asarray(soil_image).astype(np.int16), pixels)
            Image.fromarray(swapped.astype(np.uint8)).save(out / "background" / name)
            made["background"].append(out / "background" / name)
    return made


def unfamiliar_check(work: Path) -> None:
    import torch

    from labeltune.core.datasets import scan
    from labeltune.core.features import decode_batch, images_to_tensor
    from labeltune.core.inference import predict_files
    from labeltune.core.model import load_model
    from labeltune.core.training import TrainConfig, train

    corn = SHARED / "corn_leaf" / "images"
    photos = sorted(p for p in corn.rglob("*") if p.is_file())
    held = photos[::3]  # a third never seen by the run: not in training, not in its validation
    listing = work / "corn-two-thirds.csv"
    with open(listing, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([str(p), p.parent.name] for p in photos if p not in set(held))
    run = work / "corn-unfamiliar"
    result = train(scan(listing), TrainConfig(), run)
    with open(run / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    train_files = [Path(r["file"]) for r in rows if r["split"] == "train"]
    val_files = [Path(r["file"]) for r in rows if r["split"] == "val"]
    sets = {"held-out corn (familiar)": held}
    sets.update(shifted_copies(held, work / "shifted"))
    sets["fish photos"] = sorted((SHARED / "fish4knowledge" / "images").rglob("*.png"))[::3]

    model, config = load_model(run)
    model.eval()

    def pooled(paths: list[Path]) -> np.ndarray:
        out = []
        for start in range(0, len(paths), 64):
            arrays, _ = decode_batch(paths[start : start + 64], config.input_size)
            x = images_to_tensor([a for a in arrays if a is not None], torch.device("cpu"))
            with torch.inference_mode():
                out.append(model.top(model.trunk(model.normalize(x))).float().numpy())
        return np.concatenate(out)

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    bank = unit(pooled(train_files))

    def knn(paths: list[Path]) -> np.ndarray:
        return 1 - np.sort(unit(pooled(paths)) @ bank.T, axis=1)[:, -5]

    threshold = float(np.quantile(knn(val_files), 0.95))  # the baseline calibrates on validation images
    print(
        f"\nunfamiliar check: corn run on 2/3 of the photos ({result.train_size} training, {result.val_size} "
        "validation); share flagged of the other third and of shifted copies of it"
    )
    print(f"{'inputs':<28}{'n':>5}{'LabelTune':>12}{'cosine 5-NN':>14}")
    for name, paths in sets.items():
        predictions, _ = predict_files(run, paths, device="cpu")
        ours = float(np.mean([p.unfamiliar for p in predictions]))
        base = float(np.mean(knn(paths) > threshold))
        print(f"{name:<28}{len(paths):>5}{ours:>12.1%}{base:>14.1%}", flush=True)
    print("(both thresholds aim at 5 % false alarms; neither saw the held-out third)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 folds, no unfamiliar check")
    parser.add_argument("--strategies", nargs="*", default=[], choices=["partial", "full"])
    args = parser.parse_args()
    os.environ.setdefault("LABELTUNE_CACHE_DIR", str(REPO / "bench" / "out" / "cache"))
    folds = 3 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from labeltune.core.demos import write_demo

        demo = write_demo("corn", work / "corn-demo")
        print(f"EfficientNet-Lite0 (bundled ImageNet weights), train defaults, {folds}-fold cross-validation")
        cross_validate("corn demo (120)", demo, folds, "features", None, work)
        if SHARED.is_dir():
            cross_validate("corn (400)", SHARED / "corn_leaf" / "images", folds, "features", None, work)
            fish = SHARED / "fish4knowledge" / "images"
            cross_validate("fish by track (766)", fish, folds, "features", r"fish_(\d+)_", work)
            for strategy in args.strategies:
                runs = 1 if args.quick else 0
                cross_validate("fish by track (766)", fish, folds, strategy, r"fish_(\d+)_", work, runs)
            if not args.quick:
                unfamiliar_check(work)
        else:
            print(f"{SHARED} not found: only the shipped demo was measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
