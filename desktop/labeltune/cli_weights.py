"""``labeltune backbones`` and ``labeltune weights``: the pretrained networks and their ImageNet weights."""

from __future__ import annotations

import argparse

from labeltune.cli_output import emit_json, progress_bar, stop_on_ctrl_c


def cmd_backbones(args: argparse.Namespace) -> int:
    """List the backbones."""
    from labeltune.core.backbones import BACKBONES
    from labeltune.core.weights import weights_present

    rows = []
    for spec in BACKBONES.values():
        row = spec.to_json()
        row["weights_present"] = weights_present(spec.name)
        rows.append(row)
    if args.json:
        emit_json(rows)
        return 0
    print(f"{'name':<20}{'input':>6}{'features':>10}{'top-1':>7}{'GFLOPs':>8}{'download':>10}  weights")
    for row in rows:
        present = "present" if row["weights_present"] else "not downloaded"
        print(
            f"{row['name']:<20}{row['input_size']:>6}{row['feature_dim']:>10}{row['imagenet_top1']:>7}"
            f"{row['gflops']:>8}{row['download_mb']:>8.0f}MB  {present}"
        )
        print(f"    {row['description']}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """List, download or import pretrained weights."""
    from labeltune.core import weights

    if args.weights_command == "list":
        infos = weights.list_weights()
        if args.json:
            emit_json([{**info.__dict__, "path": str(info.path)} for info in infos])
        else:
            for info in infos:
                if info.present:
                    state = f"present, {info.source or 'imported'} ({info.path})"
                else:
                    state = (
                        f"not downloaded ({info.download_mb:.0f} MB; labeltune weights download {info.name})"
                    )
                print(f"{info.name:<20}{state}")
        return 0
    if args.weights_command == "download":
        bundled = weights.bundled_weights_file(args.name)
        if bundled is not None:
            print(f"{args.name}: the ImageNet weights ship with LabelTune, nothing to download ({bundled})")
            return 0
        with progress_bar(True) as progress, stop_on_ctrl_c() as stop:
            path = weights.download_weights(args.name, progress=progress, stop_event=stop)
        print(f"{args.name}: ImageNet weights stored in {path}")
        return 0
    path = weights.import_weights(args.name, args.file)
    print(f"{args.name}: weights validated and stored in {path}")
    return 0
