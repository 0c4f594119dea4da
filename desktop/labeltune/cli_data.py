"""The data commands: ``scan``, ``project new``, ``demo`` and ``xrd library``/``xrd simulate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labeltune.cli_output import UsageError, emit_json, print_skipped, progress_bar


def cmd_scan(args: argparse.Namespace) -> int:
    """Report what a data folder, CSV or project holds."""
    from labeltune.core.datasets import scan

    with progress_bar(not args.json) as progress:
        data = scan(args.data, progress=progress)
    if args.json:
        emit_json(data.summary())
        return 0
    print(f"{data.root} ({data.kind})")
    for name, count in data.counts().items():
        print(f"  {name:<30}{count:>7}")
    print(f"  {'(unlabeled)':<30}{len(data.unlabeled):>7}")
    print(f"{len(data.labeled)} labeled, {len(data.unlabeled)} unlabeled, {len(data.skipped)} skipped")
    print_skipped(data.skipped)
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    """Create a project folder, optionally importing a class folder or CSV into it (or trust one)."""
    from labeltune.core.datasets import scan
    from labeltune.core.project import Project

    if args.project_command == "trust":
        return _trust_project(Path(args.folder), args.json)
    data = None
    if args.source:
        with progress_bar(not args.json) as progress:
            data = scan(args.source, progress=progress)
    with Project.create(Path(args.folder), name=args.name) as project:
        if data is not None:
            project.add_source(data.root)
            project.add_samples(data.samples, source="import")
        summary = {
            "project": str(project.folder),
            "classes": project.counts(),
            "unlabeled": project.unlabeled_count(),
            "skipped": [s.to_json() for s in data.skipped] if data else [],
        }
    if args.json:
        emit_json(summary)
        return 0
    print(f"created project {summary['project']}")
    classes: dict[str, int] = summary["classes"]  # type: ignore[assignment]
    for name, count in classes.items():
        print(f"  {name:<30}{count:>7}")
    print(f"  {'(unlabeled)':<30}{summary['unlabeled']:>7}")
    if data is not None:
        print_skipped(data.skipped)
    return 0


def _trust_project(folder: Path, as_json: bool) -> int:
    """Record the folders a project from elsewhere names as trusted by this user (ADR 0043)."""
    from labeltune.core.project import Project
    from labeltune.core.untrusted import ForeignRowsError, remember_roots

    trusted: list[str] = []
    try:
        Project.open(folder).close()
    except ForeignRowsError as error:
        remember_roots(error.folders)
        trusted = error.folders
        Project.open(folder).close()  # now it opens (or says what else is wrong)
    if as_json:
        emit_json({"project": str(folder), "trusted": trusted})
    elif trusted:
        print(f"{folder}: its files in these folders will be read:")
        for name in trusted:
            print(f"  {name}")
    else:
        print(f"{folder}: opens as it is (nothing outside its folder to trust)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Write a shipped demo as a project folder (or list the demos)."""
    from labeltune.core import demos

    if args.name is None:
        rows = [
            {
                **spec.__dict__,
                "images": len(demos.demo_items(spec.name)),
                "classes": demos.demo_counts(spec.name),
            }
            for spec in demos.DEMOS.values()
        ]
        if args.json:
            emit_json(rows)
            return 0
        for row in rows:
            kinds, items = ("phases", "patterns") if row.get("domain") == "xrd" else ("classes", "images")
            print(f"{row['name']:<8}{row['title']} ({len(row['classes'])} {kinds}, {row['images']} {items})")
            print(f"        {row['description']}")
            print(f"        credit: {row['credit']}")
        print("write one with: labeltune demo NAME [--out DIR]")
        return 0
    spec = demos.get_demo(args.name)
    out = Path(args.out) if args.out else Path.cwd() / f"labeltune-demo-{spec.name}"
    folder = demos.write_demo(spec.name, out)
    counts = demos.demo_counts(spec.name)
    if args.json:
        emit_json({"project": str(folder), "name": spec.title, "classes": counts})
        return 0
    print(f"wrote the {spec.title!r} demo project to {folder}")
    for name, count in counts.items():
        print(f"  {name:<30}{count:>7}")
    if spec.domain == "xrd":
        model = json.loads((folder / "xrd_project.json").read_text(encoding="utf-8")).get("model")
        print(f"identify its phases with: labeltune predict {model or 'MODEL_RUN'} {folder / 'patterns'}")
    print(f"open it with: labeltune gui {folder}")
    return 0


