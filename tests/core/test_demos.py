"""Shipped demo projects (``labeltune.core.demos``) and the ``demo`` / ``gui`` CLI entry points."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
from importlib import resources
from pathlib import Path

import pytest
from PIL import Image

from labeltune import cli
from labeltune.core import demos
from labeltune.core.errors import UnusableInputError
from labeltune.core.progress import StoppedError
from labeltune.core.project import Project

F4K_NOTICE = (
    '"Permission is granted for anyone to copy, use, modify, or distribute this data and accompanying '
    "documents for any purpose, provided this copyright notice is retained and prominently displayed, "
    "along with a note saying that the original data are available from our web page and refering to "
    '[2]. The data and documents are distributed without any warranty, express or implied."'
)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _resource_root() -> Path:
    return Path(str(resources.files("labeltune").joinpath("resources", "demos")))


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------ shipped data


def test_registry_lists_corn_and_fish_with_enough_images() -> None:
    assert set(demos.DEMOS) >= {"corn", "fish"}
    corn = demos.demo_counts("corn")
    assert list(corn) == ["Blight", "Common_Rust", "Gray_Leaf_Spot", "Healthy"]
    assert all(count >= 25 for count in corn.values())
    fish = demos.demo_counts("fish")
    assert len(fish) >= 5 and all(count >= 25 for count in fish.values())
    for spec in demos.DEMOS.values():
        assert spec.title and spec.description and spec.credit
        assert "\n" not in spec.description + spec.credit


@pytest.mark.parametrize("name", ["corn", "fish"])
def test_every_manifest_entry_is_a_readable_image(name: str) -> None:
    root = _resource_root() / demos.DEMOS[name].folder
    items = demos.demo_items(name)
    on_disk = {p.relative_to(root).as_posix() for p in (root / "images").rglob("*") if p.is_file()}
    assert on_disk == {item.path for item in items}  # nothing unlisted, nothing missing
    for item in items[:: max(1, len(items) // 20)]:
        with Image.open(root / item.path) as image:
            image.verify()


def test_fish_images_come_from_many_tracks() -> None:
    items = demos.demo_items("fish")
    assert all(item.group for item in items)
    for label in demos.demo_counts("fish"):
        groups = {item.group for item in items if item.label == label}
        assert len(groups) >= 20, label


def test_credits_and_licences_ship_with_the_data() -> None:
    corn = _flat(demos.demo_credits("corn"))
    assert "CC0" in corn and "doi:10.3389/fpls.2016.01419" in corn and "Mohanty" in corn
    assert (_resource_root() / "corn" / "LICENSE.CC0.txt").read_text().startswith("Creative Commons")
    fish = _flat(demos.demo_credits("fish"))
    assert F4K_NOTICE in fish
    assert "original data are available from the F4K web page" in fish
    assert "Supporting ground-truth annotation of image datasets using clustering" in fish


def test_resources_stay_small() -> None:
    total = sum(p.stat().st_size for p in _resource_root().rglob("*") if p.is_file())
    assert total < 5_000_000, total


# ------------------------------------------------------------------------------------ write_demo


def test_write_corn_demo_makes_a_self_contained_project(tmp_path: Path) -> None:
    folder = demos.write_demo("corn", tmp_path / "corn")
    assert folder == tmp_path / "corn"
    assert (folder / "CREDITS.txt").is_file() and (folder / "LICENSE.CC0.txt").is_file()
    with Project.open(folder) as project:
        assert project.name == "Corn leaf disease"
        assert project.counts() == demos.demo_counts("corn")
        assert project.unlabeled_count() == 0
        assert project.sources == [folder / "images"]
        samples = project.samples()
        assert all(s.path.is_relative_to(folder / "images") and s.path.is_file() for s in samples)
        assert not Path(project.stored_path(samples[0].path)).is_absolute()
    moved = shutil.move(folder, tmp_path / "moved")  # relative paths: the project still works elsewhere
    with Project.open(moved) as project:
        assert sum(project.counts().values()) == 120
        assert all(s.path.is_file() for s in project.samples())
    assert not list(tmp_path.glob(".*partial"))


def test_write_fish_demo_keeps_track_ids_as_groups(tmp_path: Path) -> None:
    folder = demos.write_demo("fish", tmp_path / "fish")
    expected = {Path(item.path).name: (item.label, item.group) for item in demos.demo_items("fish")}
    with Project.open(folder) as project:
        assert project.name == "Reef fish"
        assert project.counts() == demos.demo_counts("fish")
        got = {s.path.name: (s.label, s.group) for s in project.samples()}
    assert got == expected


def test_fish_demo_presets_grouping_by_track_in_the_file_name(tmp_path: Path) -> None:
    from labeltune.core.grouping import group_ids

    folder = demos.write_demo("fish", tmp_path / "fish")
    with Project.open(folder) as project:
        spec = project.settings["train"]["group_by"]
        samples = project.samples()
    assert spec == r"regex:fish_(\d+)_"
    # The pattern gives exactly the track ids of the manifest's group column.
    assert group_ids(spec, [s.path for s in samples]) == [s.group for s in samples]
    with Project.open(demos.write_demo("corn", tmp_path / "corn")) as project:
        assert "train" not in project.settings


def test_write_demo_into_an_empty_folder_works(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    demos.write_demo("corn", tmp_path / "empty")
    assert (tmp_path / "empty" / "project.json").is_file()


def test_write_demo_refuses_a_non_empty_folder_and_unknown_names(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.docx").write_text("precious")
    with pytest.raises(UnusableInputError, match="not empty"):
        demos.write_demo("corn", tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["thesis.docx"]
    with pytest.raises(UnusableInputError, match="unknown demo 'xrd2'; choose one of: corn, fish, xrd"):
        demos.write_demo("xrd2", tmp_path / "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_stopped_write_leaves_nothing(tmp_path: Path) -> None:
    stop = threading.Event()
    reports: list[int] = []

    def progress(p: object) -> None:
        reports.append(p.done)  # type: ignore[attr-defined]
        if p.done > 30:  # type: ignore[attr-defined]
            stop.set()

    with pytest.raises(StoppedError):
        demos.write_demo("fish", tmp_path / "fish", progress=progress, stop_event=stop)
    assert reports and reports[0] == 1
    assert list(tmp_path.iterdir()) == []


def test_demo_project_dir_is_under_the_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELTUNE_DATA_DIR", str(tmp_path / "data"))
    assert demos.demo_project_dir("fish") == tmp_path / "data" / "demos" / "fish"
    with pytest.raises(UnusableInputError):
        demos.demo_project_dir("nope")


def test_demos_need_neither_qt_nor_torch(tmp_path: Path) -> None:
    code = f"""
        import json, sys
        from labeltune.core.demos import write_demo
        write_demo("corn", {str(tmp_path / "corn")!r})
        print(json.dumps(sorted(m for m in ("torch", "PySide6", "torchvision") if m in sys.modules)))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


