"""The XRD network: training on simulated patterns, fine-tuning on labeled files, predict, metrics."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from labeltune.cli import main
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import StoppedError
from labeltune.core.xrd.library import Library, build_library
from labeltune.core.xrd.measured import read_labels_csv
from labeltune.core.xrd.metrics import (
    FormulaError,
    canonical_formula,
    label_key,
    phase_set_metrics,
    resolve_label,
)
from labeltune.core.xrd.model import XrdNet, XrdNetConfig, class_activation, network_fractions
from labeltune.core.xrd.simulate import SimulationConfig, simulate
from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.core.xrd.training import train_xrd

CIFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "xrd" / "cod_cifs"
# corundum, rutile, quartz, fluorite, anatase (rutile and anatase share the formula TiO2)
NAMES = ("1000017", "1530150", "9012601", "1000043", "1010942")
needs_data = pytest.mark.skipif(
    not all((CIFS / f"{n}.cif").is_file() for n in NAMES), reason="../shared/data/xrd is not present"
)


# -- metrics (no data needed) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TiO2", "TiO2"),
        ("La(OH)3", "LaH3O3"),
        ("Li2CO3", "Li2CO3"),
        ("Ti2O4", "TiO2"),
        ("Fe2(SO4)3", "Fe2S3O12"),
    ],
)
def test_canonical_formula(text: str, expected: str) -> None:
    assert canonical_formula(text) == expected


@pytest.mark.parametrize("text", ["", "tio2", "Ti)O2", "(TiO2", "2TiO"])
def test_bad_formulas_are_refused(text: str) -> None:
    with pytest.raises(FormulaError):
        canonical_formula(text)


def test_phase_set_metrics_by_formula_and_fractions() -> None:
    truth = [{"TiO2", "MnO"}, {"Mn2O3"}, {"LiF"}]
    pred = [{"TiO2", "MnO"}, {"Mn2O3", "MnO"}, set()]
    m = phase_set_metrics(
        truth, pred, [{"TiO2": 0.6, "MnO": 0.4}, None, None], [{"TiO2": 0.55, "MnO": 0.45}, {}, {}]
    )
    assert m.exact_accuracy == pytest.approx(1 / 3)
    assert m.precision == pytest.approx(3 / 4)  # MnO predicted wrongly once
    assert m.recall == pytest.approx(3 / 4)  # LiF missed
    assert m.per_phase["LiF"]["recall"] == 0.0 and m.per_phase["MnO"]["precision"] == 0.5
    assert m.fraction_mae == pytest.approx(5.0)


def test_network_fractions_only_over_present_phases() -> None:
    logits = torch.tensor([[0.0, 1.0, 5.0], [0.0, 0.0, 0.0]])
    present = torch.tensor([[True, True, False], [False, False, False]])
    out = network_fractions(logits, present)
    assert out[0, 2] == 0 and out[0].sum() == pytest.approx(1.0) and out[0, 1] > out[0, 0]
    assert torch.all(out[1] == 0)


def test_class_activation_is_normalised_per_phase() -> None:
    torch.manual_seed(0)
    net = XrdNet(XrdNetConfig(n_phases=3, points=900, channels=(4, 4, 4, 4, 4)))
    x = torch.rand(900)
    cams = class_activation(net, x, [0, 2])
    assert cams.shape == (2, 900)
    assert torch.all(cams >= 0) and torch.all(cams <= 1.0 + 1e-6)


# -- a small library, one trained run shared by the tests below ------------------------------------------
@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    out = tmp_path_factory.mktemp("xrdlib") / "lib"
    return build_library([CIFS / f"{n}.cif" for n in NAMES], out, two_theta_range=(20.0, 70.0))


@pytest.fixture(scope="module")
def trained(library: Library, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    run = tmp_path_factory.mktemp("xrdrun") / "run"
    accuracies: list[float] = []
    config = XrdTrainConfig(epochs=8, patterns_per_epoch=1024, batch_size=64, seed=0, validation_patterns=256)
    assert library.path is not None
    train_xrd(library.path, config, run, on_epoch=lambda r: accuracies.append(r.val_accuracy))
    return run, accuracies


def _write_xy(path: Path, two_theta: np.ndarray, values: np.ndarray) -> Path:
    lines = ["# 2theta intensity"] + [
        f"{t:.3f}\t{v * 1000:.2f}" for t, v in zip(two_theta, values, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@needs_data
def test_training_learns_and_writes_a_run_folder(library: Library, trained: tuple[Path, list[float]]) -> None:
    run, accuracies = trained
    # exact phase sets over 5 phases, 1-3 per pattern: chance is about 1/25; the network must be far above
    assert accuracies[-1] > 0.3 and accuracies[-1] > accuracies[0]
    config = json.loads((run / "config.json").read_text())
    assert config["domain"] == "xrd" and config["phases"] == library.names
    assert config["grid"]["points"] == 2501
    for name in ("model.safetensors", "history.csv", "metrics.json", "library/library.json"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["simulated_validation"]["exact_accuracy"] == pytest.approx(
        max(a for a in accuracies), abs=0.25
    )
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 8


@needs_data
def test_predict_json_contract_on_a_pattern_file(
    library: Library, trained: tuple[Path, list[float]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    clean = SimulationConfig(two_theta_min=20.0, two_theta_max=70.0, points=2501, max_counts=(5e4, 5e4),
                             impurity_probability=0.0, strain=0.002, displacement_deg=0.02)  # fmt: skip
    batch = simulate(library, 1, clean, seed=5, composition={"1000017": 0.7, "1000043": 0.3})
    xy = _write_xy(tmp_path / "corundum+fluorite.xy", batch.two_theta, batch.x[0])
    bad = tmp_path / "empty.xy"
    bad.write_text("")
    assert main(["predict", str(run), str(xy), str(bad), "--json", "--wavelength", "1.5406"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [Path(o["path"]).name for o in out] == ["corundum+fluorite.xy", "empty.xy"]
    good, error = out
    assert "error" in error
    names = [p["name"] for p in good["phases"]]
    assert set(names) == {"1000017", "1000043"}
    probs = [p["probability"] for p in good["phases"]]
    assert probs == sorted(probs, reverse=True)
    for phase in good["phases"]:
        assert set(phase) >= {"name", "formula", "probability", "fraction"}
    fractions = {p["name"]: p["fraction"] for p in good["phases"]}
    assert fractions["1000017"] == pytest.approx(0.7, abs=0.05)
    assert sum(fractions.values()) == pytest.approx(1.0, abs=1e-3)
    # competing hypotheses: whole phase sets with their fit, best Rwp first, the chosen set among them
    alternatives = good["alternatives"]
    assert len(alternatives) >= 2
    assert [a["rwp"] for a in alternatives] == sorted(a["rwp"] for a in alternatives)
    assert [set(a["phases"]) for a in alternatives if a["chosen"]] == [set(names)]
    assert set(alternatives[0]["phases"]) == {"1000017", "1000043"}
    assert all(len(a["fractions"]) == len(a["phases"]) for a in alternatives)
    assert 0.0 <= good["uncertainty"] <= 1.0
    assert main(["predict", str(run), str(xy), "--wavelength", "1.5406"]) == 0  # text: the best rivals too
    rival = next(a for a in alternatives if not a["chosen"])
    assert f"Rwp {rival['rwp'] * 100:.1f} %" in capsys.readouterr().out


@needs_data
def test_predict_assumes_the_model_wavelength_with_a_warning(
    library: Library, trained: tuple[Path, list[float]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    cfg = SimulationConfig(two_theta_min=20.0, two_theta_max=70.0, points=2501)
    batch = simulate(library, 1, cfg, seed=2, composition={"9012601": 1.0})
    xy = _write_xy(tmp_path / "quartz.xy", batch.two_theta, batch.x[0])
    assert main(["predict", str(run), str(xy), "--json", "--no-fit"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert any("states no wavelength" in w for w in result["warnings"])
    assert "residual" not in result


@needs_data
def test_fine_tune_on_formula_labels_and_evaluate(
    library: Library, trained: tuple[Path, list[float]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    data = tmp_path / "measured"
    data.mkdir()
    cfg = SimulationConfig(two_theta_min=20.0, two_theta_max=70.0, points=2501, monochromatic=True)
    rows = ["path,phases,fractions"]
    for i, (comp, label, fr) in enumerate(
        [
            ({"1530150": 1.0}, "TiO2", ""),  # rutile labeled by formula only
            ({"1010942": 0.5, "9012601": 0.5}, "TiO2;9012601", "50;50"),  # anatase + quartz, percent
            ({"1000017": 1.0}, "Al2O3", ""),
        ]
    ):
        batch = simulate(library, 1, cfg, seed=10 + i, composition=comp)
        _write_xy(data / f"p{i}.xy", batch.two_theta, batch.x[0])
        rows.append(f"p{i}.xy,{label},{fr}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    parsed = read_labels_csv(data)
    assert parsed[1][1] == ["TiO2", "9012601"] and parsed[1][2] == [0.5, 0.5]
    assert resolve_label("TiO2", library) == [library.names.index("1530150"), library.names.index("1010942")]

    # without --init the measured folder cannot be trained on
    assert main(["train", str(data), "--domain", "xrd", "--out", str(tmp_path / "x")]) == 2
    assert "--init" in capsys.readouterr().err

    out = tmp_path / "tuned"
    code = main(["train", str(data), "--init", str(run), "--epochs", "2", "--patterns-per-epoch", "256",
                 "--batch-size", "32", "--wavelength", "1.5406", "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["domain"] == "xrd" and summary["epochs"] == 2
    assert "measured_training_set" in summary["metrics"]
    assert json.loads((out / "config.json").read_text())["train"]["init"] == str(run)
    assert json.loads((out / "config.json").read_text())["train"]["batch_size"] == 32  # explicit wins

    assert main(["evaluate", str(out), str(data), "--wavelength", "1.5406", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 3 and len(metrics["files"]) == 3
    assert metrics["files"][0]["truth"] == ["TiO2"]
    assert 0.0 <= metrics["exact_accuracy"] <= 1.0 and "fraction_mae_points" in metrics


@needs_data
def test_stop_keeps_a_usable_model(library: Library, tmp_path: Path) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def on_epoch(record: object) -> None:
        seen.append(1)
        stop.set()

    assert library.path is not None
    config = XrdTrainConfig(epochs=5, patterns_per_epoch=256, batch_size=64, validation_patterns=64)
    result = train_xrd(library.path, config, tmp_path / "run", stop_event=stop, on_epoch=on_epoch)
    assert result.stopped and len(result.history) == 1
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_unusable_sources_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UnusableInputError):
        train_xrd(tmp_path, XrdTrainConfig(), tmp_path / "run")
    assert main(["train", str(tmp_path), "--domain", "xrd", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "library" in err
    assert main(["predict", str(tmp_path), "x.xy", "--json"]) == 2


@needs_data
def test_label_key_maps_phase_names_to_formulas(library: Library) -> None:
    assert label_key("1530150", library) == "TiO2" == label_key("1010942", library)
    assert label_key("TiO2_136") == "TiO2"
    with pytest.raises(FormulaError):
        resolve_label("ZnO", library)


def test_formula_labels_match_a_library_phase_stored_without_hydrogen(tmp_path: Path) -> None:
    from labeltune.core.xrd.library import Phase

    def phase(name: str, formula: str) -> Phase:
        return Phase(name, formula, "P 1", 1, (4, 4, 4, 90, 90, 90), 64.0, 3.0, 1, "x.cif", 1.0, 1.0, 1.0)

    library = Library(1.5406, (10.0, 100.0), [phase("La(OH)3_176", "LaO3"), phase("TiO2_141", "TiO2")])
    assert resolve_label("La(OH)3", library) == [0]
    assert label_key("La(OH)3", library) == label_key("La(OH)3_176", library) == "LaO3"
    assert resolve_label("TiO2", library) == [1]


@needs_data
def test_a_pattern_outside_the_library_range_is_reported_not_fatal(
    trained: tuple[Path, list[float]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    two_theta = np.linspace(110.0, 140.0, 600)
    far = _write_xy(tmp_path / "far.xy", two_theta, 0.1 + np.exp(-(((two_theta - 120) / 0.1) ** 2)))
    assert main(["predict", str(run), str(far), "--json", "--wavelength", "1.5406"]) == 2
    (row,) = json.loads(capsys.readouterr().out)
    assert row["path"] == str(far) and "range" in row["error"]


@needs_data
def test_the_fit_drops_a_wrong_call_and_adds_a_missed_phase(
    library: Library, trained: tuple[Path, list[float]], tmp_path: Path
) -> None:
    from labeltune.core.xrd.inference import load_xrd_model
    from labeltune.core.xrd.readers import read_pattern

    model = load_xrd_model(trained[0])
    cfg = SimulationConfig(two_theta_min=20.0, two_theta_max=70.0, points=2501, max_counts=(5e4, 5e4),
                           impurity_probability=0.0, monochromatic=True)  # fmt: skip
    batch = simulate(library, 1, cfg, seed=7, composition={"1000017": 0.6, "9012601": 0.4})
    pattern = read_pattern(
        _write_xy(tmp_path / "mix.xy", batch.two_theta, batch.x[0]), default_wavelength=1.5406
    )
    names = model.names
    x = np.zeros(len(model.grid), dtype=np.float32)
    logits = np.zeros(len(names), dtype=np.float32)
    # the network (as if) sure of corundum and fluorite (absent), unsure of quartz (present, p = 0.3)
    probs = np.full(len(names), 0.001)
    probs[names.index("1000017")] = 0.99
    probs[names.index("1000043")] = 0.95
    probs[names.index("9012601")] = 0.3
    prediction = model._decide(pattern, x, probs, logits, fit=True, activation=False)
    assert {p.name for p in prediction.phases} == {"1000017", "9012601"}
    assert any("1000043" in w and "dropped" in w for w in prediction.warnings)
    assert any("9012601 added by the fit" in w for w in prediction.warnings)
    fractions = {p.name: p.fraction for p in prediction.phases}
    assert fractions["1000017"] == pytest.approx(0.6, abs=0.05)
    assert {"1000017", "9012601"} in [set(a.phases) for a in prediction.alternatives[:2]]
    stopped = threading.Event()
    stopped.set()  # Stop reaches the fits (the decision's and the competing sets')
    with pytest.raises(StoppedError):
        model._decide(pattern, x, probs, logits, fit=True, activation=False, stop_event=stopped)


@needs_data
def test_train_on_a_simulated_data_folder(
    library: Library, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert library.path is not None
    data = tmp_path / "sim"
    assert main(["xrd", "simulate", str(library.path), "--n", "300", "--seed", "1", "--out", str(data)]) == 0
    capsys.readouterr()
    code = main(
        ["train", str(data), "--epochs", "2", "--out", str(tmp_path / "run"), "--json"]
    )  # auto domain
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["domain"] == "xrd" and summary["epochs"] == 2 and summary["phases"] == len(library.phases)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["source_kind"] == "simulated" and config["grid"]["points"] == 4501


@needs_data
def test_cli_explains_xrd_mix_ups(
    library: Library, trained: tuple[Path, list[float]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert library.path is not None
    xy = _write_xy(tmp_path / "p.xy", np.linspace(20, 70, 2501), np.ones(2501))
    assert main(["predict", str(library.path), str(xy)]) == 2  # a library where a model belongs
    assert "reference library, not a trained model" in capsys.readouterr().err
    data = tmp_path / "labeled"
    data.mkdir()
    (data / "p.xy").write_text(xy.read_text())
    (data / "labels.csv").write_text("path,phases\np.xy,Si02\n")  # a zero for an O
    assert main(["evaluate", str(trained[0]), str(data), "--wavelength", "1.5406"]) == 2
    assert "Si02" in capsys.readouterr().err
    (data / "labels.csv").write_text("path,phases,fractions\np.xy,TiO2;SiO2,70;50\n")
    with pytest.raises(UnusableInputError, match="sum to 1"):
        read_labels_csv(data)


def test_class_activation_survives_zero_intensity() -> None:
    torch.manual_seed(1)
    net = XrdNet(XrdNetConfig(n_phases=2, points=900, channels=(4, 4, 4, 4, 4)))
    x = torch.zeros(900)
    x[100:200] = 0.3  # zero-filled ends and a background-subtracted baseline: d sqrt(x)/dx is infinite at 0
    x[420:430] = 1.0
    cams = class_activation(net, x, [0, 1])
    assert torch.isfinite(cams).all()
    assert cams.max() > 0  # not wiped out by NaN gradients
