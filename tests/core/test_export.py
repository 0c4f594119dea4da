"""Tests for labeltune.core.export: ONNX / TorchScript export, verification and the model card."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from labeltune import __version__  # noqa: E402
from labeltune.core.errors import LabelTuneError, UnusableInputError  # noqa: E402
from labeltune.core.export import ExportResult, export_model  # noqa: E402
from labeltune.core.export import formats as export_mod  # noqa: E402
from labeltune.core.model import ModelConfig, build_classifier, load_model, save_model  # noqa: E402
from labeltune.core.progress import Progress  # noqa: E402

CLASSES = ["a", "b", "c"]
METRICS = {
    "accuracy": 0.75,
    "balanced_accuracy": 0.7,
    "macro_f1": 0.68,
    "per_class": {name: {"precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 4} for name in CLASSES},
}
TRAIN = {"strategy": "full", "epochs": 3, "batch_size": 8, "lr": 0.001, "seed": 1}
MANIFEST_ROWS = [
    ("img/a1.jpg", "0" * 64, "a", "train"),
    ("img/a2.jpg", "1" * 64, "a", "train"),
    ("img/b1.jpg", "2" * 64, "b", "train"),
    ("img/c1.jpg", "3" * 64, "c", "val"),
    ("img/b2.jpg", "4" * 64, "b", "test"),
]


def _make_run(
    run_dir: Path,
    backbone: str = "resnet18",
    size: int = 32,
    *,
    extras: bool = True,
    seed: int = 0,
) -> Any:
    """Write a tiny finished run (random backbone, calibrated BatchNorm, perturbed head); return its model."""
    torch.manual_seed(seed)
    config = ModelConfig.for_backbone(backbone, CLASSES, input_size=size)
    model = build_classifier(config)
    # Give BatchNorm realistic running statistics so activations neither vanish nor explode.
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        # momentum None: the running stats become this batch's (bigger batches condition it better).
        model(torch.rand(16 if size <= 64 else 8, 3, size, size))
    model.eval()
    with torch.no_grad():
        for layer in model.head.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.normal_(0.0, 1.0)
                layer.bias.uniform_(-1.0, 1.0)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_model(run_dir, model, config)
    data: dict[str, Any] = {"model": asdict(config)}
    if extras:
        data["train"] = TRAIN
        (run_dir / "metrics.json").write_text(json.dumps(METRICS))
        with open(run_dir / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "sha256", "label", "split"])
            writer.writerows(MANIFEST_ROWS)
    (run_dir / "config.json").write_text(json.dumps(data))
    return model


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_MODELS: dict[Path, Any] = {}


def _reference(run_dir: Path, batch: Any) -> np.ndarray:
    """Return the logits of the run's model as saved (rebuilt with load_model, cached)."""
    if run_dir not in _MODELS:
        _MODELS[run_dir] = load_model(run_dir)[0]
    model = _MODELS[run_dir]
    with torch.no_grad():
        return model(batch).numpy()


def _assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    assert float(np.abs(actual - expected).max()) <= export_mod.RTOL * scale


