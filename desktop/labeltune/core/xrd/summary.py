"""The summary table of a batch of XRD predictions: one CSV row per pattern, as a lab reads a sample series.

``labeltune predict XRD_RUN FOLDER --out series.csv`` writes it (``--out x.json`` keeps the full JSON):
file, phases, weight fractions with their esd (in wt %), with an internal standard the absolute fractions
and the amorphous content,
Rwp, zero shift and warnings; a file that could not be used is a row with its reason in ``error``.
Fields a prediction does not have are left empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SUMMARY_HEADER = [
    "file",
    "phases",
    "fractions_wt_pct",
    "fraction_esd_wt_pct",
    "absolute_wt_pct",
    "amorphous_wt_pct",
    "amorphous_esd_wt_pct",
    "rwp_pct",
    "zero_shift_deg",
    "warnings",
    "error",
]


def _pct(value: Any) -> str:
    return "" if value is None else f"{float(value) * 100:.2f}"


def summary_row(result: dict[str, Any]) -> list[str]:
    """One ``predict --json`` object (or ``{"path", "error"}``) as a row of :data:`SUMMARY_HEADER`."""
    if "error" in result and "phases" not in result:
        return [str(result["path"])] + [""] * (len(SUMMARY_HEADER) - 2) + [str(result["error"])]
    phases = result.get("phases", [])
    amorphous = result.get("amorphous")

    def column(key: str) -> str:
        return ";".join(_pct(p.get(key)) for p in phases) if any(key in p for p in phases) else ""

    shift = result.get("zero_shift")
    return [
        str(result["path"]),
        ";".join(str(p["name"]) for p in phases),
        column("fraction"),
        column("fraction_esd"),
        column("absolute_fraction"),
        _pct(amorphous),
        _pct(result.get("amorphous_esd")),
        _pct(result.get("residual")),
        "" if shift is None else f"{float(shift):+.4f}",
        " | ".join(str(w) for w in result.get("warnings", [])),
        "",
    ]


def summary_rows(results: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Rows of :data:`SUMMARY_HEADER`, one per result, in the order given."""
    return [summary_row(r) for r in results]
