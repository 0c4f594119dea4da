"""The ``labeltune`` command line: argument parsing and output only; all work happens in ``core``.

Exit status: 0 success, 2 bad usage or unusable input (one line on stderr, no traceback),
130 interrupted by Ctrl+C (a training run still saves its best model first).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labeltune import __version__
from labeltune.cli_audit import add_audit_parser
from labeltune.cli_data import cmd_demo, cmd_project, cmd_scan, cmd_xrd
from labeltune.cli_explain import add_parser as add_explain_parser
from labeltune.cli_labels import add_label_commands
from labeltune.cli_models import cmd_evaluate, cmd_export, cmd_predict
from labeltune.cli_output import UsageError, printable_stdout
from labeltune.cli_train import cmd_train
from labeltune.cli_weights import cmd_backbones, cmd_weights
from labeltune.core.errors import LabelTuneError
from labeltune.core.progress import StoppedError

log = logging.getLogger("labeltune")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage + exits 2; keep the exit code, one line
        raise UsageError(f"{self.prog}: {message}")


# -- commands of the app itself --------------------------------------------------------------------
def cmd_self_test(args: argparse.Namespace) -> int:
    """``labeltune --self-test``: one line per check, then a one-line summary; 0 if all passed, else 1."""
    from labeltune.selftest import run_self_test

    report = run_self_test()
    print(report.summary())
    return 0 if report.ok else 1


NO_DISPLAY_NOTE = "No display found, so the desktop app cannot start here; the commands above need none."


def display_available(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: false on Linux/BSD with no X11/Wayland display and no Qt platform."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def cmd_gui(args: argparse.Namespace) -> int:
    """Start the desktop app, optionally opening a project."""
    project = Path(args.project) if args.project else None
    if project is not None and not project.exists():
        raise UsageError(f"gui: {project} does not exist")
    if not display_available():
        raise UsageError(
            "gui: no display found (DISPLAY and WAYLAND_DISPLAY are not set); run it on a desktop, "
            "or set QT_QPA_PLATFORM (e.g. offscreen)"
        )
    try:
        from labeltune.app import run_gui
    except ImportError as error:  # a headless install without PySide6
        raise UsageError(f"gui: the desktop app cannot start ({error}); install PySide6") from None
    return run_gui(project)


# -- parser -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to document the CLI)."""
    from labeltune.core.backbones import BACKBONES  # plain data, no torch

    parser = _Parser(prog="labeltune", description="Label images and fine-tune pretrained networks, offline.")
    parser.add_argument("--version", action="version", version=f"labeltune {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation (weights, training, projects, XRD, GUI; offscreen) and exit 0 or 1",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("backbones", help="list the pretrained networks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("weights", help="list, download or import ImageNet weights")
    wsub = p.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    w = wsub.add_parser("list", help="which weights are stored")
    w.add_argument("--json", action="store_true")
    w = wsub.add_parser("download", help="download official torchvision weights")
    w.add_argument("name")
    w = wsub.add_parser("import", help="import a weights file you already have (.pth or .safetensors)")
    w.add_argument("name")
    w.add_argument("file")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("scan", help="count images per class and report unreadable files")
    p.add_argument("data", help="class folder, path,label CSV, or project folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("project", help="create a project (labels in a crash-safe store)")
    psub = p.add_subparsers(dest="project_command", required=True, parser_class=_Parser)
    q = psub.add_parser("new", help="create a project folder, importing images from a folder or CSV")
    q.add_argument("folder", help="the project's own folder: new, or empty (the images stay where they are)")
    q.add_argument("--from", dest="source", default=None, metavar="DATA", help="class folder or CSV")
    q.add_argument("--name", default=None)
    q.add_argument("--json", action="store_true")
    q = psub.add_parser(
        "trust", help="let a project from elsewhere read its images outside its folder (they are listed)"
    )
    q.add_argument("folder", help="the project folder")
    q.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_project)

    add_label_commands(sub, _Parser)

    p = sub.add_parser("train", help="fine-tune a backbone on labeled images, or train an XRD model")
    p.add_argument("data", nargs="?", help="class folder, path,label CSV, or project folder")
    p.add_argument(
        "--backbone",
        default=None,
        help="default efficientnet_lite0, whose ImageNet weights ship with LabelTune; the others: "
        + ", ".join(name for name in BACKBONES if name != "efficientnet_lite0")
        + " (labeltune backbones says more)",
    )
    p.add_argument(
        "--strategy", default=None, choices=["features", "partial", "full"], help="default features"
    )
    p.add_argument(
        "--weights", default="imagenet", help="imagenet, none (random), or a .pth/.safetensors file"
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="default 30 for features, 10 for partial and full; xrd 30"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per optimiser step; default 32 for images (partial/full: computed in the largest "
        "micro-batches that fit the free memory, gradients accumulated), 128 for xrd",
    )
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 features/partial, 3e-4 full")
    p.add_argument(
        "--val-fraction", type=float, default=None, help="share of images kept for validation (default 0.2)"
    )
    p.add_argument(
        "--folds",
        type=int,
        default=0,
        metavar="N",
        help="k-fold cross-validation: split into N stratified (and grouped) folds; validate on --fold. "
        "xrd fine-tuning: folds of the held-out check against the --init model (default 5; 1: none)",
    )
    p.add_argument(
        "--fold", type=int, default=None, metavar="K", help="with --folds: validate on fold K (1..N)"
    )
    p.add_argument(
        "--group-by",
        default=None,
        metavar="SPEC",
        help="keep related images on one side of the split: none; folder (the folder each image sits in); "
        "csv:COLUMN (of the CSV given as DATA; csv:group also reads a project's imported groups) or "
        "csv:COLUMN@FILE (a CSV with path and COLUMN); regex:PATTERN or a plain regex (its first group in "
        r"the file name, e.g. 'fish_(\d+)_'). Default: the groups the import carried, if any",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32"],
        help="auto: bfloat16 autocast on CPUs that have it, float16 AMP on CUDA (partial/full); fp32: off",
    )
    p.add_argument("--input-size", type=int, default=None, help="override the backbone's input size (px)")
    p.add_argument("--head-hidden", type=int, default=0, help="hidden units of an MLP head (0: linear)")
    p.add_argument("--no-augment", action="store_true", help="no flips/rotations/colour jitter")
    p.add_argument("--cached-views", type=int, default=0, help="augmented views per image to cache")
    p.add_argument("--patience", type=int, default=5, help="early stopping patience in epochs (0: off)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    p.add_argument(
        "--out", default=None, metavar="RUN_DIR", help="the new run's folder (default: runs/<time>-<id>)"
    )
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a stopped run")
    p.add_argument(
        "--domain",
        default="auto",
        choices=["auto", "image", "xrd"],
        help="image or xrd (auto: xrd for a library, simulated set or folder with labels.csv of phases)",
    )
    p.add_argument(
        "--init",
        default=None,
        metavar="RUN_DIR",
        help="start from this run: images: add DATA's new classes (its network, split kept); xrd: fine-tune",
    )
    p.add_argument(
        "--patterns-per-epoch", type=int, default=8192, help="xrd: simulated patterns per epoch (8192)"
    )
    p.add_argument("--max-phases", type=int, default=3, help="xrd: phases per simulated pattern, at most")
    p.add_argument("--monochromatic", action="store_true", help="xrd: no Kα2 in simulated patterns")
    p.add_argument(
        "--wavelength", type=float, default=None, help="xrd: Å, for labeled files that do not state theirs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a run on labeled data")
    p.add_argument("run_dir")
    p.add_argument("data")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--wavelength", type=float, default=None, help="xrd: Å, for files that do not state theirs"
    )
    _add_radiation(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify images, or identify XRD phases, with a trained run")
    p.add_argument("run_dir")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--out", default=None, metavar="FILE.csv")
    p.add_argument("--sort-into", default=None, metavar="DIR", help="copy files into class sub-folders")
    p.add_argument(
        "--min-confidence", type=float, default=0.0, help="below this, --sort-into puts files in uncertain/"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--wavelength",
        type=float,
        default=None,
        help="xrd: Å, for files that do not state theirs (default: the model's, with a note)",
    )
    _add_radiation(p)
    p.add_argument("--no-fit", action="store_true", help="xrd: network only, no least-squares fit")
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="predict only part I of N (0 <= I < N) of the inputs, for N processes or machines in parallel",
    )
    p.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default 32)")
    p.add_argument(
        "--library",
        default=None,
        metavar="LIB",
        help="xrd: refuse unless the model knows this library's phases",
    )
    p.add_argument(
        "--particle-size",
        type=float,
        default=None,
        metavar="UM",
        help="xrd: grain diameter in µm; corrects the fractions for microabsorption (Brindley)",
    )
    p.add_argument(
        "--texture",
        default=None,
        metavar="{auto,off}",
        help="xrd: auto = preferred orientation refined in a last refit of the decided phases; off (default)",
    )
    p.add_argument(
        "--internal-standard",
        default=None,
        metavar="NAME=WT%",
        help="xrd: a library phase (name or formula) spiked at WT%% of the sample: amorphous content",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    from labeltune.cli_suggest import add_parser as add_suggest

    add_suggest(sub)

    p = sub.add_parser("export", help="export a run's model to ONNX or TorchScript with a model card")
    p.add_argument("run_dir")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    p.add_argument("--out", required=True, metavar="FILE")
    p.set_defaults(func=cmd_export)

    add_explain_parser(sub)
    from labeltune.cli_distill import add_parser as add_distill_parser

    add_distill_parser(sub)

    p = sub.add_parser(
        "demo", help="write a demo project (corn leaves, reef fish, XRD phases) that ships with the app"
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="corn, fish or xrd (omit to list the demos)")
    p.add_argument("--out", default=None, metavar="DIR", help="default: ./labeltune-demo-NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("gui", help="start the desktop app (also what plain `labeltune` does)")
    p.add_argument("project", nargs="?", metavar="PROJECT", help="project folder to open")
    p.set_defaults(func=cmd_gui)
    p = sub.add_parser("xrd", help="X-ray diffraction: reference libraries from CIF files")
    xsub = p.add_subparsers(dest="xrd_command", required=True, parser_class=_Parser)
    x = xsub.add_parser(
        "library",
        help="compute reference peak lists from CIF files (and measured reference patterns with a "
        "sidecar NAME.json: formula, rir or a corundum mixture) into a library folder",
    )
    x.add_argument("cifs", nargs="+", metavar="CIF_PATTERN_OR_DIR")
    x.add_argument("--out", required=True, metavar="LIBRARY_DIR")
    x.add_argument("--wavelength", type=float, default=1.5406, help="Å (default Cu Kα1 1.5406)")
    x.add_argument("--two-theta", type=float, nargs=2, default=(10.0, 100.0), metavar=("MIN", "MAX"))
    x.add_argument(
        "--names",
        choices=("file", "cif"),
        default="file",
        help="phase names: the CIF file names (default), or the CIFs' mineral name + formula",
    )
    x.add_argument("--json", action="store_true")
    x = xsub.add_parser("simulate", help="simulate labelled multi-phase patterns from a library folder")
    x.add_argument("library", metavar="LIBRARY_DIR")
    x.add_argument("--n", type=int, required=True, metavar="N", help="number of patterns")
    x.add_argument("--max-phases", type=int, default=3, metavar="K", help="phases per pattern, at most")
    x.add_argument("--seed", type=int, default=0, metavar="S")
    x.add_argument("--out", required=True, metavar="DATA_DIR")
    x.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_xrd)

    add_audit_parser(sub)
    return parser


def _add_radiation(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--radiation",
        default=None,
        metavar="LINE",
        help="xrd: what the files were measured with (CuKa, CuKa1, CoKa, MoKa, CrKa, FeKa, AgKa or Å); "
        "a file stating another wavelength is refused",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labeltune`` command."""
    from labeltune.core.allocator import keep_freed_memory

    keep_freed_memory()  # NumPy temporaries of a few MB: no page faults for each (ADR 0072)
    parser = build_parser()
    printable_stdout()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):  # exporter internals, even with --verbose
            logging.getLogger(noisy).setLevel(logging.WARNING)
        if args.self_test:
            return cmd_self_test(args)
        func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
        if func is None:
            if not display_available():
                parser.print_help()
                print(f"\n{NO_DISPLAY_NOTE}")
                return 0
            args.project = None
            func = cmd_gui
        return func(args)
    except LabelTuneError as error:
        sys.stderr.write(f"labeltune: error: {error.cli_message}\n")
        return 2
    except StoppedError:
        sys.stderr.write("labeltune: stopped\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("labeltune: interrupted\n")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # disk full, read-only, folder gone... where no command worded it (ADR 0042)
        from labeltune.core.file_problems import storage_error

        sys.stderr.write(f"labeltune: error: {storage_error(error, action='').cli_message}\n")
        return 2


if __name__ == "__main__":  # `python -m labeltune.cli` as well as `python -m labeltune`
    raise SystemExit(main())
