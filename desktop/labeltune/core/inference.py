"""Using a trained run: predict files with top-k probabilities, evaluate on labeled data, sort files.

Probabilities are calibrated (softmax of the logits over the run's fitted temperature), and every
prediction carries an ``ood_score`` — above 1 the input is ``unfamiliar``, unlike the images the model was
trained on (core/familiarity.py). Runs made before either existed predict with temperature 1 and no score.
"""

from __future__ import annotations

import csv
import functools
import io
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from labeltune.core.atomic import write_atomic
from labeltune.core.datasets import Dataset, SkippedFile, scan_folder
from labeltune.core.errors import ImageDecodeError, LabelTuneError, UnusableInputError
from labeltune.core.features import images_to_tensor
from labeltune.core.file_problems import name_problem, not_image_type_reason, shown_path, storage_error
from labeltune.core.imaging import is_image_file, load_array
from labeltune.core.metrics import classification_metrics, top_k
from labeltune.core.model import load_model
from labeltune.core.progress import Progress, ProgressCallback, check_stop, no_progress
from labeltune.core.untrusted import folder_name

UNFAMILIAR_FOLDER = "unfamiliar"
UNCERTAIN_FOLDER = "uncertain"


@dataclass
class Prediction:
    """The model's answer for one file."""

    path: Path
    label: str
    confidence: float
    top: list[tuple[str, float]]
    #: How unlike the training images this one is (above 1: unfamiliar); ``None`` for older runs.
    ood_score: float | None = None
    #: Calibrated probability of every class, in the run's class order (not compared: arrays).
    probabilities: np.ndarray | None = field(default=None, compare=False, repr=False)
    #: The pooled features the head read (only with ``predict_files(..., keep_features=True)``).
    features: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def unfamiliar(self) -> bool:
        """Whether the input is unlike the training data (its prediction deserves less trust)."""
        return self.ood_score is not None and self.ood_score > 1.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": str(self.path),
            "predicted": self.label,
            "label": self.label,  # the same; kept for scripts written before "predicted"
            "confidence": round(self.confidence, 6),
            "top_k": [{"label": lab, "probability": round(p, 6)} for lab, p in self.top],
            "ood_score": None if self.ood_score is None else round(self.ood_score, 4),
            "unfamiliar": self.unfamiliar if self.ood_score is not None else None,
        }


