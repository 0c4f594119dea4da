r"""What keeps related images on one side of the train/validation split: a *grouping spec*.

Frames of one fish track or photos of one plant are near-copies; when some train and others validate, the
validation score measures memory, not skill. A grouping names each image's group; :mod:`splits` then never
splits a group. The spec is a short text, the same in ``config.json``, the project settings, the GUI and
``labeltune train --group-by``:

* ``none``: no grouping, image by image (also ignores groups that came with the import);
* ``regex:PATTERN``, or a plain regular expression: the first capture group (or whole match) of ``PATTERN``
  searched in the file name, e.g. ``regex:fish_(\d+)_``; :data:`NAME_PRESETS` are ready-made ones;
* ``csv:COLUMN``: a column of the CSV the images were imported from (``csv:group`` also reads the group
  column a project kept from its import); ``csv:COLUMN@FILE``: a column of another CSV with a ``path``
  column (paths relative to that CSV; matched by full path, else by file name when that is unique there);
* ``folder``: the folder each image sits in;
* empty (``None``): the groups that came with the import, if any (what LabelTune always did).

An image without a group (no match, not in the CSV, empty cell) is a group of its own. Standard library
only: the GUI previews a spec on every edit, from file names, without touching the images.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from labeltune.core.errors import UnusableInputError
from labeltune.core.splits import groups_from_regex

__all__ = [
    "NAME_PRESETS",
    "GroupingSpec",
    "NamePreset",
    "csv_columns",
    "group_ids",
    "grouping_record",
    "grouping_text",
]

AUTO, NONE, PATTERN, CSV, FOLDER, IMPORT = "auto", "none", "pattern", "csv", "folder", "import"
#: The column of an import CSV that a project keeps (as each sample's group).
IMPORT_COLUMN = "group"


@dataclass(frozen=True)
class NamePreset:
    """A ready-made file-name pattern, with the words a biologist would use for it."""

    key: str
    title: str
    pattern: str
    example: str


NAME_PRESETS = (
    NamePreset("before-last", "Text before the last _ or -", r"^(.+)[_-][^_-]*$", "plant07_3.jpg → plant07"),
    NamePreset("before-first", "Text before the first _ or -", r"^([^_-]+)[_-]", "plant07_3.jpg → plant07"),
    NamePreset("leading-number", "Leading number", r"^(\d+)", "0412-left.png → 0412"),
)


@dataclass(frozen=True)
class GroupingSpec:
    """A parsed grouping: its kind and the pattern, CSV column or CSV file it needs."""

    kind: str = AUTO
    pattern: str = ""
    column: str = ""
    csv_file: str = ""

    @classmethod
    def parse(cls, text: str | None) -> GroupingSpec:
        """Read a spec text (see the module docstring); raises :class:`UnusableInputError` when unusable."""
        if text is None or not text.strip():
            return cls(AUTO)
        word = text.strip().lower()
        if word == NONE:
            return cls(NONE)
        if word == FOLDER:
            return cls(FOLDER)
        if word.startswith("regex:"):
            spec = cls(PATTERN, pattern=text.strip()[len("regex:") :])
        elif word.startswith("csv:"):
            column, _, file = text.strip()[len("csv:") :].partition("@")
            if not column.strip():
                raise UnusableInputError("csv: needs a column name, e.g. csv:plant or csv:plant@groups.csv")
            return cls(CSV, column=column.strip(), csv_file=file.strip())
        else:
            spec = cls(PATTERN, pattern=text)
        if not spec.pattern:
            raise UnusableInputError("regex: needs a pattern, e.g. regex:fish_(\\d+)_")
        try:
            re.compile(spec.pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            message = " ".join(str(exc).split())
            raise UnusableInputError(f"invalid group regex {spec.pattern!r}: {message}") from None
        return spec

    def text(self) -> str:
        """The spec as text (what :meth:`parse` reads back); ``""`` for the import's groups."""
        if self.kind == PATTERN:
            return f"regex:{self.pattern}"
        if self.kind == CSV:
            return f"csv:{self.column}" + (f"@{self.csv_file}" if self.csv_file else "")
        return "" if self.kind == AUTO else self.kind

    def describe(self) -> str:
        r"""What the images are grouped by, in words (``file-name pattern fish_(\d+)_``)."""
        if self.kind == PATTERN:
            preset = next((p for p in NAME_PRESETS if p.pattern == self.pattern), None)
            if preset is not None:  # a ready-made pattern: its words, not its regex
                return f"file name: {preset.title[0].lower()}{preset.title[1:]}"
            return f"file-name pattern {self.pattern}"
        if self.kind == CSV:
            where = f" of {PurePath(self.csv_file).name}" if self.csv_file else ""
            return f"CSV column {self.column!r}{where}"
        if self.kind == FOLDER:
            return "the folder each image sits in"
        if self.kind == AUTO:
            return "the groups of the import"
        return "nothing"


def csv_columns(file: str | os.PathLike[str]) -> list[str]:
    """The column names of a CSV file (its header); raises :class:`UnusableInputError` if unreadable."""
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnusableInputError(f"cannot read {file}: {exc}") from None
    return [name.strip() for name in header if name.strip()]