def _run_onnx(path: Path, batch: Any) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits", "probabilities"], {"image": batch.numpy()})


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "run-resnet"
    _make_run(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def onnx_export(resnet_run: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_model(resnet_run, out, "onnx")


@pytest.fixture(scope="module")
def ts_export(resnet_run: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    out = tmp_path_factory.mktemp("ts") / "model.pt"
    return export_model(resnet_run, out, "torchscript")


def test_onnx_export_matches_pytorch(resnet_run: Path, onnx_export: ExportResult) -> None:
    import onnx

    result = onnx_export
    assert result.format == "onnx"
    assert result.path.is_file() and result.path.name == "model.onnx"
    assert result.card_path == result.path.with_name("model.onnx.card.json") and result.card_path.is_file()
    assert result.markdown_path is not None and result.markdown_path.is_file()
    assert 0.0 <= result.max_abs_diff <= result.tolerance
    # One self-contained file: nothing else (external data, temporaries) beside it.
    assert sorted(p.name for p in result.path.parent.iterdir()) == [
        "model.onnx",
        "model.onnx.card.json",
        "model.onnx.card.md",
    ]

    proto = onnx.load(str(result.path))
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 17
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits", "probabilities"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["labeltune"])["classes"] == CLASSES

    generator = torch.Generator().manual_seed(123)
    for batch_size in (3, 5):  # 5 is neither the traced batch (2) nor a verified one: the axis is dynamic
        batch = torch.rand(batch_size, 3, 32, 32, generator=generator)
        logits, probabilities = _run_onnx(result.path, batch)
        expected = _reference(resnet_run, batch)
        _assert_close(logits, expected)
        np.testing.assert_allclose(
            probabilities, torch.softmax(torch.from_numpy(logits), 1).numpy(), atol=1e-5
        )
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The head perturbation makes the outputs non-trivial (the check above is not vacuous).
    assert float(np.ptp(expected, axis=0).max()) > 1e-3


@pytest.mark.filterwarnings(r"ignore:.*torch\.jit.*deprecated:FutureWarning")
def test_torchscript_export_matches_pytorch(resnet_run: Path, ts_export: ExportResult) -> None:
    result = ts_export
    assert result.format == "torchscript"
    assert result.path.is_file() and result.card_path.is_file()
    assert 0.0 <= result.max_abs_diff <= result.tolerance
    extra = {"labeltune.json": ""}
    loaded = torch.jit.load(str(result.path), map_location="cpu", _extra_files=extra)
    assert json.loads(extra["labeltune.json"])["classes"] == CLASSES
    generator = torch.Generator().manual_seed(7)
    for batch_size in (3, 5):
        batch = torch.rand(batch_size, 3, 32, 32, generator=generator)
        with torch.no_grad():
            logits, probabilities = (t.numpy() for t in loaded(batch))
        _assert_close(logits, _reference(resnet_run, batch))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("which", ["onnx", "torchscript"])
def test_model_card(which: str, request: pytest.FixtureRequest, resnet_run: Path) -> None:
    result: ExportResult = request.getfixturevalue(f"{'onnx' if which == 'onnx' else 'ts'}_export")
    card = json.loads(result.card_path.read_text(encoding="utf-8"))
    assert card["labeltune_version"] == __version__
    assert card["created"]
    assert card["classes"] == CLASSES and card["num_classes"] == 3
    assert card["backbone"]["name"] == "resnet18"
    assert card["file"]["format"] == which
    assert card["file"]["sha256"] == _sha256(result.path) == result.sha256
    assert card["file"]["size_bytes"] == result.path.stat().st_size
    inp = card["input"]
    assert inp["size"] == 32 and inp["shape"] == ["N", 3, 32, 32]
    assert inp["channel_order"] == "RGB" and inp["layout"] == "NCHW" and inp["value_range"] == [0.0, 1.0]
    assert inp["preprocessing"] == ModelConfig.for_backbone("resnet18", CLASSES).preprocessing
    assert "EXIF" in inp["resize"] and "white" in inp["resize"] and "bilinear" in inp["resize"]
    assert card["normalization"]["inside_model"] is True
    assert card["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert card["metrics"] == METRICS
    assert card["training"] == TRAIN
    data = card["data"]
    assert data["manifest_sha256"] == _sha256(resnet_run / "manifest.csv")
    assert data["counts_per_split"] == {"test": 1, "train": 3, "val": 1}
    assert data["counts_per_split_and_label"]["train"] == {"a": 2, "b": 1}
    assert card["verification"]["max_abs_diff_logits"] == result.max_abs_diff
    outputs = [o["name"] for o in card["outputs"]]
    assert outputs == ["logits", "probabilities"]  # this bare run has no unfamiliar-input statistics
    assert card["calibration"]["temperature"] == 1.0 and card["unfamiliar"] is None

    assert result.markdown_path is not None
    md = result.markdown_path.read_text(encoding="utf-8")
    assert card["file"]["sha256"] in md and data["manifest_sha256"] in md
    assert "| 0 | a |" in md and "| 2 | c |" in md
    assert "balanced_accuracy" in md and "macro_f1" in md and "precision" in md
    assert "Normalisation is **inside the model**" in md


def test_unknown_format_rejected(resnet_run: Path, tmp_path: Path) -> None:
    with pytest.raises(UnusableInputError, match="unknown export format"):
        export_model(resnet_run, tmp_path / "m.tflite", "tflite")
    assert list(tmp_path.iterdir()) == []


def test_non_run_dir_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UnusableInputError):
        export_model(empty, tmp_path / "m.onnx", "onnx")
    with pytest.raises(UnusableInputError):
        export_model(tmp_path / "missing", tmp_path / "m.pt", "torchscript")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"something": 1}))
    (bad / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnusableInputError, match="model"):
        export_model(bad, tmp_path / "m.pt", "torchscript")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("model.safetensors", b"this is not safetensors"),
        ("config.json", b"{not json"),
        ("config.json", b'{"model": {"backbone": "resnet18"}}'),
    ],
)
def test_damaged_run_rejected(resnet_run: Path, tmp_path: Path, file: str, content: bytes) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(resnet_run, damaged)
    (damaged / file).write_bytes(content)
    with pytest.raises(UnusableInputError):
        export_model(damaged, tmp_path / "m.pt", "torchscript")
    assert not (tmp_path / "m.pt").exists()