def collect_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Expand files and folders (recursively) into image paths; report what is not an image.

    A project folder stands for its samples (labeled and unlabeled), not for everything under it: its
    thumbnail cache, database and runs are not inputs.
    """
    from labeltune.core.datasets import PROJECT_FILE, scan_project

    paths: list[Path] = []
    skipped: list[SkippedFile] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir() and (path / PROJECT_FILE).is_file():
            project = scan_project(path.resolve())
            paths.extend(s.path for s in project.samples)
            skipped.extend(project.skipped)
        elif path.is_dir():
            found = scan_folder(path.resolve(), check=False)
            paths.extend(s.path for s in found.samples)
            skipped.extend(found.skipped)
        elif path.is_file():
            problem = name_problem(path) or (None if is_image_file(path) else not_image_type_reason(path))
            if problem is None:
                paths.append(path.resolve())
            else:
                skipped.append(SkippedFile(shown_path(path), problem))
        else:
            raise UnusableInputError(f"{path} does not exist")
    return paths, skipped


def predict_files(
    run_dir: Path | str,
    paths: Sequence[Path],
    k: int = 3,
    batch_size: int = 32,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    keep_features: bool = False,
) -> tuple[list[Prediction], list[SkippedFile]]:
    """Predict ``paths`` with the run's model; unreadable files are returned as skipped.

    Each prediction carries every class's probability; with ``keep_features`` also the pooled features
    the head read (what label-next and the data map compare items by). All of them in memory: for a
    large folder use :func:`iter_predictions`.
    """
    predictions: list[Prediction] = []
    skipped: list[SkippedFile] = []
    for batch, bad in iter_predictions(
        run_dir, paths, k, batch_size, device, progress, stop_event, keep_features
    ):
        predictions.extend(batch)
        skipped.extend(bad)
    return predictions, skipped


def iter_predictions(
    run_dir: Path | str,
    paths: Sequence[Path],
    k: int = 3,
    batch_size: int = 32,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
    keep_features: bool = False,
) -> Iterator[tuple[list[Prediction], list[SkippedFile]]]:
    """Predict ``paths`` a batch at a time: ``(predictions, skipped)`` per batch, in input order.

    The next batch is decoded in a background thread while the device runs this one, and no more than
    two batches of images exist at once (core/predict_stream.py): memory does not grow with the number
    of files.
    """
    import torch

    from labeltune.core.device import inference_precision, memory_format, select_device
    from labeltune.core.familiarity import Familiarity
    from labeltune.core.predict_stream import batches, prefetched
    from labeltune.core.probes import probed_classifier

    dev = select_device(device)
    try:
        model, config = load_model(run_dir, dev)
        familiarity = Familiarity.load(Path(run_dir))
    except LabelTuneError:
        raise
    except Exception as exc:  # damaged config.json / model.safetensors (SafetensorError, KeyError, ...)
        raise UnusableInputError(f"cannot load the model of {run_dir}: {type(exc).__name__}: {exc}") from None
    model.to(memory_format=memory_format(dev))
    probed = probed_classifier(model, config.backbone) if familiarity is not None else None
    k = max(1, min(k, len(config.classes)))
    done = 0

    def decode(chunk: Sequence[Path]) -> tuple[list[np.ndarray], list[Path], list[SkippedFile]]:
        arrays, kept, bad = [], [], []
        for path in chunk:
            try:
                arrays.append(load_array(path, config.input_size))
                kept.append(path)
            except ImageDecodeError as exc:
                bad.append(SkippedFile(str(path), str(exc)))
        return arrays, kept, bad

    for chunk, (arrays, kept, bad) in prefetched(batches(paths, batch_size), decode, stop_event):
        predictions: list[Prediction] = []
        if arrays:
            scores: list[float | None] = [None] * len(arrays)
            pooled = None
            with torch.inference_mode(), inference_precision(dev):
                x = images_to_tensor(arrays, dev)
                if probed is not None and familiarity is not None:
                    logits, pooled, stats = probed(x)
                    scores = list(familiarity_scores(familiarity, pooled.float().cpu(), stats.float().cpu()))
                elif keep_features:
                    m: Any = model
                    pooled = m.top(m.trunk(m.normalize(x)))
                    logits = m.head(pooled)
                else:
                    logits = model(x)
            probabilities = torch.softmax(logits.float() / config.temperature, 1).cpu().numpy()
            features = pooled.float().cpu().numpy() if keep_features and pooled is not None else None
            index, values = top_k(probabilities, k)
            for row, path in enumerate(kept):
                top = [
                    (config.classes[int(i)], float(v)) for i, v in zip(index[row], values[row], strict=True)
                ]
                predictions.append(
                    Prediction(
                        path,
                        top[0][0],
                        top[0][1],
                        top,
                        scores[row],
                        probabilities[row],
                        None if features is None else features[row],
                    )
                )
        done += len(chunk)
        progress(Progress("predict", done, len(paths)))
        yield predictions, bad


def predict_project(
    project_folder: Path | str,
    run_id: str,
    run_dir: Path | str,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> dict[str, Any]:
    """Predict every image of a project with one of its runs and store the predictions in the project.

    Labeled and unlabeled images alike, with calibrated confidence and ``ood_score``, so the app can show
    what the model says about each and mark the unfamiliar ones. Returns counts.
    """
    from labeltune.core.project import Project

    with Project.open(Path(project_folder)) as project:
        paths = [sample.path for sample in project.samples()]
    predictions, skipped = predict_files(
        run_dir, paths, k=3, device=device, progress=progress, stop_event=stop_event
    )
    with Project.open(Path(project_folder)) as project:
        stored = project.add_predictions(
            run_id, [(p.path, p.label, p.confidence, p.top, p.ood_score) for p in predictions]
        )
    return {
        "run_id": run_id,
        "predicted": stored,
        "unfamiliar": sum(p.unfamiliar for p in predictions),
        "skipped": [s.to_json() for s in skipped],
    }


def familiarity_scores(familiarity: Any, pooled: Any, stats: Any) -> list[float]:
    """``ood_score`` of each row from the pooled features and the probe statistics of an image model."""
    from labeltune.core.probes import CONTENT, PROBE_NAMES, split_probes

    dims = [familiarity.densities[name].means.shape[1] for name in PROBE_NAMES]
    arrays = {CONTENT: np.asarray(pooled, dtype=np.float32)}
    arrays.update(split_probes(np.asarray(stats, dtype=np.float32), dims))  # type: ignore[arg-type]
    return [float(v) for v in familiarity.score(arrays)]


def labeled_of_classes(data: Dataset, classes: Sequence[str]) -> tuple[list[Any], list[SkippedFile]]:
    """``data``'s labeled samples of ``classes``, and its skipped files plus those of other classes.

    Raises :class:`UnusableInputError` when no labeled sample is of the model's classes.
    """
    skipped = list(data.skipped)
    usable = []
    for sample in data.labeled:
        if sample.label in classes:
            usable.append(sample)
        else:
            skipped.append(SkippedFile(str(sample.path), f"class {sample.label!r} is unknown to this model"))
    if not usable:
        raise UnusableInputError(
            f"no labeled images of the model's classes ({', '.join(classes)}) in {data.root}"
        )
    return usable, skipped


def evaluate_run(
    run_dir: Path | str,
    data: Dataset,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    stop_event: threading.Event | None = None,
) -> dict[str, Any]:
    """Metrics of the run's model on ``data``'s labeled images (labels unknown to the model are skipped)."""
    import json

    from labeltune.core.model import CONFIG_FILE, MODEL_FILE
    from labeltune.core.run_schema import check_run_schema

    config_path = Path(run_dir) / CONFIG_FILE
    if not config_path.is_file() or not (Path(run_dir) / MODEL_FILE).is_file():
        raise UnusableInputError(f"{run_dir} is not a finished run (no {CONFIG_FILE} / {MODEL_FILE})")
    try:
        stored = json.loads(config_path.read_text(encoding="utf-8"))
        classes = list(stored["model"]["classes"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnusableInputError(f"cannot read the classes of the run in {run_dir}: {exc!r}") from None
    check_run_schema(run_dir, stored)
    usable, skipped = labeled_of_classes(data, classes)
    predictions, bad = predict_files(
        run_dir, [s.path for s in usable], 1, device=device, progress=progress, stop_event=stop_event
    )
    truth = {s.path: classes.index(s.label) for s in usable}  # type: ignore[arg-type]
    y_true = np.asarray([truth[p.path] for p in predictions], dtype=np.int64)
    y_pred = np.asarray([classes.index(p.label) for p in predictions], dtype=np.int64)
    metrics = classification_metrics(y_true, y_pred, classes)
    metrics["unfamiliar"] = unfamiliar_summary(predictions, y_true == y_pred)
    metrics["skipped"] = [s.to_json() for s in skipped + bad]
    metrics["seen_in_training"] = _count_training_overlap(Path(run_dir), [p.path for p in predictions])
    return metrics


def unfamiliar_summary(
    predictions: Sequence[Prediction], correct: np.ndarray | None = None
) -> dict[str, Any]:
    """How many predictions are unfamiliar, and (with ``correct``) the accuracy among those and the rest."""
    scored = [p for p in predictions if p.ood_score is not None]
    if not scored:
        return {"available": False, "note": "this run has no unfamiliar-input score (made before it existed)"}
    flags = np.asarray([p.unfamiliar for p in predictions])
    summary: dict[str, Any] = {
        "available": True,
        "count": int(flags.sum()),
        "share": round(float(flags.mean()), 4),
    }
    if correct is not None and len(correct) == len(flags):
        summary["accuracy_familiar"] = round(float(correct[~flags].mean()), 4) if (~flags).any() else None
        summary["accuracy_unfamiliar"] = round(float(correct[flags].mean()), 4) if flags.any() else None
    return summary


def _count_training_overlap(run_dir: Path, paths: Sequence[Path]) -> int:
    """How many of ``paths`` (by content) the run trained on: their metrics are optimistic."""
    from labeltune.core.hashing import file_sha256

    manifest = run_dir / "manifest.csv"
    if not manifest.is_file():
        return 0
    with open(manifest, newline="", encoding="utf-8") as handle:
        trained = {row["sha256"] for row in csv.DictReader(handle) if row["split"] == "train"}
    return sum(file_sha256(path) in trained for path in paths)


def write_predictions_csv(path: Path, predictions: Sequence[Prediction], k: int) -> None:
    """Write ``path,predicted,label,confidence,ood_score,unfamiliar`` and ``top<i>_label,top<i>_probability``.

    ``predicted`` is the model's answer (``label`` repeats it for scripts written before ``predicted``
    existed: it is not the true class). ``ood_score`` and ``unfamiliar`` are empty for runs made before the
    score existed.
    """
    header, rows = prediction_table(predictions, k)
    write_csv_atomic(path, header, rows)


def prediction_table(predictions: Sequence[Prediction], k: int) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of :func:`write_predictions_csv` (the app writes the same file)."""
    header = prediction_header(k)
    return header, [prediction_row(p, len(header)) for p in predictions]


