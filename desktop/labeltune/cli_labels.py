"""The labeling commands: ``label`` (by path) and ``labels export|import`` (CSV or class folders).

Both kinds of project (images, XRD patterns) go through core/label_io.py; see docs/adr/0029.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from labeltune.cli_output import UsageError, emit_json, progress_bar, stop_on_ctrl_c

__all__ = ["add_label_commands", "cmd_label", "cmd_labels"]


def add_label_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``label`` and ``labels`` to the ``labeltune`` sub-command parsers ``sub``."""
    p = sub.add_parser("label", help="label (or with --clear unlabel) items of a project by path")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("paths", nargs="+", metavar="PATH", help="as stored in the project, or as given here")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--as", dest="label", metavar="CLASS", help='the class; xrd: phases, e.g. "A;B"')
    which.add_argument("--clear", action="store_true", help="remove the label")
    p.add_argument("--new-class", action="store_true", help="allow a class (xrd: phase) the project lacks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("labels", help="export or import a project's labels (CSV or class folders)")
    lsub = p.add_subparsers(dest="labels_command", required=True, parser_class=parser_class)
    q = lsub.add_parser("export", help="write path,label[,source] (xrd: path,phases,fractions) or folders")
    q.add_argument("project", metavar="PROJECT")
    q.add_argument("file", nargs="?", metavar="FILE.csv")
    q.add_argument("--folders", metavar="OUT", help="copy the labeled files into OUT/<class>/ instead")
    q.add_argument("--link", action="store_true", help="with --folders: symbolic links, not copies")
    q.add_argument("--json", action="store_true")
    q = lsub.add_parser("import", help="read labels from a CSV or a folder of class folders")
    q.add_argument("project", metavar="PROJECT")
    q.add_argument("source", metavar="FILE.csv|DIR", help="rows match by path, else by file content")
    q.add_argument("--new-class", action="store_true", help="add unknown classes instead of listing them")
    q.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_labels)


def cmd_label(args: argparse.Namespace) -> int:
    """``labeltune label PROJECT PATH... --as CLASS`` (or ``--clear``): committed as a person's labels."""
    from labeltune.core.label_io import UnknownClassError, label_paths
    from labeltune.core.label_targets import label_target, open_label_project

    label = "" if args.clear else str(args.label).strip()
    if not args.clear and not label:
        raise UsageError("label: --as needs a class name")
    project = open_label_project(_project_folder(args.project))
    try:
        changed = label_paths(
            label_target(project), args.paths, label, [Path.cwd()], allow_new=args.new_class
        )
    except UnknownClassError as error:
        raise UsageError(f"label: {error}; --new-class adds it") from None
    finally:
        project.close()
    summary = {"project": str(project.folder), "label": label, "items": len(args.paths), "changed": changed}
    if args.json:
        emit_json(summary)
    else:
        what = f"labeled {label}" if label else "unlabeled"
        print(f"{changed} of {len(args.paths)} item(s) {what} ({len(args.paths) - changed} already were)")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    """``labeltune labels export|import``."""
    from labeltune.core.label_targets import label_target, open_label_project

    folder = _project_folder(args.project)
    if args.labels_command == "export" and (args.file is None) == (args.folders is None):
        raise UsageError("labels export: give either FILE.csv or --folders OUT")
    project = open_label_project(folder)
    try:
        target = label_target(project)
        if args.labels_command == "export":
            return _export(args, target)
        return _import(args, target)
    finally:
        project.close()


def _export(args: argparse.Namespace, target: Any) -> int:
    from labeltune.core.label_io import export_csv, export_folders

    if args.folders is not None:
        out = Path(args.folders)
        with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
            count = export_folders(target, out, link=args.link, progress=progress, stop_event=stop)
    else:
        out = Path(args.file)
        count = export_csv(target, out)
    if args.json:
        emit_json({"out": str(out), "labels": count})
    else:
        print(f"wrote {count} label(s) to {out}")
    return 0


def _import(args: argparse.Namespace, target: Any) -> int:
    from labeltune.core.label_io import import_labels, read_class_folders, read_label_csv

    source = Path(args.source)
    if source.is_dir():
        rows, bases = read_class_folders(source), [source]
    elif source.is_file():
        rows, bases = read_label_csv(source), [source.parent]
    else:
        raise UsageError(f"labels import: {source} does not exist")
    with progress_bar(not args.json) as progress, stop_on_ctrl_c() as stop:
        report = import_labels(target, rows, bases, args.new_class, progress, stop)
    if args.json:
        emit_json(report.to_json())
    else:
        print(report.summary())
    return 0


def _project_folder(text: str) -> Path:
    folder = Path(text)
    if not folder.is_dir():
        raise UsageError(f"{text} is not a project folder")
    return folder
