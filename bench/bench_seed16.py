"""Add classes without forgetting, and distil teachers into a student, on the real data (issue 16).

Run: ``.venv/bin/python bench/bench_seed16.py [--quick] [--draws N] [--seeds N] [--partial]``.

*Add classes* (Fish4Knowledge, split by track with ``regex:fish_(\\d+)_``): a run on 18 species, then
``train ALL --init RUN`` adds 5 species (the issue's 5, then other fixed draws of 5, :data:`DRAWS`);
beside it a from-scratch run on all 23 species with the same settings, started from the feature cache as
the old run left it (warm: only the new species to extract, as for the init run), and for the first draw
also one from an empty cache (cold). Each draw has its own cache, so no run profits from an earlier
draw's extraction. Printed: the old species' validation accuracy before/after, the new species' accuracy
(init vs from scratch, each on its own validation items of those species) and the times.
*Distil* (corn and fish): two or three EfficientNet-Lite0 teachers fine-tuned with different input sizes and
seeds (the only ImageNet weights available offline), a Lite0 student at a smaller input size, beside the
same small Lite0 trained on labels alone. Speeds are plain PyTorch forward passes (``model(x)``, batch 16)
on this machine's CPU. Benchmarks assert nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "desktop"))
DATA = Path(os.environ.get("LABELTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
NEW_SPECIES = (
    "Abudefduf_vaigiensis",
    "Chaetodon_lunulatus",
    "Hemigymnus_melapterus",
    "Neoglyphidodon_nigroris",
    "Scaridae",
)
FISH_GROUPS = r"regex:fish_(\d+)_"
#: The 5-species sets added: the issue's, then draws made once with numpy's default_rng(0).
DRAWS = (
    NEW_SPECIES,
    (
        "Chaetodon_lunulatus",
        "Chromis_chrysura",
        "Hemigymnus_melapterus",
        "Myripristis_kuntee",
        "Plectroglyphidodon_dickii",
    ),
    (
        "Lutjanus_fulvus",
        "Myripristis_kuntee",
        "Neoglyphidodon_nigroris",
        "Pempheris_vanicolensis",
        "Scolopsis_bilineata",
    ),
    (
        "Abudefduf_vaigiensis",
        "Canthigaster_valentini",
        "Pempheris_vanicolensis",
        "Scaridae",
        "Siganus_fuscescens",
    ),
)


def link_folder(source: Path, target: Path, classes: list[str]) -> Path:
    """``target/<class>/`` holding symlinks to ``source/<class>/*`` (no copy of the images)."""
    for name in classes:
        (target / name).mkdir(parents=True, exist_ok=True)
        for image in (source / name).iterdir():
            (target / name / image.name).symlink_to(image)
    return target


def new_class_accuracy(metrics: dict[str, Any], classes: tuple[str, ...]) -> tuple[float, int]:
    """Accuracy (recall weighted by support) over ``classes`` from a run's ``metrics.json``."""
    rows = [r for r in metrics["per_class"] if r["class"] in classes]
    support = sum(r["support"] for r in rows)
    hits = sum(r["recall"] * r["support"] for r in rows)
    return (hits / support if support else float("nan")), support


def add_classes(
    work: Path, draw: int, seed: int, strategy: str, epochs: int, cold: bool = False
) -> dict[str, Any]:
    """One draw on the fish: old run, --init run, from-scratch run (warm cache; and cold with ``cold``)."""
    from labeltune.core.add_classes import inherited_config
    from labeltune.core.datasets import scan
    from labeltune.core.train_config import TrainConfig
    from labeltune.core.training import train

    new_species = DRAWS[draw]
    images = DATA / "fish4knowledge" / "images"
    species = sorted(p.name for p in images.iterdir() if p.is_dir())
    old_species = [s for s in species if s not in new_species]
    old_data = work / f"fish-old-d{draw}"
    if not old_data.is_dir():
        link_folder(images, old_data, old_species)
    all_data = work / "fish-all"
    if not all_data.is_dir():
        link_folder(images, all_data, species)
    settings = dict(group_by=FISH_GROUPS, seed=seed, epochs=epochs, threads=None)
    tag = f"{strategy}-d{draw}-s{seed}"
    cache = work / f"cache-{tag}"
    # Both runs start from the cache as the old run left it (the new species not yet cached): neither
    # profits from the other's feature extraction.
    scratch_cache = work / f"cache-scratch-{tag}"
    old_dir = work / f"old-{tag}"
    if (old_dir / "model.safetensors").is_file() and (work / f"pristine-{tag}").is_dir():  # --work kept it
        old_metrics = json.loads((old_dir / "metrics.json").read_text())
        old_accuracy, old_seconds = old_metrics.get("accuracy"), old_metrics["summary"]["seconds_total"]
        for folder in (cache, scratch_cache):
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(work / f"pristine-{tag}", folder)
    else:
        old = train(scan(old_data), TrainConfig(strategy=strategy, **settings), old_dir, cache_root=cache)  # type: ignore[arg-type]
        old_accuracy, old_seconds = old.metrics.get("accuracy"), old.seconds_total
        shutil.copytree(cache, work / f"pristine-{tag}", dirs_exist_ok=True)
        shutil.copytree(cache, scratch_cache, dirs_exist_ok=True)
    config = inherited_config(work / f"old-{tag}", {}, group_by=FISH_GROUPS, seed=seed)
    shutil.rmtree(work / f"init-{tag}", ignore_errors=True)
    added = train(scan(all_data), config, work / f"init-{tag}", cache_root=cache)
    scratch_config = TrainConfig(strategy=strategy, **settings)  # type: ignore[arg-type]
    scratch_dir = work / f"scratch-{tag}"
    if (scratch_dir / "model.safetensors").is_file():  # --work kept it: a partial one takes 5 minutes
        kept = json.loads((scratch_dir / "metrics.json").read_text())
        scratch: Any = SimpleNamespace(metrics=kept, seconds_total=kept["summary"]["seconds_total"])
    else:
        scratch = train(scan(all_data), scratch_config, scratch_dir, cache_root=scratch_cache)
    cold_seconds = None
    if cold:
        cold_run = train(
            scan(all_data), scratch_config, work / f"cold-{tag}", cache_root=work / f"cold-{tag}-c"
        )
        cold_seconds = cold_run.seconds_total
    summary = added.to_json()
    scratch_new, scratch_n = new_class_accuracy(scratch.metrics, new_species)
    return {
        "strategy": strategy,
        "draw": draw,
        "new_species": list(new_species),
        "seed": seed,
        "old_run_val_accuracy": old_accuracy,
        "old_before": summary["old_classes_accuracy_before"],
        "old_after": summary["old_classes_accuracy_after"],
        "old_items": summary["old_val_items"],
        "new_init": summary["new_classes_accuracy"],
        "new_init_items": summary["new_val_items"],
        "new_scratch": scratch_new,
        "new_scratch_items": scratch_n,
        "shift": summary.get("new_classes_logit_shift"),
        "scratch_all_accuracy": scratch.metrics.get("accuracy"),
        "init_all_accuracy": added.metrics.get("accuracy"),
        "seconds_init": added.seconds_total,
        "seconds_init_features": added.seconds_features,
        "seconds_scratch": scratch.seconds_total,
        "seconds_scratch_cold": cold_seconds,
        "seconds_old_run": old_seconds,
    }


def distill_draw(work: Path, cache: Path, name: str, data: Path, group_by: str | None) -> dict[str, Any]:
    """Teachers (Lite0 at 224 and 192 px), the student (Lite0 at 160 px) and the labels-only baseline."""
    from labeltune.core.datasets import scan
    from labeltune.core.distill import distill_config
    from labeltune.core.train_config import TrainConfig
    from labeltune.core.training import train

    dataset = scan(data)
    teachers = []
    for size, seed_init in ((224, 0), (192, 0)):
        out = work / f"{name}-teacher-{size}"
        train(dataset, TrainConfig(input_size=size, group_by=group_by, seed=seed_init), out, cache_root=cache)
        teachers.append(str(out))
    baseline = train(
        dataset,
        TrainConfig(input_size=160, group_by=group_by),
        work / f"{name}-small-labels",
        cache_root=cache,
    )
    start = time.perf_counter()
    student = train(
        dataset,
        distill_config(teachers, "efficientnet_lite0", input_size=160, group_by=group_by),
        work / f"{name}-student",
        cache_root=cache,
    )
    report = student.metrics["distill"]
    report["seconds_student"] = time.perf_counter() - start
    report["small_labels_only_accuracy"] = baseline.metrics.get("accuracy")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one draw, features strategy only")
    parser.add_argument("--draws", type=int, default=len(DRAWS), help="5-species sets added (DRAWS)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the first draw")
    parser.add_argument("--only-draw", type=int, default=None, help="just this draw of DRAWS")
    parser.add_argument("--partial", action="store_true", help="also a partial-strategy draw (slow on a CPU)")
    parser.add_argument("--skip-distill", action="store_true")
    parser.add_argument("--work", default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-seed16-"))
    cache = work / "cache"
    os.environ.setdefault("LABELTUNE_CACHE_DIR", str(cache))  # the distillation's
    draws = 1 if args.quick else args.draws
    rows = []
    for draw in [args.only_draw] if args.only_draw is not None else range(min(draws, len(DRAWS))):
        for seed in range(1 if args.quick or draw else args.seeds):
            rows.append(add_classes(work, draw, seed, "features", 30, cold=draw == 0 and seed == 0))
            with open(work / "add_classes.jsonl", "a", encoding="utf-8") as handle:  # as they come
                handle.write(json.dumps(rows[-1]) + "\n")
    if args.partial and not args.quick:
        rows.append(add_classes(work, args.only_draw or 0, 0, "partial", 10))
    print("add 5 fish species to a run on 18 (tracks kept apart); accuracy on validation items")
    print(
        f"{'draw':>4s} {'seed':>4s} {'old before':>10s} {'old after':>9s} {'change':>6s} {'new(init)':>9s} "
        f"{'new(scratch)':>12s} {'shift':>5s} {'s init':>7s} {'s scratch':>9s} {'s cold':>7s}"
    )
    for r in rows:
        cold = r["seconds_scratch_cold"]
        print(
            f"{r['draw']:4d} {r['seed']:4d} {r['old_before']:10.3f} {r['old_after']:9.3f} "
            f"{100 * (r['old_after'] - r['old_before']):+6.1f} {r['new_init']:9.3f} {r['new_scratch']:12.3f} "
            f"{r['shift'] or 0:5.2f} {r['seconds_init']:7.1f} {r['seconds_scratch']:9.1f} "
            f"{cold if cold is not None else float('nan'):7.1f}  ({r['strategy']}; old/new val items "
            f"{r['old_items']}/{r['new_init_items']}; new: {', '.join(r['new_species'])})"
        )
    (work / "add_classes.json").write_text(json.dumps(rows, indent=2))
    if not args.skip_distill:
        sets = [("corn", DATA / "corn_leaf" / "images", None)]
        if not args.quick:
            sets.append(("fish", DATA / "fish4knowledge" / "images", FISH_GROUPS))
        for name, data, group_by in sets:
            report = distill_draw(work, cache, name, data, group_by)
            (work / f"distill-{name}.json").write_text(json.dumps(report, indent=2))
            print(f"\ndistil {name}: two Lite0 teachers (224, 192 px) into a Lite0 student at 160 px")
            table = [("student lite0 160 px", report["student"])]
            table += [(f"teacher lite0 {t['input_size']} px", t) for t in report["teachers"]]
            table += [("ensemble of the teachers", report["ensemble"])]
            for label, row in table:
                print(
                    f"  {label:26s} accuracy {row['val_accuracy']:.3f}  {row['size_mb']:6.1f} MB  "
                    f"{row['params'] / 1e6:5.2f} M params  {row['images_per_second']:7.1f} images/s"
                )
            print(f"  same small Lite0 on labels alone: accuracy {report['small_labels_only_accuracy']:.3f}")
            print(f"  unlabeled items used: {report['unlabeled_used']}")
    print(f"\nruns kept in {work}" if args.work else "")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