def prediction_header(k: int) -> list[str]:
    """The columns of a predictions CSV with ``k`` top labels."""
    header = ["path", "predicted", "label", "confidence", "ood_score", "unfamiliar"]
    for i in range(1, k + 1):
        header += [f"top{i}_label", f"top{i}_probability"]
    return header


def prediction_row(p: Prediction, width: int) -> list[Any]:
    """One prediction as a row of :func:`prediction_header`'s ``width`` columns."""
    score = "" if p.ood_score is None else f"{p.ood_score:.4f}"
    flag = "" if p.ood_score is None else str(p.unfamiliar).lower()
    row: list[Any] = [str(p.path), p.label, p.label, f"{p.confidence:.6f}", score, flag]
    for label, prob in p.top[: (width - len(row)) // 2]:
        row += [label, f"{prob:.6f}"]
    return row + [""] * (width - len(row))


def write_csv_atomic(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a CSV whole or not at all: a reader, a crash or a Stop never leaves half of it."""
    from labeltune.core.atomic import write_text_atomic

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(Path(path), text.getvalue())


class Sortable(Protocol):
    """What :func:`sort_into` needs of an answer (an image :class:`Prediction` or an XRD phase set)."""

    @property
    def path(self) -> Path:
        """The input file."""

    @property
    def label(self) -> str:
        """The answer; the folder it is copied into when sure and familiar."""

    @property
    def confidence(self) -> float:
        """Calibrated confidence of the answer."""

    @property
    def unfamiliar(self) -> bool:
        """Whether the input is unlike the training data."""


def destination(answer: Sortable, min_confidence: float) -> str:
    """The folder an answer is sorted into: ``unfamiliar``, ``uncertain`` or its label as one folder name.

    The label comes from the run's ``config.json``: ``folder_name`` keeps ``../x`` or ``/x`` inside the
    output folder (ADR 0043).
    """
    if answer.unfamiliar:
        return UNFAMILIAR_FOLDER
    return folder_name(answer.label) if answer.confidence >= min_confidence else UNCERTAIN_FOLDER


def sort_into(
    predictions: Sequence[Sortable],
    out_dir: Path,
    min_confidence: float = 0.0,
    stop_event: threading.Event | None = None,
) -> dict[str, int]:
    """Copy files into ``out_dir/<class>/``; return counts per folder.

    Unfamiliar inputs go to ``unfamiliar/`` (the model's answer for them is not to be trusted, whatever its
    confidence), the rest below ``min_confidence`` (calibrated) to ``uncertain/``. With ``stop_event`` a Stop
    ends the copying between two files (the copies made stay).
    """
    counts: dict[str, int] = {}
    for p in predictions:
        check_stop(stop_event)
        folder = destination(p, min_confidence)
        target_dir = Path(out_dir) / folder
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, target_dir, "create") from exc
        target = target_dir / p.path.name
        n = 1
        while target.exists():  # never overwrite: two inputs may share a name
            target = target_dir / f"{p.path.stem}_{n}{p.path.suffix}"
            n += 1
        write_atomic(target, functools.partial(_copy_file, p.path))  # a full disk leaves no half copy
        counts[folder] = counts.get(folder, 0) + 1
    return counts


def _copy_file(source: Path, target: Path) -> None:
    shutil.copy2(source, target)
