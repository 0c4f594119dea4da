"""``labeltune audit``: planted label errors and near-duplicates rank at the top (issue 12)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeltune import cli
from labeltune.core.audit import (
    CROSS_CLASS,
    SAME_CLASS,
    TRAIN_VAL,
    label_issues,
    multilabel_issues,
    near_duplicates,
)
from labeltune.core.oof import fold_assignment, out_of_fold_probs
from labeltune.core.xrd.shipped import shipped_model_dir

OFFLINE_URL = "http://127.0.0.1:9/"
FAST = ["--backbone", "resnet18", "--weights", "none", "--input-size", "32", "--seed", "0"]


def _separable(n: int = 600, d: int = 64, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (k, d)) * 1.5
    y = rng.integers(0, k, n)
    return centers[y] + rng.normal(0, 1, (n, d)), y


def _main(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


# -- arrays ------------------------------------------------------------------------------------------
def test_planted_label_errors_rank_at_the_top() -> None:
    x, truth = _separable()
    rng = np.random.default_rng(1)
    planted = rng.choice(len(truth), 30, replace=False)  # 5 %
    noisy = truth.copy()
    noisy[planted] = (truth[planted] + rng.integers(1, 4, 30)) % 4
    probs = out_of_fold_probs(x, noisy, 4)
    issues = label_issues(probs, noisy)
    top = [issue.index for issue in issues[: 2 * len(planted)]]
    assert len(set(top) & set(planted.tolist())) >= 0.8 * len(planted)
    by_index = {issue.index: issue for issue in issues}
    found = [by_index[i] for i in planted if i in by_index]
    assert sum(issue.suggested == truth[issue.index] for issue in found) >= 0.9 * len(found)
    assert all(0.0 <= issue.score <= 1.0 for issue in issues)
    assert [issue.score for issue in issues] == sorted((issue.score for issue in issues), reverse=True)


def test_clean_labels_give_few_issues_and_rare_classes_are_not_judged() -> None:
    x, truth = _separable(seed=3)
    assert len(label_issues(out_of_fold_probs(x, truth, 4), truth)) <= 0.01 * len(truth)
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.95, 0.05], [0.7, 0.3], [0.9, 0.1], [0.99, 0.01]])
    labels = np.array([0, 0, 0, 0, 0, 1])  # class 1 has one item: its out-of-fold heads never saw it
    assert label_issues(probs, labels) == []


def test_planted_phase_set_errors_rank_at_the_top() -> None:
    rng = np.random.default_rng(2)
    n, d, k = 600, 64, 5
    truth = rng.random((n, k)) < 0.4
    truth[truth.sum(axis=1) == 0, 0] = True
    x = truth @ rng.normal(0, 1.5, (k, d)) + rng.normal(0, 0.7, (n, d))
    planted = rng.choice(n, 30, replace=False)
    noisy = truth.copy()
    noisy[planted, 1] = ~noisy[planted, 1]  # a phase added or forgotten
    issues = multilabel_issues(out_of_fold_probs(x, noisy.astype(np.float32), multilabel=True), noisy)
    top = [index for index, _suggested, _score in issues[:60]]
    assert len(set(top) & set(planted.tolist())) >= 24
    suggested = {index: s for index, s, _ in issues}
    right = [i for i in planted if i in suggested and suggested[i] == np.flatnonzero(truth[i]).tolist()]
    assert len(right) >= 0.8 * len([i for i in planted if i in suggested])


def test_folds_stratify_and_keep_groups_whole() -> None:
    strata = ["a"] * 10 + ["b"] * 10
    groups = [f"g{i // 2}" for i in range(20)]  # pairs
    folds = fold_assignment(strata, 5, groups=groups)
    assert all(folds[i] == folds[i + 1] for i in range(0, 20, 2))
    assert sorted(np.bincount(folds).tolist()) == [4, 4, 4, 4, 4]


def test_planted_near_duplicates_are_found_with_their_kind() -> None:
    rng = np.random.default_rng(4)
    features = rng.normal(0, 1, (300, 128)).astype(np.float32)
    labels = [i % 3 for i in range(300)]
    split = ["val" if i % 5 == 0 else "train" for i in range(300)]
    planted = {(0, 300): CROSS_CLASS, (1, 301): TRAIN_VAL, (2, 302): SAME_CLASS}
    copies, extra_labels, extra_split = [], [], []
    for (source, _copy), kind in planted.items():
        copies.append(features[source] + rng.normal(0, 0.05, 128).astype(np.float32))
        extra_labels.append(labels[source] if kind != CROSS_CLASS else (labels[source] + 1) % 3)
        extra_split.append("val" if kind == TRAIN_VAL and split[source] == "train" else split[source])
    groups = near_duplicates(np.vstack([features, *copies]), labels + extra_labels, split + extra_split)
    found = {tuple(g.members): g.kind for g in groups}
    assert found == {pair: kind for pair, kind in planted.items()}
    assert all(g.similarity >= 0.95 for g in groups)


# -- the command line ---------------------------------------------------------------------------------
def _image_set(root: Path) -> dict[str, Path]:
    """3 colour classes, plus a misfiled copy (label error, cross-class duplicate) and a noisy copy."""
    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 200, 40), (40, 60, 220)]
    for k, colour in enumerate(colours):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(16):
            pixels = np.asarray(colour, np.int16) + rng.integers(-40, 40, (40, 40, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / f"class{k}" / f"img{i:02d}.png"
            )
    misfiled = root / "class1" / "misfiled.png"
    shutil.copy(root / "class0" / "img03.png", misfiled)
    pixels = np.asarray(Image.open(root / "class2" / "img05.png"), np.int16) + rng.integers(
        -2, 3, (40, 40, 3)
    )
    twin = root / "class2" / "twin.png"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(twin)
    return {"misfiled": misfiled, "original": root / "class0" / "img03.png", "twin": twin}


def test_audit_an_image_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELTUNE_WEIGHTS_BASE_URL", OFFLINE_URL)
    data = tmp_path / "images"
    special = _image_set(data)
    code, _out, err = _main("train", data, *FAST, "--epochs", "2", "--out", tmp_path / "run", "--json")
    assert code == 0, err
    code, out, err = _main("audit", tmp_path / "run", data, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"label_issues", "duplicates"}
    first = report["label_issues"][0]
    assert set(first) == {"path", "label", "suggested", "score"}
    flagged = {Path(issue["path"]).name: issue for issue in report["label_issues"][:2]}
    assert flagged["misfiled.png"]["label"] == "class1" and flagged["misfiled.png"]["suggested"] == "class0"
    groups = {frozenset(Path(p).name for p in g["paths"]): g for g in report["duplicates"]}
    cross = groups[frozenset({"misfiled.png", "img03.png"})]
    assert cross["kind"] == CROSS_CLASS and cross["similarity"] > 0.99
    twin = next(g for names, g in groups.items() if "twin.png" in names)
    assert twin["kind"] in (SAME_CLASS, TRAIN_VAL) and {Path(p).name for p in twin["paths"]} == {
        "twin.png",
        "img05.png",
    }
    manifest = (tmp_path / "run" / "manifest.csv").read_text()
    sides = {line.split(",")[0]: line.split(",")[-1] for line in manifest.splitlines()[1:]}
    expected = (
        TRAIN_VAL if sides[str(special["twin"])] != sides[str(data / "class2" / "img05.png")] else SAME_CLASS
    )
    assert twin["kind"] == expected
    code, text, _ = _main("audit", tmp_path / "run", data)  # the readable list
    assert (
        code == 0
        and "likely label errors" in text
        and "misfiled.png: labeled class1, looks like class0" in text
    )


def test_audit_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    code, _out, err = _main("audit", tmp_path / "nothing", tmp_path / "none")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err
    code, _out, err = _main("audit", tmp_path, tmp_path, "--folds", "1")
    assert code == 2 and "--folds" in err


@pytest.mark.skipif(shipped_model_dir() is None, reason="the bundled XRD model is not here")
def test_audit_an_xrd_project(tmp_path: Path) -> None:
    from labeltune.core import demos

    project = demos.write_demo("xrd", tmp_path / "xrd")
    shutil.copy(project / "patterns" / "MnO.xy", project / "patterns" / "MnO-again.xy")
    with open(project / "labels.csv", "a", encoding="utf-8") as handle:
        handle.write("patterns/MnO-again.xy,TiO2;LiF,\n")  # a copy labeled with another phase set
    model = shipped_model_dir()
    code, out, err = _main("audit", model, project, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"label_issues", "duplicates"}
    first = report["duplicates"][0]
    assert {Path(p).name for p in first["paths"]} == {"MnO.xy", "MnO-again.xy"}
    assert first["kind"] == CROSS_CLASS and first["similarity"] > 0.99
    for issue in report["label_issues"]:  # phase sets, ";"-joined library names
        assert all(name for name in issue["label"].split(";"))