# ------------------------------------------------------------------------------------ CLI


def test_cli_demo_json_writes_a_project_that_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "demo", "corn", "--out", tmp_path / "c", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary == {
        "project": str(tmp_path / "c"),
        "name": "Corn leaf disease",
        "classes": demos.demo_counts("corn"),
    }
    with Project.open(tmp_path / "c") as project:
        assert project.counts() == summary["classes"]


def test_cli_demo_text_defaults_to_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "demo", "fish")
    assert code == 0
    folder = tmp_path / "labeltune-demo-fish"
    assert str(folder) in out and "Dascyllus reticulatus" in out
    with Project.open(folder) as project:
        assert project.sample_count() == len(demos.demo_items("fish"))


def test_cli_demo_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "xrd2", "--out", tmp_path / "x")
    expected = "labeltune: error: unknown demo 'xrd2'; choose one of: corn, fish, xrd"
    assert code == 2 and err.strip() == expected
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "a.txt").write_text("x")
    code, _, err = run(capsys, "demo", "corn", "--out", tmp_path / "busy")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not empty" in err


def test_cli_demo_without_a_name_lists_the_demos(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["corn"]["images"] == 120 and rows["corn"]["title"] == "Corn leaf disease"
    code, out, _ = run(capsys, "demo")
    assert code == 0 and "Reef fish" in out and "corn" in out


def test_cli_gui_opens_the_given_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import labeltune.app

    calls: list[object] = []
    monkeypatch.setattr(labeltune.app, "run_gui", lambda project=None: calls.append(project) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert run(capsys, "gui", tmp_path)[0] == 0
    assert run(capsys, "gui")[0] == 0
    assert calls == [tmp_path, None]
    code, _, err = run(capsys, "gui", tmp_path / "missing")
    assert code == 2 and "does not exist" in err and calls == [tmp_path, None]


def test_cli_gui_without_a_display_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run(capsys, "gui", tmp_path)
    assert code == 2 and "no display" in err and len(err.strip().splitlines()) == 1
    assert cli.display_available({"DISPLAY": ":0"}, "linux")
    assert not cli.display_available({}, "linux")
    assert cli.display_available({}, "win32") and cli.display_available({}, "darwin")
