"""The gallery's item model: one row per sample of the current filter, thumbnails filled in as they arrive.

Rows come from one SQL query (:meth:`Project.rows`), kept as a plain list in the chosen order (file name,
in natural order so ``fish_2`` comes before ``fish_10``; folder and file name; or the order the images
were added) and found again by binary search on that order, so ``data()`` never touches the disk or the
database: a missing thumbnail is requested from the
:class:`~labeltune.ui.thumbnails.ThumbnailLoader` and a placeholder shown until it arrives.  Decoded
thumbnails are kept in a small LRU cache bounded in bytes.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Slot
from PySide6.QtGui import QImage

from labeltune.core.audit_store import AuditFindings
from labeltune.core.project import Project
from labeltune.ui.gallery_filters import (
    AUDIT_FILTERS,
    PATH_FILTERS,
    PREDICTION_ORDERS,
    SORT_ORDERS,
    GalleryFilter,
    Prediction,
    Row,
    SortOrder,
    passes,
    read_split_paths,
    row_key,
)
from labeltune.ui.thumbnails import ThumbnailLoader

__all__ = [  # the filters and orders are gallery_filters.py's; importers find them here too
    "PREDICTION_ORDERS",
    "SORT_ORDERS",
    "GalleryFilter",
    "GalleryModel",
    "read_split_paths",
]

ThumbnailState = Literal["loading", "ready", "failed"]
Index = QModelIndex | QPersistentModelIndex

SAMPLE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
LABEL_ROLE = Qt.ItemDataRole.UserRole + 3
CLASS_INDEX_ROLE = Qt.ItemDataRole.UserRole + 4  # position of the label in the class list, -1: none
THUMBNAIL_STATE_ROLE = Qt.ItemDataRole.UserRole + 5  # "loading", "ready" or "failed"
THUMBNAIL_ERROR_ROLE = Qt.ItemDataRole.UserRole + 6
#: ``(label, confidence, ood_score)`` the newest checked run gave the sample, or ``None``.
PREDICTION_ROLE = Qt.ItemDataRole.UserRole + 7
UNFAMILIAR_ROLE = Qt.ItemDataRole.UserRole + 8  # bool: unlike the images that run was trained on
EXCLUDED_ROLE = Qt.ItemDataRole.UserRole + 9  # bool: left out of training (key X)
BULK_UPDATE = 1_000
"""More changed labels than this reload the rows (one reset) instead of updating them one by one."""


class GalleryModel(QAbstractListModel):
    """Samples of the open project under a :class:`GalleryFilter`, with lazily made thumbnails."""

    def __init__(
        self, loader: ThumbnailLoader | None = None, image_budget_mb: int = 64, parent: QObject | None = None
    ) -> None:
        """Show thumbnails from ``loader``; keep at most ``image_budget_mb`` of them in memory."""
        super().__init__(parent)
        self._project: Project | None = None
        self._filter = GalleryFilter()
        self._split_paths: frozenset[str] = frozenset()
        self._queue_rank: dict[str, int] = {}  # the "next" filter's order: position of each path
        self._rows: list[Row] = []  # in self._order, so a row is found by binary search
        self._order: SortOrder = "name"
        self._keys: dict[int, tuple[Any, ...]] = {}  # order key of every sample seen (also filtered out)
        self._class_index: dict[str, int] = {}
        self._images: OrderedDict[int, QImage] = OrderedDict()
        self._image_bytes = 0
        self._image_budget = image_budget_mb * 2**20
        self._failed: dict[int, str] = {}
        self._predictions: dict[int, Prediction] = {}
        self._topk: dict[int, list[tuple[str, float]]] = {}
        self._excluded: set[int] = set()
        self._predicted_run: str | None = None
        self.findings: AuditFindings | None = None  # the newest stored audit (set_findings)
        self._placeholder = QImage()
        self._loader = loader
        if loader is not None:
            loader.loaded.connect(self._on_loader_loaded)
            loader.failed.connect(self._on_loader_failed)

    # -- contents -----------------------------------------------------------------------------------
    @property
    def filter(self) -> GalleryFilter:
        """The current filter."""
        return self._filter

    def set_project(self, project: Project | None) -> None:
        """Show ``project`` (or nothing), with the filter reset to all samples."""
        self._project = project
        self._filter = GalleryFilter()
        self._keys.clear()  # another project's (or the audit order's) keys, under the same sample ids
        self._split_paths = frozenset()
        self._images.clear()
        self._image_bytes = 0
        self._failed.clear()
        if self._loader is not None:
            self._loader.clear()
        self.update_classes()
        self._predictions, self._topk, self._predicted_run = {}, {}, None
        self.findings = None
        self._excluded = project.excluded_ids() if project is not None and not project.closed else set()
        # the predictions before the rows: the reset makes the first row current, and the large view
        # and the top-k bars read its prediction then (they showed none for it)
        self.load_predictions()
        self.reload()

    @property
    def order(self) -> SortOrder:
        """The order rows are shown in."""
        return self._order

    def set_order(self, order: SortOrder) -> None:
        """Show the rows sorted by file name, folder and file name, or in the order they were added."""
        if order not in SORT_ORDERS:
            raise ValueError(f"unknown sort order {order!r}")
        if order != self._order:
            self._order = order
            self._keys.clear()
            self.reload()

    def set_filter(self, gallery_filter: GalleryFilter, split_paths: Iterable[str] = ()) -> None:
        """Show only the samples ``gallery_filter`` lets through (split, cell: those in ``split_paths``).

        The label-next queue (``next``) shows its ``split_paths`` in their given order, whatever the sort;
        the audit's filters show what it found in its order.
        """
        own_order = {"next", *AUDIT_FILTERS}
        if gallery_filter.kind in own_order or self._filter.kind in own_order:
            self._keys.clear()  # the queue's or the audit's order replaces the chosen one, and back
        self._filter = gallery_filter
        paths = [os.path.normpath(path) for path in split_paths]
        self._split_paths = frozenset(paths)
        self._queue_rank = {path: i for i, path in enumerate(paths)} if gallery_filter.kind == "next" else {}
        self.reload()

    def set_findings(self, findings: AuditFindings | None) -> None:
        """Take the newest stored audit (the filters *Likely label errors* and *Near-duplicates*)."""
        self.findings = findings
        if self._filter.kind in AUDIT_FILTERS:
            self.reload()

    def reload(self) -> None:
        """Query the rows again (after bulk changes: class renamed, samples imported)."""
        self.beginResetModel()
        if self._order in PREDICTION_ORDERS or self._filter.kind in AUDIT_FILTERS:
            self._keys.clear()  # labels, predictions and audits move rows: fresh keys
        self._rows = self._query()
        self.endResetModel()

    def load_predictions(self, run_id: str | None = None) -> None:
        """Read the predictions of run ``run_id`` if it has stored ones, else of the newest checked run.

        Called on opening, when a check stored new ones and when the drill-down shows another run's
        answers. Not part of :meth:`reload`: filters and label changes reload the rows often, the
        predictions change only when a check finishes (one query over every sample of a large project).
        """
        project = self._project
        if project is None or project.closed:
            self._predictions, self._topk, self._predicted_run = {}, {}, None
        else:
            wanted = run_id is not None and project.has_predictions(run_id)
            self._predicted_run = run = run_id if wanted else project.latest_predicted_run()
            self._predictions = project.prediction_map(run) if run else {}
            self._topk = project.prediction_topk(run) if run else {}
        if self._filter.kind in ("unfamiliar", "predicted", "correct", "incorrect") or (
            self._order in PREDICTION_ORDERS
        ):
            self.reload()
        elif self._rows:
            roles = [PREDICTION_ROLE, UNFAMILIAR_ROLE, Qt.ItemDataRole.ToolTipRole]
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1), roles)

    def _query(self) -> list[Row]:
        project = self._project
        if project is None or project.closed:
            return []
        kind = self._filter.kind
        rows = project.rows(
            label=self._filter.value if kind == "class" else None, unlabeled_only=kind == "unlabeled"
        )
        if kind in PATH_FILTERS:
            wanted = self._split_paths
            rows = [row for row in rows if os.path.normpath(row[1]) in wanted]
        elif kind in AUDIT_FILTERS:
            findings = self.findings
            rows = [row for row in rows if findings is not None and findings.keeps(kind, row[1], row[2])]
        elif kind not in ("all", "class", "unlabeled"):
            rows = [row for row in rows if self._passes(row)]
        return sorted(rows, key=self._key)

    def _passes(self, row: Row) -> bool:
        return passes(self._filter, row, self._predictions, self._excluded)

    def _key(self, row: Row) -> tuple[Any, ...]:
        key = self._keys.get(row[0])
        if key is None:
            if self._queue_rank:
                key = (self._queue_rank.get(os.path.normpath(row[1]), len(self._queue_rank)), row[0])
            elif self._filter.kind in AUDIT_FILTERS and self.findings is not None:
                key = (*self.findings.rank(self._filter.kind, row[1]), row[0])
            else:
                key = row_key(self._order, row, self._topk.get(row[0]))
            self._keys[row[0]] = key
        return key

    @property
    def predicted_run(self) -> str | None:
        """The run whose stored predictions are shown (the newest checked one), or ``None``."""
        return self._predicted_run

    def prediction(self, sample_id: int) -> Prediction | None:
        """``(label, confidence, ood_score)`` of a sample from the newest checked run, or ``None``."""
        return self._predictions.get(sample_id)

    def topk(self, sample_id: int) -> list[tuple[str, float]]:
        """The newest checked run's best classes for a sample with their probabilities (empty: none)."""
        return list(self._topk.get(sample_id, []))

    def is_excluded(self, sample_id: int) -> bool:
        """Whether the sample is left out of training."""
        return sample_id in self._excluded

    def excluded_count(self) -> int:
        """How many samples are left out of training."""
        return len(self._excluded)

    def update_excluded(self, sample_ids: Sequence[int]) -> None:
        """Take the excluded flags of ``sample_ids`` from the project again (after X)."""
        project = self._project
        if project is None or project.closed:
            return
        self._excluded = project.excluded_ids()
        if self._filter.kind == "excluded":
            self.reload()
            return
        if len(sample_ids) > BULK_UPDATE and self._rows:  # one signal for a big selection
            roles = [EXCLUDED_ROLE, Qt.ItemDataRole.ToolTipRole]
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1), roles)
            return
        for sample_id in sample_ids:
            row = self.row_of(sample_id)
            if row >= 0:
                index = self.index(row)
                self.dataChanged.emit(index, index, [EXCLUDED_ROLE, Qt.ItemDataRole.ToolTipRole])

    def is_unfamiliar(self, sample_id: int) -> bool:
        """Whether the newest checked run found the sample unlike its training images."""
        found = self._predictions.get(sample_id)
        return found is not None and found[2] is not None and found[2] > 1.0

    def unfamiliar_count(self) -> int:
        """How many samples the newest checked run found unfamiliar."""
        return sum(1 for _label, _conf, ood in self._predictions.values() if ood is not None and ood > 1.0)

    def update_classes(self) -> None:
        """Take the project's class order (badges show the hotkey and colour of each class)."""
        classes = self._project.classes if self._project is not None else []
        self._class_index = {name: i for i, name in enumerate(classes)}
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1), [CLASS_INDEX_ROLE])

    def update_labels(self, sample_ids: Sequence[int]) -> None:
        """Take new labels of ``sample_ids`` (empty: of everything); rows leave or join the filter."""
        project = self._project
        if not sample_ids or project is None or len(sample_ids) > BULK_UPDATE:
            self.reload()  # a big selection labeled at once: one reset, not a signal per row (ADR 0039)
            return
        for new in project.rows(ids=sample_ids):
            row = self.row_of(new[0])
            belongs = self._filter.matches(new[2]) and (
                self._filter.kind not in ("correct", "incorrect") or self._passes(new)
            )
            if self._filter.kind in AUDIT_FILTERS:  # a fixed label error leaves its list
                belongs = self.findings is not None and self.findings.keeps(self._filter.kind, new[1], new[2])
            if row >= 0 and belongs:
                self._rows[row] = new
                index = self.index(row)
                self.dataChanged.emit(
                    index, index, [LABEL_ROLE, CLASS_INDEX_ROLE, Qt.ItemDataRole.ToolTipRole]
                )
            elif row >= 0:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
            elif belongs and self._filter.kind not in PATH_FILTERS:  # e.g. an undo brings it back
                self._key(new)
                row = self.insertion_row(new[0])
                self.beginInsertRows(QModelIndex(), row, row)
                self._rows.insert(row, new)
                self.endInsertRows()

    # -- lookups ------------------------------------------------------------------------------------
    def row_of(self, sample_id: int) -> int:
        """Row of a sample, or -1 if the filter hides it (a binary search)."""
        key = self._keys.get(sample_id)
        if key is None:
            return -1
        row = bisect_left(self._rows, key, key=self._key)
        return row if row < len(self._rows) and self._rows[row][0] == sample_id else -1

    def insertion_row(self, sample_id: int) -> int:
        """Row where ``sample_id`` is or would be (the end if it was never shown)."""
        key = self._keys.get(sample_id)
        return len(self._rows) if key is None else bisect_left(self._rows, key, key=self._key)

    def sample_id(self, row: int) -> int:
        """Sample id of a row."""
        return self._rows[row][0]

    def path(self, row: int) -> str:
        """Absolute file path of a row."""
        return self._rows[row][1]

    def label(self, row: int) -> str | None:
        """Current label of a row."""
        return self._rows[row][2]

    def next_unlabeled_row(self, start: int, skip: Iterable[int] = (), limit: int | None = None) -> int:
        """First row at or after ``start`` (wrapping round) whose sample is unlabeled; -1 if none.

        ``limit`` looks at that many rows at most.
        """
        skipped = set(skip).union(self._failed)  # an unreadable image is not offered for labeling
        rows = self._rows
        count = len(rows)
        for offset in range(count if limit is None else min(count, limit)):
            row = (start + offset) % count
            if rows[row][2] is None and rows[row][0] not in skipped:
                return row
        return -1

    def ids_in_rows(self, first: int, last: int) -> list[int]:
        """Sample ids of rows ``first`` to ``last`` (inclusive, clamped)."""
        return [row[0] for row in self._rows[max(0, first) : max(0, last + 1)]]

    def retain_thumbnail_requests(self, first: int, last: int) -> None:
        """Forget waiting thumbnail requests outside rows ``first``..``last`` (scrolled away)."""
        if self._loader is not None:
            self._loader.retain(set(self.ids_in_rows(first, last)))

    def thumbnail_bytes(self) -> int:
        """Memory held by decoded thumbnails (bounded by the budget given at construction)."""
        return self._image_bytes

    def unreadable_reason(self, sample_id: int) -> str | None:
        """Why a sample's file cannot be read now ("truncated JPEG ..."), or ``None`` if it could be read.

        Such a sample is shown with its reason but neither labeled nor offered as the next to label.
        """
        return self._failed.get(sample_id)

    def mark_unreadable(self, sample_id: int, reason: str) -> None:
        """Record that a sample's file could not be decoded (the large view found out first)."""
        self._on_loader_failed(sample_id, reason)

    def thumbnail_state(self, sample_id: int) -> ThumbnailState:
        """Whether the thumbnail of a sample is loading, ready or failed."""
        if sample_id in self._images:
            return "ready"
        return "failed" if sample_id in self._failed else "loading"

    # -- Qt model API -------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        """Number of samples shown."""
        return 0 if parent.isValid() else len(self._rows)

    def flags(self, index: Index) -> Qt.ItemFlag:
        """Items can be selected, not edited or dragged."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Name, thumbnail, tooltip and the custom roles of a row; no disk access."""
        row = index.row()
        if not index.isValid() or row >= len(self._rows):
            return None
        sample_id, path, label = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(path)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(sample_id, path)
        if role == LABEL_ROLE:
            return label
        if role == CLASS_INDEX_ROLE:
            return -1 if label is None else self._class_index.get(label, -1)
        if role == SAMPLE_ID_ROLE:
            return sample_id
        if role == PATH_ROLE:
            return path
        if role == THUMBNAIL_STATE_ROLE:
            return self.thumbnail_state(sample_id)
        if role == THUMBNAIL_ERROR_ROLE:
            return self._failed.get(sample_id)
        if role == PREDICTION_ROLE:
            return self._predictions.get(sample_id)
        if role == UNFAMILIAR_ROLE:
            return self.is_unfamiliar(sample_id)
        if role == EXCLUDED_ROLE:
            return sample_id in self._excluded
        if role == Qt.ItemDataRole.ToolTipRole:
            text = f"{os.path.basename(path)}\n{label if label is not None else 'Unlabeled'}\n{path}"
            predicted = self._predictions.get(sample_id)
            if predicted is not None:
                text += f"\nModel: {predicted[0]} ({100 * predicted[1]:.0f} %)"
                if self.is_unfamiliar(sample_id):
                    text += " — unfamiliar: unlike the images it was trained on"
            if sample_id in self._excluded:
                text += "\nExcluded from training (X includes it again)"
            error = self._failed.get(sample_id)
            return f"{text}\nUnreadable, not used: {error}" if error else text
        return None

    def _thumbnail(self, sample_id: int, path: str) -> QImage:
        image = self._images.get(sample_id)
        if image is not None:
            self._images.move_to_end(sample_id)
            return image
        if sample_id not in self._failed and self._loader is not None:
            self._loader.request(sample_id, path)
        return self._placeholder

    @Slot(int, QImage)
    def _on_loader_loaded(self, sample_id: int, image: QImage) -> None:
        old = self._images.pop(sample_id, None)
        if old is not None:
            self._image_bytes -= old.sizeInBytes()
        self._images[sample_id] = image
        self._image_bytes += image.sizeInBytes()
        while self._image_bytes > self._image_budget and len(self._images) > 1:
            _key, dropped = self._images.popitem(last=False)
            self._image_bytes -= dropped.sizeInBytes()
        self._row_changed(sample_id)

    @Slot(int, str)
    def _on_loader_failed(self, sample_id: int, reason: str) -> None:
        self._failed[sample_id] = reason
        self._row_changed(sample_id)

    def _row_changed(self, sample_id: int) -> None:
        row = self.row_of(sample_id)
        if row >= 0:
            index = self.index(row)
            self.dataChanged.emit(
                index,
                index,
                [Qt.ItemDataRole.DecorationRole, THUMBNAIL_STATE_ROLE, Qt.ItemDataRole.ToolTipRole],
            )
