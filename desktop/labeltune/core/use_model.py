"""Using a trained run on a folder, for both domains: predict, write a CSV, sort copies into folders.

One domain-neutral path (:func:`predict_folder`): a domain adapter turns the run's predictions into
:class:`Answer` rows (a label, a calibrated confidence, the *unfamiliar* mark) and CSV rows; the rest —
the CSV written whole or not at all, copies sorted into ``<label>/``, ``uncertain/`` and ``unfamiliar/``
(:func:`labeltune.core.inference.sort_into`), the counts — is shared.

* Image runs: the class, its calibrated probability, ``unfamiliar`` from the run's familiarity score
  (:func:`labeltune.core.inference.predict_files`; the CSV is ``labeltune predict --out``'s).
* XRD runs: the label is the ``;``-joined phase set, the confidence the lowest probability among its phases
  (a set is only as sure as its least sure phase) and *unfamiliar* means no library phase was recognised;
  the CSV counts the significant peaks the phases leave unexplained (ADR 0031).

The app's *Predict a folder…* runs this in a worker; nothing here imports torch before it is called.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import ProgressCallback, check_stop, no_progress

XRD_NO_PHASE = "no phase"
"""The label of a pattern in which no library phase was recognised (it is sorted into ``unfamiliar/``)."""


@dataclass(frozen=True)
class Answer:
    """The model's answer for one file, in the terms sorting and the summary need (both domains)."""

    path: Path
    label: str
    confidence: float
    unfamiliar: bool


@dataclass
class FolderPrediction:
    """What :func:`predict_folder` did: counts per destination folder, skipped files, files written."""

    domain: str
    predicted: int
    counts: dict[str, int]
    """Answers per folder they belong in (a label, ``uncertain`` or ``unfamiliar``), copied or not."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of the files that could not be predicted."""
    csv_path: Path | None = None
    sort_dir: Path | None = None
    copied: int = 0

    @property
    def output_folder(self) -> Path | None:
        """The folder to show the user: the sorted copies, else the CSV's folder."""
        if self.sort_dir is not None:
            return self.sort_dir
        return None if self.csv_path is None else self.csv_path.parent

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "domain": self.domain,
            "predicted": self.predicted,
            "counts": dict(self.counts),
            "skipped": [{"path": path, "error": why} for path, why in self.skipped],
            "csv": None if self.csv_path is None else str(self.csv_path),
            "sorted_into": None if self.sort_dir is None else str(self.sort_dir),
            "copied": self.copied,
        }


@dataclass
class _Predicted:
    """An adapter's output: the answers, the CSV, the files it could not read."""

    answers: list[Answer]
    header: list[str]
    rows: list[list[Any]]
    skipped: list[tuple[str, str]]


