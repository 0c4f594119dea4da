"""Rebuild the demo data sets shipped in ``desktop/labeltune/resources/demos`` from ``../shared/data``.

Run from the repository root: ``python resources/make_demos.py [SHARED_DATA_DIR]``.  The selection is
deterministic (seeded), so running it again gives the same files.  The demo folders are package data
(found with ``importlib.resources``), so they ship in the wheel and in a PyInstaller bundle.
"""

from __future__ import annotations

import csv
import random
import shutil
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "desktop" / "labeltune" / "resources" / "demos"
CORN_PER_CLASS = 30
FISH_PER_SPECIES = 25
FISH_SPECIES = [  # many distinct tracks each; small crops keep the download small
    "Acanthurus nigrofuscus",
    "Chromis chrysura",
    "Dascyllus reticulatus",
    "Myripristis kuntee",
    "Neoniphon sammara",
    "Plectroglyphidodon dickii",
]

CORN_CREDITS = """\
Corn leaf disease demo — {count} photos ({per_class} per class) of maize leaves in 4 classes:
Blight (Northern Corn Leaf Blight), Common_Rust, Gray_Leaf_Spot, Healthy.

Source: "Corn or Maize Leaf Disease Dataset" (Smaranjit Ghose), GitHub repository
smaranjitghose/corn_pathology_ai, commit 3e81d9a6c1dd1cc0a8914b7ed71232e450f10cfc, folder data/,
built from the PlantVillage and PlantDoc data sets.

Licence: CC0 1.0 Universal (public domain dedication); the full text is in LICENSE.CC0.txt.

Please cite: S. P. Mohanty, D. P. Hughes, M. Salathe, "Using deep learning for image-based plant disease
detection", Frontiers in Plant Science 7:1419 (2016), doi:10.3389/fpls.2016.01419.

Caveat: disease photos mostly show a leaf on a gray background while Healthy photos are frame-filling
close-ups, so a model can recognise Healthy by style alone; field photos look very different.
"""

FISH_CREDITS = """\
Reef fish demo — {count} underwater video crops of {species} reef fish species from the Fish4Knowledge
(F4K) fish recognition ground-truth data set, chosen over {tracks} distinct fish tracks.
manifest.csv lists path, label (species) and group (the F4K trajectory id): frames of one track are
near-identical, so training splits must keep a track on one side (LabelTune does, by group).

Fish4Knowledge fish recognition ground truth, University of Edinburgh.
Page created by Phoenix X. Huang, Bastiaan B. Boom and Robert B. Fisher.

Copyright notice (retained as the licence requires):
"Permission is granted for anyone to copy, use, modify, or distribute this data and accompanying documents
for any purpose, provided this copyright notice is retained and prominently displayed, along with a note
saying that the original data are available from our web page and refering to [2]. The data and documents
are distributed without any warranty, express or implied."

The original data are available from the F4K web page:
https://groups.inf.ed.ac.uk/vision/DATASETS/FISH4KNOWLEDGE/WEBSITE/GROUNDTRUTH/RECOG/

[2] B. J. Boom, P. X. Huang, J. He, R. B. Fisher, "Supporting ground-truth annotation of image datasets
using clustering", 21st International Conference on Pattern Recognition (ICPR), 2012.

This subset was copied from the GitHub re-upload Callmewuxin/fish4konwledge, commit
9ab467547de76ca40eeab1de5b967d76b19b40c0.
"""


XRD_CREDITS = """\
XRD phases demo — {count} measured powder X-ray diffraction patterns (Cu K-alpha, 2theta 10-100 deg,
step 0.01 deg) of oxides and fluorides of the Li-Mn-Ti-O-F system, single phases and mixtures of 2-3
phases. The phases present are given by each file name (Mn2O3+LiF.xy = Mn2O3 and LiF); polymorphs are not
named (TiO2 may be anatase or rutile), so the demo labels them by formula. references/ holds the {cifs}
reference crystal structures (CIF) of the system; the demo's peak library is computed from them.

Source: XRD-AutoAnalyzer (Nathan J. Szymanski), GitHub repository njszym/XRD-AutoAnalyzer, commit bf32082,
folder Example/ (the measured patterns and the reference CIFs).

Licence: MIT License, Copyright (c) 2024 Nathan Szymanski; the full text is in LICENSE.MIT.txt.

Please cite: N. J. Szymanski, C. J. Bartel, Y. Zeng, Q. Tu, G. Ceder, "Probabilistic Deep Learning Approach
to Automate the Interpretation of Multi-phase Diffraction Spectra", Chemistry of Materials 33, 4204-4215
(2021), doi:10.1021/acs.chemmater.1c01071.
"""


