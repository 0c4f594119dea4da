"""Which backbones' ImageNet weights are here (shipped with LabelTune or in the store), and from where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labeltune.core.weights.bundled import _bundled_source, _known_sha256, bundled_weights_file
from labeltune.core.weights.sources import weights_url
from labeltune.core.weights.store import read_store_metadata, weights_path


@dataclass(frozen=True)
class WeightsInfo:
    """Whether the ImageNet weights of one backbone are in the store, and where they come from."""

    name: str
    present: bool
    #: Where the stored file is (or will be once downloaded or imported).
    path: Path
    url: str
    download_mb: float
    #: The URL or imported file name the stored weights came from; ``None`` when absent.
    source: str | None = None
    #: sha256 of the original (downloaded or imported) file; ``None`` when absent.
    sha256: str | None = None


def weights_present(name: str) -> bool:
    """Return whether the ImageNet weights of ``name`` are here: shipped with LabelTune or in the store."""
    return bundled_weights_file(name) is not None or weights_path(name).is_file()


def best_present_backbone() -> str:
    """The most accurate backbone (ImageNet top-1) whose weights are here; the default one otherwise.

    Of the bundled networks only the default counts: Lite1/Lite2 ship as distillation teachers and would
    otherwise make every new install preselect the slowest of the three (docs/adr/0062).
    """
    from labeltune.core.backbones import BACKBONES, DEFAULT_BACKBONE

    present = [
        spec
        for spec in BACKBONES.values()
        if (spec.name == DEFAULT_BACKBONE or not spec.bundled) and weights_present(spec.name)
    ]
    if not present:
        return DEFAULT_BACKBONE
    return max(present, key=lambda spec: (spec.imagenet_top1, -spec.gflops)).name


def list_weights() -> list[WeightsInfo]:
    """Return one :class:`WeightsInfo` per known backbone, in registry order."""
    from labeltune.core.backbones import BACKBONES

    infos = []
    for name, spec in BACKBONES.items():
        bundled = bundled_weights_file(name)
        if bundled is not None:
            infos.append(
                WeightsInfo(
                    name=name,
                    present=True,
                    path=bundled,
                    url=spec.weights_url,
                    download_mb=0.0,
                    source=_bundled_source(name, bundled),
                    sha256=_known_sha256(name, bundled),
                )
            )
            continue
        path = weights_path(name)
        present = path.is_file()
        meta = read_store_metadata(path) if present else {}
        infos.append(
            WeightsInfo(
                name=name,
                present=present,
                path=path,
                url=weights_url(name),
                download_mb=spec.weights_mb,
                source=meta.get("source") if present else None,
                sha256=meta.get("sha256") if present else None,
            )
        )
    return infos