def _csv_groups(file: Path, column: str, paths: Sequence[Path]) -> list[str | None]:
    """The ``column`` cell of each path's row in ``file`` (``None`` where the path is not listed)."""
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            names = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnusableInputError(f"cannot read {file}: {exc}") from None
    wanted = names.get(column.strip().lower())
    if wanted is None or "path" not in names:
        have = ", ".join(name for name in names if name) or "none"
        need = column if wanted is None else "path"
        raise UnusableInputError(f"{file} has no {need!r} column (its columns: {have})")
    by_path: dict[str, str | None] = {}
    by_name: dict[str, list[str | None]] = {}
    for row in rows:
        raw = (row.get(names["path"]) or "").strip()
        if not raw:
            continue
        value = (row.get(wanted) or "").strip() or None
        full = Path(raw) if Path(raw).is_absolute() else file.parent / raw
        by_path[os.path.normcase(os.path.abspath(full))] = value
        by_name.setdefault(PurePath(raw.replace("\\", "/")).name, []).append(value)
    result: list[str | None] = []
    for path in paths:
        key = os.path.normcase(os.path.abspath(path))
        if key in by_path:
            result.append(by_path[key])
        else:
            found = by_name.get(Path(path).name, [])
            result.append(found[0] if len(found) == 1 else None)
    return result


def _folder_groups(paths: Sequence[Path]) -> list[str | None]:
    """The folder of each path, relative to the folder all of them share (stable when a project moves)."""
    if not paths:
        return []
    # os.path on strings: pathlib objects cost ten times more, and a preview may see 100 000 names.
    parents = [os.path.dirname(os.path.abspath(os.fspath(p))) for p in paths]
    try:
        common = os.path.commonpath(set(parents))
    except ValueError:  # different drives
        common = ""
    cut = len(common.rstrip("/\\")) + 1 if common else 0
    result: list[str | None] = []
    for parent in parents:
        relative = parent[cut:] if len(parent) > cut else ""
        result.append(relative.replace("\\", "/") if relative else os.path.basename(parent))
    return result


def group_ids(
    spec: GroupingSpec | str | None,
    paths: Sequence[Path],
    imported: Sequence[str | None] | None = None,
    source_csv: Path | None = None,
) -> list[str | None]:
    """The group of each image under ``spec`` (``None``: a group of its own).

    ``imported[i]`` is the group image ``i`` came with (a CSV's or a demo's group column), ``source_csv``
    the CSV the images were listed in, if they were. Raises :class:`UnusableInputError` when the spec
    cannot work, or when a pattern or CSV column gives none of the images a group (a typo would otherwise
    give an ungrouped split silently).
    """
    spec = spec if isinstance(spec, GroupingSpec) else GroupingSpec.parse(spec)
    own: list[str | None] = list(imported) if imported is not None else [None] * len(paths)
    if spec.kind == AUTO:
        return own
    if spec.kind == NONE:
        return [None] * len(paths)
    if spec.kind == FOLDER:
        return _folder_groups(paths)
    if spec.kind == PATTERN:
        groups = groups_from_regex([os.path.basename(os.fspath(p)) for p in paths], spec.pattern)
        if paths and all(g is None for g in groups):
            raise UnusableInputError(
                f"the group pattern {spec.pattern!r} matches none of the {len(paths)} file names "
                f"(e.g. {Path(paths[0]).name!r}); fix it, or leave grouping out"
            )
        return groups
    if spec.csv_file:
        groups = _csv_groups(Path(spec.csv_file).expanduser(), spec.column, paths)
    elif source_csv is not None:
        groups = _csv_groups(Path(source_csv), spec.column, paths)
    elif spec.column.lower() == IMPORT_COLUMN:
        groups = own
    else:
        raise UnusableInputError(
            f"these images were not listed in a CSV with a {spec.column!r} column (a project keeps only "
            f"its import's {IMPORT_COLUMN!r} column); name the file: csv:{spec.column}@FILE.csv"
        )
    if paths and all(g is None for g in groups):
        raise UnusableInputError(
            f"the CSV column {spec.column!r} gives none of the {len(paths)} images a group "
            f"(e.g. {Path(paths[0]).name!r}); check the file and the column"
        )
    return groups


def grouping_record(
    spec: GroupingSpec | str | None, groups: Sequence[str | None], is_val: Sequence[bool]
) -> dict[str, Any]:
    """What a run stores about its grouping (``config.json`` and the summary in ``metrics.json``)."""
    spec = spec if isinstance(spec, GroupingSpec) else GroupingSpec.parse(spec)
    named = {g for g in groups if g is not None}
    kind = spec.kind
    if kind == AUTO:
        kind = IMPORT if named else NONE
    val = sum(1 for v in is_val if v)
    record: dict[str, Any] = {
        "kind": kind,
        "spec": spec.text(),
        "groups": len(named),
        "ungrouped_images": sum(1 for g in groups if g is None) if named else len(groups),
        "train_images": len(is_val) - val,
        "val_images": val,
    }
    if spec.kind == PATTERN:
        record["pattern"] = spec.pattern
    if spec.kind == CSV:
        record["column"] = spec.column
        if spec.csv_file:
            record["csv_file"] = spec.csv_file
    record["text"] = grouping_text(record)
    return record


def grouping_text(record: dict[str, Any] | None) -> str:
    r"""A run's grouping in words: ``grouped by file-name pattern fish_(\d+)_ — 23 groups``."""
    if not record:
        return "grouping not recorded"
    kind = record.get("kind")
    if kind == NONE or not record.get("groups"):
        return "not grouped"
    if kind == PATTERN:
        what = GroupingSpec(PATTERN, pattern=str(record.get("pattern", ""))).describe()
    elif kind == CSV:
        file = record.get("csv_file")
        what = f"CSV column {record.get('column', '')!r}" + (f" of {PurePath(file).name}" if file else "")
    elif kind == FOLDER:
        what = "folder"
    else:
        what = "the import's groups"
    text = f"grouped by {what} — {record['groups']} groups"
    alone = record.get("ungrouped_images") or 0
    if alone:
        text += " (1 image on its own)" if alone == 1 else f" ({alone} images on their own)"
    return text
