"""The model card for people (``<out>.card.md``), rendered from the machine-readable card."""

from __future__ import annotations

import json
from typing import Any


def _md(text: Any) -> str:
    """Escape ``text`` for a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value) + "`"
    return str(value)


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(_fmt_value(c)) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _md_metrics(metrics: Any) -> list[str]:
    if metrics is None:
        return ["No metrics.json in the run.", ""]
    if not isinstance(metrics, dict):
        return ["```json", json.dumps(metrics, indent=2), "```", ""]
    lines: list[str] = []
    scalars = [[k, v] for k, v in metrics.items() if not isinstance(v, (dict, list))]
    if scalars:
        lines += _md_table(["metric", "value"], scalars)
    for key, value in metrics.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            columns: list[str] = []
            for entry in value.values():
                columns += [c for c in entry if c not in columns]
            lines += [f"**{_md(key)}**", ""]
            lines += _md_table(
                ["", *columns], [[name, *(v.get(c, "") for c in columns)] for name, v in value.items()]
            )
        elif isinstance(value, (dict, list)):
            lines += [f"**{_md(key)}**", "", "```json", json.dumps(value, indent=2), "```", ""]
    return lines


#: What each representation of the unfamiliar check looks at, for people reading the card.
REPRESENTATION_WORDS = {
    "content": "what the network sees in the image (the pooled features its last layer reads)",
    "early": "colour, brightness and sharpness (channel statistics of an early layer)",
    "mid": "textures and backgrounds (channel statistics of a middle layer)",
}


def _md_reliability(card: dict[str, Any]) -> list[str]:
    """The card's sections on calibrated confidence and unfamiliar inputs, in plain words."""
    calibration = card.get("calibration") or {}
    report = calibration.get("report") or {}
    temperature = float(calibration.get("temperature", 1.0))
    lines = ["## Confidence", ""]
    if report.get("n"):
        direction = (
            "was under-confident, so its scores are sharpened"
            if temperature < 1
            else "was over-confident, so its scores are softened"
        )
        lines.append(
            "`probabilities` are calibrated on the run's validation images: an answer given with 80 % "
            "confidence is right about 80 times in 100 on images like them. The raw network "
            f"{direction} (probabilities = softmax(logits / T), T = {temperature:.4g})."
        )
        lines.append(
            "The expected calibration error — the average gap between the confidence and how often the "
            f"answer is right — fell from {100 * report['ece_before']:.1f} % "
            f"to {100 * report['ece_after']:.1f} % "
            + (
                "(measured cross-fitted: each part of the validation images scored with a temperature "
                "fitted on the others)."
                if report.get("cross_fitted")
                else "(measured on the same few images the temperature was fitted on: optimistic)."
            )
        )
    else:
        lines.append(
            f"`probabilities` = softmax(logits / {temperature:.4g}); the run had no validation images to "
            "calibrate them on."
        )
    lines += ["", "## Unfamiliar inputs", ""]
    unfamiliar = card.get("unfamiliar")
    if not unfamiliar:
        lines += ["This run has no unfamiliar-input score (made before LabelTune had one).", ""]
        return lines
    info = unfamiliar.get("report") or {}
    lines.append(
        f"`{unfamiliar['output']}` measures how unlike the training images an input is; above "
        f"{unfamiliar['unfamiliar_when_above']:g} the input is **unfamiliar** and the model's answer "
        "deserves little trust, whatever its confidence. The threshold is set so that about "
        f"{unfamiliar['false_alarm_target']:.0%} of images like the training ones are flagged"
        + (
            f" (on the validation images: {info['val_unfamiliar_rate']:.1%})."
            if info.get("val_unfamiliar_rate") is not None
            else "."
        )
        + " It compares each input with the training images in three ways and flags it when any of them "
        "is far off:"
    )
    lines.append("")
    lines += [
        f"- {REPRESENTATION_WORDS.get(name, name)}: {v['dims']} numbers, described by their "
        f"{v['components']} main directions of variation"
        for name, v in unfamiliar["representations"].items()
    ]
    lines.append("")
    return lines


def render_card_markdown(card: dict[str, Any]) -> str:
    """Return the human-readable model card (Markdown) for a card from :func:`build_card`."""
    file, inp, norm, verify = card["file"], card["input"], card["normalization"], card["verification"]
    size = inp["size"]
    fmt_title = "ONNX" if file["format"] == "onnx" else "TorchScript"
    if "opset" in file:
        fmt_title += f" opset {file['opset']}"
    lines = [
        f"# Model card: {file['name']}",
        "",
        f"Exported by LabelTune {card['labeltune_version']} on {card['created']} from run `{card['run']}`.",
        "",
        *_md_table(
            ["", ""],
            [
                ["File", f"{file['name']} ({fmt_title}, {file['size_bytes']} bytes)"],
                ["SHA-256", file["sha256"]],
                ["Backbone", f"{card['backbone']['title']} ({card['backbone']['name']})"],
                ["Classes", card["num_classes"]],
                ["Exporter", file["exporter"]],
                [
                    "Verified",
                    f"max |logit difference| vs PyTorch = {verify['max_abs_diff_logits']:.3g} "
                    f"(tolerance {verify['tolerance']:.3g}, {verify['runtime']})",
                ],
            ],
        ),
        "## Classes (output order)",
        "",
        *_md_table(["index", "class"], [[i, name] for i, name in enumerate(card["classes"])]),
        "## Input",
        "",
        f"- Tensor `{inp['name']}`: {inp['dtype']}, shape N x 3 x {size} x {size} ({inp['layout']}), "
        f"channels {inp['channel_order']}, values in [0, 1]; any batch size N.",
        f"- Preprocessing `{inp['preprocessing']}`: {inp['resize']}",
        f"- Normalisation is **inside the model** (mean {norm['mean']}, std {norm['std']}, for "
        "information only): do not normalise the input again.",
        "",
        "## Outputs",
        "",
        *[
            f"- `{o['name']}`: {o['dtype']}, shape {' x '.join(str(d) for d in o['shape'])}; "
            f"{o['description']}."
            for o in card["outputs"]
        ],
        "",
        *_md_reliability(card),
        "## Metrics",
        "",
        *_md_metrics(card.get("metrics")),
        "## Training settings",
        "",
    ]
    train = card.get("training")
    if train:
        lines += _md_table(["setting", "value"], [[k, v] for k, v in train.items()])
    else:
        lines += ["No training settings recorded in config.json.", ""]
    lines += ["## Data", ""]
    data = card.get("data")
    if data:
        lines += [f"- `{data['manifest_file']}` SHA-256: `{data['manifest_sha256']}`"]
        if "images" in data:
            lines += [f"- Images: {data['images']}", ""]
            per_label = data.get("counts_per_split_and_label", {})
            labels = [name for name in card["classes"] if any(name in c for c in per_label.values())]
            for counts in per_label.values():
                labels += [name for name in counts if name not in labels]
            rows = [
                [split, total, *(per_label.get(split, {}).get(name, 0) for name in labels)]
                for split, total in data["counts_per_split"].items()
            ]
            lines += _md_table(["split", "images", *labels], rows)
        else:
            lines += [""]
    else:
        lines += ["No manifest.csv in the run.", ""]
    return "\n".join(lines).rstrip() + "\n"
