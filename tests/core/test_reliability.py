"""Calibrated confidence and the unfamiliar-input score: the pieces, and a real run on the shipped photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from labeltune.core.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    sigmoid,
    softmax,
)
from labeltune.core.datasets import scan
from labeltune.core.demos import write_demo
from labeltune.core.familiarity import FILE, Familiarity, GaussianDensity, fit_familiarity, torch_scorer
from labeltune.core.inference import evaluate_run, predict_files, sort_into
from labeltune.core.training import TrainConfig, train

# ------------------------------------------------------------------------------------------ calibration


def _overconfident(n: int, classes: int, factor: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the 'model' reports factor * z (over-confident when factor > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, classes))
    p = softmax(z)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return factor * z, labels


def test_temperature_recovers_the_miscalibration() -> None:
    logits, labels = _overconfident(4000, 5, factor=3.0)
    assert fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.12)
    under, labels = _overconfident(4000, 5, factor=0.5, seed=1)
    assert fit_temperature(under, labels) == pytest.approx(0.5, rel=0.12)


def test_calibration_lowers_the_error_cross_fitted() -> None:
    logits, labels = _overconfident(600, 4, factor=4.0)
    report = calibrate(logits, labels)
    assert report.cross_fitted and report.n == 600
    assert report.ece_before > 0.1
    assert report.ece_after < report.ece_before / 2
    assert report.temperature > 2
    assert "cross-fitted" in report.to_json()["note"]


def test_small_validation_sets_are_reported_in_sample_and_not_collapsed() -> None:
    # 20 items, all right with a wide margin: maximum likelihood would send T to 0 ("100 %" always).
    logits = np.tile(np.array([[3.0, 0.0, 0.0]]), (20, 1))
    report = calibrate(logits, np.zeros(20, dtype=int))
    assert not report.cross_fitted and "in-sample" in report.to_json()["note"]
    assert 0.2 < report.temperature < 1.0  # sharper, as the data say, but held by the prior


def test_multilabel_calibration() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, (800, 6))
    truth = (rng.random(z.shape) < sigmoid(z)).astype(float)
    report = calibrate(3 * z, truth, multilabel=True)
    assert report.temperature == pytest.approx(3.0, rel=0.2)
    assert report.ece_after < report.ece_before / 2
    assert expected_calibration_error(sigmoid(z), truth, multilabel=True) < 0.05


def test_ece_is_zero_for_a_perfect_forecaster() -> None:
    p = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(p, np.array([0, 1])) == 0.0
    assert expected_calibration_error(p, np.array([1, 0])) == 1.0


# ------------------------------------------------------------------------------------------ familiarity


def _clusters(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    basis = np.random.default_rng(99).normal(0, 1, (3, 40))
    content = basis[labels] * 3 + rng.normal(0, 1, (n, 40)) + shift
    looks = rng.normal(0, 1, (n, 8)) @ np.diag(np.linspace(1, 3, 8)) + 5
    return content, looks, labels


def test_familiarity_flags_shifts_and_few_familiar_items(tmp_path: Path) -> None:
    content, looks, labels = _clusters(400, 0)
    val_content, val_looks, _ = _clusters(100, 1)
    fam = fit_familiarity(
        {"content": content, "early": looks},
        labels,
        val={"content": val_content, "early": val_looks},
    )
    assert fam.report["cross_fitted"] and fam.report["reference_items"] == 500
    fresh_content, fresh_looks, _ = _clusters(1000, 2)
    fresh = fam.score({"content": fresh_content, "early": fresh_looks})
    assert np.mean(fresh > 1) < 0.10  # about the 5 % asked for
    # content unlike anything seen, or a familiar content that looks different: both flagged
    moved = fam.score({"content": fresh_content + 4.0, "early": fresh_looks})
    darker = fam.score({"content": fresh_content, "early": fresh_looks * 0.3})
    assert np.mean(moved > 1) > 0.95 and np.mean(darker > 1) > 0.95
    # round trip through the run folder; and the torch scorer (exports) computes the same
    path = fam.save(tmp_path)
    assert path.name == FILE
    loaded = Familiarity.load(tmp_path)
    assert loaded is not None and loaded.report == fam.report
    np.testing.assert_allclose(
        loaded.score({"content": fresh_content, "early": fresh_looks}), fresh, rtol=1e-5
    )
    import torch

    scorer = torch_scorer(fam, ["content", "early"])
    with torch.no_grad():
        t = scorer(
            torch.tensor(fresh_content, dtype=torch.float32), torch.tensor(fresh_looks, dtype=torch.float32)
        )
    np.testing.assert_allclose(t.numpy(), fresh, rtol=1e-3, atol=1e-4)
    assert Familiarity.load(tmp_path / "nothing") is None


def test_density_works_with_fewer_items_than_dimensions() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (12, 300))
    density = GaussianDensity.fit(x, normalize=True)
    assert density.components.shape[0] == 3  # n // 4
    assert np.all(np.isfinite(density.distance(x)))
    fam = fit_familiarity({"content": x}, np.zeros(12, dtype=int))
    assert not fam.report["cross_fitted"]  # too few to cross-fit, and the report says so


# ------------------------------------------------------------------------------------------ a real run


def _shifted(paths: list[Path], out: Path) -> dict[str, list[Path]]:
    """Blurred, darkened and recoloured copies of ``paths``."""
    made: dict[str, list[Path]] = {"blur": [], "dark": [], "recolour": []}
    for kind in made:
        (out / kind).mkdir(parents=True, exist_ok=True)
    for path in paths:
        image = Image.open(path).convert("RGB")
        name = path.stem + ".png"
        image.filter(ImageFilter.GaussianBlur(6)).save(out / "blur" / name)
        ImageEnhance.Brightness(image).enhance(0.3).save(out / "dark" / name)
        Image.fromarray(np.asarray(image)[..., [2, 0, 1]]).save(out / "recolour" / name)
        for kind in made:
            made[kind].append(out / kind / name)
    return made


@pytest.fixture(scope="module")
def corn_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], Path]:
    """A default run (EfficientNet-Lite0, features) on 80 of the 120 shipped corn photos; 40 held out."""
    root = tmp_path_factory.mktemp("corn")
    demo = write_demo("corn", root / "demo")
    with open(demo / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    held, used = [], []
    for i, row in enumerate(rows):
        (held if i % 3 == 0 else used).append(row)
    listing = demo / "train.csv"
    with open(listing, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([r["path"], r["label"]] for r in used)
    run = root / "run"
    train(scan(listing), TrainConfig(seed=0), run)
    return run, [demo / r["path"] for r in held], root


def test_a_run_stores_its_temperature_and_familiarity(corn_run: tuple[Path, list[Path], Path]) -> None:
    run, _, _ = corn_run
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["model"]["temperature"] == pytest.approx(metrics["calibration"]["temperature"], abs=1e-4)
    assert config["model"]["temperature"] > 0
    assert metrics["calibration"]["n"] == metrics["n"]
    assert (run / FILE).is_file()
    unfamiliar = metrics["unfamiliar"]
    assert unfamiliar["val_unfamiliar_rate"] <= 0.15
    assert set(unfamiliar["representations"]) == {"content", "early", "mid"}


def test_unfamiliar_fires_on_shifts_and_rarely_on_new_familiar_photos(
    corn_run: tuple[Path, list[Path], Path],
) -> None:
    run, held, root = corn_run
    predictions, _ = predict_files(run, held, device="cpu")
    assert np.mean([p.unfamiliar for p in predictions]) <= 0.15
    assert np.mean([p.label == p.path.parent.name for p in predictions]) >= 0.7  # 64 photos to learn from
    shifted = _shifted(held, root / "shifted")
    fish_demo = write_demo("fish", root / "fish")
    shifted["fish"] = sorted((fish_demo / "images").rglob("*.png"))[:40]
    rates = {}
    for kind, paths in shifted.items():
        preds, _ = predict_files(run, paths, device="cpu")
        rates[kind] = float(np.mean([p.unfamiliar for p in preds]))
        assert all(p.ood_score is not None and p.ood_score >= 0 for p in preds)
    assert rates["fish"] >= 0.9 and rates["blur"] >= 0.9, rates
    assert rates["dark"] >= 0.5 and rates["recolour"] >= 0.5, rates
    # --sort-into puts them in unfamiliar/, whatever their confidence
    preds, _ = predict_files(run, shifted["fish"][:5], device="cpu")
    counts = sort_into(preds, root / "sorted", min_confidence=0.0)
    assert counts.get("unfamiliar", 0) == sum(p.unfamiliar for p in preds) >= 4
    # evaluate reports their share and the accuracy on either side
    metrics = evaluate_run(run, scan(root / "demo"), device="cpu")
    assert metrics["unfamiliar"]["available"] and 0 <= metrics["unfamiliar"]["share"] <= 0.15


def test_probabilities_are_calibrated_in_predict(corn_run: tuple[Path, list[Path], Path]) -> None:
    run, held, _ = corn_run
    import torch

    from labeltune.core.imaging import load_array
    from labeltune.core.model import load_model

    model, config = load_model(run)
    x = torch.from_numpy(np.stack([load_array(p, config.input_size) for p in held[:4]]))
    with torch.no_grad():
        logits = model(x.permute(0, 3, 1, 2).float() / 255)
    expected = torch.softmax(logits / config.temperature, 1).max(1).values.numpy()
    predictions, _ = predict_files(run, held[:4], device="cpu")
    np.testing.assert_allclose([p.confidence for p in predictions], expected, atol=0.02)  # bf16 inference


@pytest.mark.filterwarnings(r"ignore:.*torch\.jit.*deprecated:FutureWarning")
def test_export_carries_temperature_and_ood_score(corn_run: tuple[Path, list[Path], Path]) -> None:
    import onnxruntime as ort

    from labeltune.core.export import export_model
    from labeltune.core.imaging import load_array

    run, held, root = corn_run
    result = export_model(run, root / "exports" / "corn.onnx", "onnx")
    card = json.loads(result.card_path.read_text())
    assert [o["name"] for o in card["outputs"]] == ["logits", "probabilities", "ood_score"]
    assert (
        card["calibration"]["temperature"]
        == json.loads((run / "config.json").read_text())["model"]["temperature"]
    )
    assert card["unfamiliar"]["unfamiliar_when_above"] == 1.0
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    paths = held[:3] + _shifted(held[3:6], root / "export-shifted")["blur"]
    x = np.stack([load_array(p, 224) for p in paths]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    _, probabilities, ood = session.run(None, {"image": x})
    predictions, _ = predict_files(run, paths, device="cpu")
    np.testing.assert_allclose(probabilities.max(1), [p.confidence for p in predictions], atol=0.03)
    for value, prediction in zip(ood, predictions, strict=True):
        assert prediction.ood_score is not None
        if abs(np.log(prediction.ood_score)) > 0.2:  # bf16 in predict, float32 in ONNX: not at the edge
            assert bool(value > 1) == prediction.unfamiliar
    assert [p.unfamiliar for p in predictions[3:]] == [True] * 3