def cmd_xrd(args: argparse.Namespace) -> int:
    """XRD subcommands: ``library`` (CIF files to a reference library), ``simulate`` (training data)."""
    if getattr(args, "xrd_command", "library") == "simulate":
        return cmd_xrd_simulate(args)
    from labeltune.core.xrd.library import build_library, save_library
    from labeltune.core.xrd.pattern import tube_line_in_nm
    from labeltune.core.xrd.reference_build import add_measured_references, library_inputs

    cifs, references = library_inputs(args.cifs)  # patterns with a sidecar: measured references (ADR 0047)
    if not cifs and not references:
        raise UsageError("no .cif files or reference patterns found in " + ", ".join(args.cifs))
    low, high = args.two_theta
    if not 0 < low < high < 180:
        raise UsageError("--two-theta needs 0 < MIN < MAX < 180")
    if not 0.1 < args.wavelength < 5 or tube_line_in_nm(args.wavelength) is not None:
        raise UsageError("--wavelength is in ångström, e.g. 1.5406 for Cu Kα1")
    library = build_library(
        cifs, Path(args.out), args.wavelength, (low, high), naming=getattr(args, "names", "file")
    )
    if references:
        add_measured_references(library, references)
        save_library(library, Path(args.out))
    summary = {
        "library": str(Path(args.out)),
        "wavelength": library.wavelength,
        "two_theta_range": list(library.two_theta_range),
        "phases": [
            {"name": p.name, "formula": p.formula, "space_group": p.space_group, "n_peaks": p.n_peaks}
            | ({"kind": p.kind, "rir": p.rir} if p.kind != "cif" else {})
            for p in library.phases
        ],
        "skipped": [{"path": path, "reason": reason} for path, reason in library.skipped],
    }
    if args.json:
        emit_json(summary)
    else:
        print(f"{len(library.phases)} phases written to {args.out} ({args.wavelength} Å, {low}-{high}° 2θ)")
        for phase in library.phases:
            kind = f"  measured, RIR {phase.rir:.3g}" if phase.rir is not None else ""
            print(
                f"  {phase.name:<24}{phase.formula:<14}{phase.space_group:<14}{phase.n_peaks:>5} peaks{kind}"
            )
        for cif, reason in library.skipped:
            sys.stderr.write(f"skipped {cif}: {reason}\n")
    return 0 if library.phases else 2


def cmd_xrd_simulate(args: argparse.Namespace) -> int:
    """Simulate labelled multi-phase patterns from a reference library into a data folder."""
    import time

    from labeltune.core.xrd.library import LibraryError, load_library
    from labeltune.core.xrd.simulate import SimulationConfig, simulate, write_simulated

    if args.n < 1:
        raise UsageError("--n must be at least 1")
    if args.max_phases < 1:
        raise UsageError("--max-phases must be at least 1")
    try:
        library = load_library(Path(args.library).expanduser())
    except LibraryError as error:
        raise UsageError(str(error)) from None
    if not library.phases:
        raise UsageError(f"{args.library}: the library has no phases")
    config = SimulationConfig(max_phases=min(args.max_phases, len(library.phases)))
    start = time.perf_counter()
    batch = simulate(library, args.n, config, seed=args.seed)
    seconds = time.perf_counter() - start
    out = write_simulated(batch, library, Path(args.out))
    summary = {
        "out": str(out),
        "n": len(batch),
        "points": config.points,
        "phases": len(library.phases),
        "max_phases": config.max_phases,
        "seed": args.seed,
        "seconds": round(seconds, 3),
    }
    if args.json:
        emit_json(summary)
    else:
        print(
            f"{len(batch)} patterns ({len(library.phases)} phases, up to {config.max_phases} each) "
            f"written to {out}"
        )
    return 0