def test_minimal_run_directory_out_and_progress(tmp_path: Path) -> None:
    run_dir = tmp_path / "bare-run"
    _make_run(run_dir, extras=False)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    seen: list[Progress] = []
    result = export_model(run_dir, out_dir, "TorchScript", progress=seen.append)
    assert result.path == out_dir / "bare-run.pt" and result.path.is_file()
    card = json.loads(result.card_path.read_text(encoding="utf-8"))
    assert card["metrics"] is None and card["training"] is None and card["data"] is None
    assert result.markdown_path is not None
    assert "No metrics.json" in result.markdown_path.read_text(encoding="utf-8")
    assert [p.done for p in seen] == [0, 1, 2, 3, 4] and all(p.total == 4 for p in seen)
    # A path without suffix gets the format's suffix.
    again = export_model(run_dir, tmp_path / "noext", "torchscript")
    assert again.path == tmp_path / "noext.pt"


def test_failed_verification_deletes_file(
    resnet_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_runner = export_mod._runner

    def broken_runner(fmt: str, path: Path) -> Any:
        run = real_runner(fmt, path)
        # Off by 1% of the logit scale: far beyond the tolerance (1e-4 of it).
        return lambda batch: [out + 0.01 * float(np.abs(out).max()) + 1.0 for out in run(batch)]

    monkeypatch.setattr(export_mod, "_runner", broken_runner)
    out = tmp_path / "model.pt"
    out.write_bytes(b"previous export")
    with pytest.raises(LabelTuneError, match="differ"):
        export_model(resnet_run, out, "torchscript")
    # The bad file is gone, the previous export is untouched and no card was written.
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert out.read_bytes() == b"previous export"


def test_refuses_to_overwrite_run_files(resnet_run: Path) -> None:
    before = _sha256(resnet_run / "model.safetensors")
    with pytest.raises(UnusableInputError, match="overwrite"):
        export_model(resnet_run, resnet_run / "model.safetensors", "torchscript")
    assert _sha256(resnet_run / "model.safetensors") == before


def test_legacy_onnx_fallback(resnet_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated torch.export failure")

    monkeypatch.setattr(export_mod, "_export_onnx_dynamo", failing)
    result = export_model(resnet_run, tmp_path / "legacy.onnx", "onnx")
    assert "legacy" in result.exporter
    assert result.max_abs_diff <= result.tolerance
    batch = torch.rand(4, 3, 32, 32)
    _assert_close(_run_onnx(result.path, batch)[0], _reference(resnet_run, batch))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "legacy.onnx",
        "legacy.onnx.card.json",
        "legacy.onnx.card.md",
    ]


@pytest.mark.parametrize(
    ("backbone", "size"),
    [
        ("alexnet", 63),
        # ~11 s of CPU for torch.export + ONNX translation alone; 18-26 s for the whole test on 2 cores.
        pytest.param("densenet201", 32, marks=pytest.mark.slow),
        ("inception_v3", 107),
        ("mobilenet_v3_large", 32),
    ],
)
def test_other_backbones_onnx(backbone: str, size: int, tmp_path: Path) -> None:
    run_dir = tmp_path / f"run-{backbone}"
    model = _make_run(run_dir, backbone, size)
    result = export_model(run_dir, tmp_path / f"{backbone}.onnx", "onnx")
    assert result.max_abs_diff <= result.tolerance
    batch = torch.rand(5, 3, size, size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(batch).numpy()
    assert float(np.ptp(expected, axis=0).max()) > 1e-4  # outputs depend on the input
    _assert_close(_run_onnx(result.path, batch)[0], expected)
    card = json.loads(result.card_path.read_text(encoding="utf-8"))
    assert card["backbone"]["name"] == backbone and card["input"]["size"] == size