def predict_folder(
    run_dir: Path | str,
    inputs: Sequence[Path | str],
    *,
    csv_path: Path | str | None = None,
    sort_dir: Path | str | None = None,
    min_confidence: float = 0.5,
    wavelength: float | None = None,
    fit: bool = True,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> FolderPrediction:
    """Predict the files of ``inputs`` (folders recursively) with the run; write and sort as asked.

    ``wavelength`` (Å, XRD runs) is used for pattern files that do not state theirs; without it they are
    skipped with that reason; ``fit=False`` skips their least-squares refinement (network answers only).

    The CSV is written only once every file is predicted, whole (temporary file, then renamed): a Stop
    (:class:`~labeltune.core.progress.StoppedError`) leaves no CSV, or the previous one untouched. Copies
    are never written over existing files. Raises :class:`UnusableInputError` for a bad threshold, a
    missing input or a run that cannot be loaded.
    """
    from labeltune.core.file_problems import storage_error
    from labeltune.core.inference import destination, sort_into, write_csv_atomic
    from labeltune.core.xrd.inference import is_xrd_run

    if not 0.0 <= min_confidence <= 1.0:
        raise UnusableInputError("the uncertain threshold must be between 0 and 1")
    xrd = is_xrd_run(run_dir)
    if xrd:
        predicted = _predict_xrd(Path(run_dir), inputs, wavelength, fit, progress, stop_event)
    else:
        predicted = _predict_images(Path(run_dir), inputs, device, progress, stop_event)
    check_stop(stop_event)
    out_csv = None if csv_path is None else Path(csv_path)
    if out_csv is not None:
        try:
            out_csv.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # disk full, read-only, folder gone: one line naming it (ADR 0042)
            raise storage_error(exc, out_csv.parent, "create") from exc
        write_csv_atomic(out_csv, predicted.header, predicted.rows)
    out_dir = None if sort_dir is None else Path(sort_dir)
    copied = 0
    if out_dir is not None:
        copied = sum(sort_into(predicted.answers, out_dir, min_confidence, stop_event).values())
    counts = Counter(destination(answer, min_confidence) for answer in predicted.answers)
    return FolderPrediction(
        domain="xrd" if xrd else "image",
        predicted=len(predicted.answers),
        counts=dict(sorted(counts.items())),
        skipped=predicted.skipped,
        csv_path=out_csv,
        sort_dir=out_dir,
        copied=copied,
    )


def _predict_images(
    run_dir: Path,
    inputs: Sequence[Path | str],
    device: str,
    progress: ProgressCallback,
    stop_event: threading.Event | None,
) -> _Predicted:
    from labeltune.core import inference

    paths, skipped = inference.collect_inputs(inputs)
    predictions, bad = inference.predict_files(
        run_dir, paths, 3, device=device, progress=progress, stop_event=stop_event
    )
    k = max((len(p.top) for p in predictions), default=1)
    header, rows = inference.prediction_table(predictions, k)
    answers = [Answer(p.path, p.label, p.confidence, p.unfamiliar) for p in predictions]
    return _Predicted(answers, header, rows, [(s.path, s.reason) for s in skipped + bad])


def _predict_xrd(
    run_dir: Path,
    inputs: Sequence[Path | str],
    wavelength: float | None,
    fit: bool,
    progress: ProgressCallback,
    stop_event: threading.Event | None,
) -> _Predicted:
    from labeltune.core.xrd.inference import predict_patterns
    from labeltune.core.xrd.pattern_files import collect_patterns

    paths, skipped = collect_patterns(inputs)
    predictions, bad = predict_patterns(
        run_dir, paths, default_wavelength=wavelength, fit=fit, progress=progress, stop_event=stop_event
    )
    answers, header, rows = xrd_table(predictions)
    return _Predicted(answers, header, rows, skipped + bad)


def xrd_table(predictions: Sequence[Any]) -> tuple[list[Answer], list[str], list[list[Any]]]:
    """XRD predictions as answers (to sort) and CSV header and rows (see the module docstring)."""
    header = ["path", "predicted", "confidence", "unfamiliar", "fractions", "residual", "unexplained_peaks"]
    answers, rows = [], []
    for p in predictions:
        names = [call.name for call in p.phases]
        label = ";".join(names) or XRD_NO_PHASE
        confidence = min((call.probability for call in p.phases), default=0.0)
        unfamiliar = not names
        answers.append(Answer(Path(p.path), _folder_safe(label), confidence, unfamiliar))
        fractions = ";".join("" if c.fraction is None else f"{c.fraction:.4f}" for c in p.phases)
        residual = "" if p.residual is None else f"{p.residual:.4f}"
        flag = str(unfamiliar).lower()
        rows.append([p.path, label, f"{confidence:.6f}", flag, fractions, residual, len(p.unexplained_peaks)])
    return answers, header, rows


def _folder_safe(label: str) -> str:
    """A label usable as one folder name (phase names may hold ``/`` or ``:``)."""
    return "".join("_" if ch in '/\\:*?"<>|' else ch for ch in label).strip(" .") or "_"