def _reset(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _write_manifest(path: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def make_corn(shared: Path) -> None:
    """30 photos per class, a seeded sample of each class."""
    source = shared / "corn_leaf"
    out = TARGET / "corn"
    _reset(out)
    rng = random.Random(0)
    rows: list[dict[str, str]] = []
    for folder in sorted(p for p in (source / "images").iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.is_file())
        for path in sorted(rng.sample(files, CORN_PER_CLASS)):
            relative = Path("images") / folder.name / path.name
            (out / relative.parent).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / relative)
            rows.append({"path": relative.as_posix(), "label": folder.name})
    _write_manifest(out / "manifest.csv", rows, ["path", "label"])
    shutil.copyfile(source / "LICENSE.CC0.txt", out / "LICENSE.CC0.txt")
    (out / "CREDITS.txt").write_text(
        CORN_CREDITS.format(count=len(rows), per_class=CORN_PER_CLASS), encoding="utf-8"
    )


def make_fish(shared: Path) -> None:
    """25 crops per species, taken round-robin over the species' tracks (as many tracks as possible)."""
    source = shared / "fish4knowledge"
    out = TARGET / "fish"
    _reset(out)
    with open(source / "MANIFEST.csv", newline="", encoding="utf-8") as handle:
        manifest = list(csv.DictReader(handle))
    rows: list[dict[str, str]] = []
    tracks: set[str] = set()
    for species in FISH_SPECIES:
        by_track: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in manifest:
            if row["species"] == species:
                by_track[row["trajectory_id"]].append(row)
        queues = [sorted(by_track[t], key=lambda r: r["path"]) for t in sorted(by_track)]
        random.Random(species).shuffle(queues)
        chosen: list[dict[str, str]] = []
        while len(chosen) < FISH_PER_SPECIES and any(queues):
            for queue in queues:
                if queue and len(chosen) < FISH_PER_SPECIES:
                    chosen.append(queue.pop(0))
        if len(chosen) < FISH_PER_SPECIES:
            raise SystemExit(f"{species}: only {len(chosen)} images")
        for row in sorted(chosen, key=lambda r: r["path"]):
            src = source / row["path"]
            relative = Path("images") / src.parent.name / src.name
            (out / relative.parent).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / relative)
            rows.append({"path": relative.as_posix(), "label": species, "group": row["trajectory_id"]})
            tracks.add(row["trajectory_id"])
    _write_manifest(out / "manifest.csv", rows, ["path", "label", "group"])
    (out / "CREDITS.txt").write_text(
        FISH_CREDITS.format(count=len(rows), species=len(FISH_SPECIES), tracks=len(tracks)), encoding="utf-8"
    )


def make_xrd(shared: Path) -> None:
    """All 8 measured patterns (labels from their file names) and the 56 reference CIFs, unchanged."""
    source = shared / "xrd" / "li_mn_ti_o_f"
    out = TARGET / "xrd"
    _reset(out)
    rows: list[dict[str, str]] = []
    for folder, pattern in (("patterns", "*.xy"), ("references", "*.cif")):
        (out / folder).mkdir()
        for path in sorted((source / folder).glob(pattern)):
            shutil.copyfile(path, out / folder / path.name)
            if folder == "patterns":
                rows.append({"path": f"patterns/{path.name}", "label": ";".join(path.stem.split("+"))})
    _write_manifest(out / "manifest.csv", rows, ["path", "label"])
    shutil.copyfile(source / "LICENSE.MIT.txt", out / "LICENSE.MIT.txt")
    cifs = len(list((out / "references").glob("*.cif")))
    (out / "CREDITS.txt").write_text(XRD_CREDITS.format(count=len(rows), cifs=cifs), encoding="utf-8")


def main() -> None:
    """Rebuild the demos."""
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"
    make_corn(shared)
    make_fish(shared)
    make_xrd(shared)
    print(f"wrote demos to {TARGET}")


if __name__ == "__main__":
    main()
