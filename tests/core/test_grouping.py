"""Grouping specs: parsing, group ids per kind, the preview and the record a run keeps (core/grouping.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labeltune.core.errors import UnusableInputError
from labeltune.core.grouping import (
    NAME_PRESETS,
    GroupingSpec,
    group_ids,
    grouping_record,
    grouping_text,
)
from labeltune.core.grouping_preview import preview_grouping

#: Two species, six tracks each (ids 0-5 and 6-11), three frames per track.
FISH = [
    Path(f"/p/images/{s}/fish_{6 * k + t:04d}_{f:03d}.png")
    for k, s in enumerate("AB")
    for t in range(6)
    for f in range(3)
]
FISH_LABELS = [p.parent.name for p in FISH]


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        (None, GroupingSpec("auto")),
        ("", GroupingSpec("auto")),
        ("none", GroupingSpec("none")),
        ("Folder", GroupingSpec("folder")),
        (r"regex:fish_(\d+)_", GroupingSpec("pattern", pattern=r"fish_(\d+)_")),
        (r"fish_(\d+)_", GroupingSpec("pattern", pattern=r"fish_(\d+)_")),  # a plain regex still works
        ("csv:plant", GroupingSpec("csv", column="plant")),
        ("csv:plant@/data/groups.csv", GroupingSpec("csv", column="plant", csv_file="/data/groups.csv")),
    ],
)
def test_parse_and_text_round_trip(text: str | None, spec: GroupingSpec) -> None:
    assert GroupingSpec.parse(text) == spec
    assert GroupingSpec.parse(spec.text()) == spec


@pytest.mark.parametrize(("text", "words"), [("(", "regex"), ("regex:", "pattern"), ("csv:", "column")])
def test_unusable_specs_are_explained(text: str, words: str) -> None:
    with pytest.raises(UnusableInputError, match=words):
        GroupingSpec.parse(text)


def test_pattern_groups_by_the_capture_and_rejects_a_pattern_matching_nothing() -> None:
    groups = group_ids(r"regex:fish_(\d+)_", FISH)
    assert groups[:4] == ["0000", "0000", "0000", "0001"]
    with pytest.raises(UnusableInputError, match="matches none of the 36"):
        group_ids("regex:plant_(\\d+)", FISH)


@pytest.mark.parametrize(
    ("key", "name", "group"),
    [
        ("before-last", "fish_000016839596_03983.png", "fish_000016839596"),
        ("before-last", "plant-12-a.jpg", "plant-12"),
        ("before-first", "plant07_leaf-3.jpg", "plant07"),
        ("leading-number", "0412-left.png", "0412"),
    ],
)
def test_name_presets(key: str, name: str, group: str) -> None:
    preset = next(p for p in NAME_PRESETS if p.key == key)
    assert group_ids(GroupingSpec("pattern", pattern=preset.pattern), [Path(name)]) == [group]


def test_folder_groups_are_relative_to_the_shared_folder() -> None:
    paths = [
        Path("/x/data/Blight/plant1/a.jpg"),
        Path("/x/data/Rust/plant1/b.jpg"),
        Path("/x/data/Rust/c.jpg"),
    ]
    assert group_ids("folder", paths) == ["Blight/plant1", "Rust/plant1", "Rust"]
    assert group_ids("folder", [Path("/x/a.jpg"), Path("/x/b.jpg")]) == ["x", "x"]


def test_auto_keeps_the_imported_groups_and_none_drops_them() -> None:
    paths = [Path("a.png"), Path("b.png")]
    assert group_ids(None, paths, ["t1", None]) == ["t1", None]
    assert group_ids("none", paths, ["t1", None]) == [None, None]
    assert group_ids("csv:group", paths, ["t1", None]) == ["t1", None]  # the column a project kept


def test_csv_column_from_a_chosen_file_matches_paths_then_names(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    table = tmp_path / "groups.csv"
    table.write_text("Path,Plant,site\nimgs/a.jpg,p1,north\nimgs/b.jpg,p1,south\nelsewhere/c.jpg,p2,north\n")
    paths = [
        tmp_path / "imgs" / "a.jpg",
        tmp_path / "imgs" / "b.jpg",
        tmp_path / "other" / "c.jpg",
        Path("d.jpg"),
    ]
    assert group_ids(f"csv:plant@{table}", paths) == ["p1", "p1", "p2", None]
    assert group_ids("csv:site", paths, source_csv=table) == ["north", "south", "north", None]
    with pytest.raises(UnusableInputError, match=r"no 'tray' column .*path, plant, site"):
        group_ids(f"csv:tray@{table}", paths)
    with pytest.raises(UnusableInputError, match="csv:plant@FILE"):
        group_ids("csv:plant", paths)  # a folder or project import keeps no such column


def test_preview_counts_groups_sides_and_classes_and_highlights_the_group() -> None:
    preview = preview_grouping(r"regex:fish_(\d+)_", FISH, FISH_LABELS, val_fraction=0.34)
    assert preview.groups == 12 and preview.alone == 0
    assert (preview.train, preview.val) == (24, 12)
    assert preview.per_class == {"A": (12, 6), "B": (12, 6)}
    assert len(preview.examples) == 3 and len({e.group for e in preview.examples}) == 3
    for example in preview.examples:
        assert example.span is not None
        start, end = example.span
        assert example.name[start:end] == example.group
        assert re.fullmatch(r"\d{4}", example.group or "")
    assert preview.warnings == []


def test_preview_counts_only_labeled_images_and_warns_when_nothing_validates() -> None:
    labels: list[str | None] = list(FISH_LABELS)
    labels[0] = None
    preview = preview_grouping("folder", FISH, labels)
    assert preview.groups == 2 and preview.train == 35 and preview.val == 0
    assert preview.warnings and "validation" in preview.warnings[0]
    assert preview.examples[0].name.startswith(f"{preview.examples[0].group}/")


def test_record_and_text() -> None:
    groups = group_ids(r"fish_(\d+)_", FISH)
    record = grouping_record(r"fish_(\d+)_", groups, [i % 3 == 0 for i in range(36)])
    assert record == {
        "kind": "pattern",
        "spec": r"regex:fish_(\d+)_",
        "groups": 12,
        "ungrouped_images": 0,
        "train_images": 24,
        "val_images": 12,
        "pattern": r"fish_(\d+)_",
        "text": r"grouped by file-name pattern fish_(\d+)_ — 12 groups",
    }
    assert grouping_record(None, [None] * 4, [False] * 4)["text"] == "not grouped"
    assert grouping_record(None, ["t", "t", None], [False] * 3)["text"] == (
        "grouped by the import's groups — 1 groups (1 image on its own)"
    )
    assert grouping_text(None) == "grouping not recorded"


def test_a_ready_made_pattern_is_described_in_words_not_as_its_regex() -> None:
    from labeltune.core.grouping import NAME_PRESETS, GroupingSpec

    before_last = next(p for p in NAME_PRESETS if p.key == "before-last")
    assert (
        GroupingSpec.parse(f"regex:{before_last.pattern}").describe()
        == "file name: text before the last _ or -"
    )
    assert GroupingSpec.parse(r"regex:fish_(\d+)_").describe() == r"file-name pattern fish_(\d+)_"
    from labeltune.core.grouping import grouping_text

    text = grouping_text({"kind": "pattern", "pattern": before_last.pattern, "groups": 524})
    assert text == "grouped by file name: text before the last _ or - — 524 groups"  # as runs show it
