"""XRD jobs in worker threads: phase identification of patterns, and fine-tuning the XRD network.

Both import torch-using core modules inside :meth:`work`, so the window opens without loading torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.xrd.train_config import XrdTrainConfig
from labeltune.workers.tasks import Worker
from labeltune.workers.training import SignalCallback

if TYPE_CHECKING:
    from labeltune.core.xrd.results import XrdPrediction


@dataclass
class XrdPredictOutcome:
    """What an identification run returns: one prediction per readable pattern, and the skipped files."""

    run_dir: Path
    predictions: list[XrdPrediction]
    skipped: list[tuple[str, str]] = field(default_factory=list)


class XrdPredictWorker(Worker):
    """Identifies the phases in patterns with the XRD model in ``run_dir`` (fit and activation included)."""

    def __init__(
        self,
        run_dir: Path,
        paths: Sequence[Path],
        wavelength: float | None,
        *,
        fit: bool = True,
        activation: bool = True,
        internal_standard: tuple[str, float] | None = None,
        particle_size: float | None = None,
        texture: bool = False,
    ) -> None:
        super().__init__()
        self.texture = texture
        """Texture in the final refit of the decided phases, as ``--texture auto`` (default off)."""
        self.particle_size = particle_size
        """Grain diameter (µm): fitted fractions corrected for microabsorption, as ``--particle-size``."""
        self.internal_standard = internal_standard
        """(library phase or formula, weight fraction spiked): absolute fractions and amorphous content."""
        self.run_dir = Path(run_dir)
        self.paths = [Path(p) for p in paths]
        self.wavelength = wavelength
        self.fit = fit
        self.activation = activation

    def work(self) -> XrdPredictOutcome:
        """Run :func:`labeltune.core.xrd.inference.predict_patterns`."""
        from labeltune.core.xrd.inference import predict_patterns

        predictions, skipped = predict_patterns(
            self.run_dir,
            self.paths,
            default_wavelength=self.wavelength,
            fit=self.fit,
            activation=self.activation,
            progress=self.report,
            stop_event=self.stop_event,
            internal_standard=self.internal_standard,
            particle_size=self.particle_size,
            texture=self.texture,
        )
        return XrdPredictOutcome(self.run_dir, list(predictions), list(skipped))


class XrdTrainWorker(Worker):
    """Fine-tunes (or trains) the XRD network; reports ``TrainingStarted`` and each epoch.

    The same :class:`~labeltune.workers.training.SignalCallback` as image training does the reporting.
    """

    def __init__(
        self,
        data_dir: Path,
        init_run: Path | None,
        out_dir: Path,
        config: XrdTrainConfig | None = None,
        *,
        wavelength: float | None = None,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)
        self.init_run = None if init_run is None else Path(init_run)
        self.out_dir = Path(out_dir)
        self.config = config if config is not None else XrdTrainConfig()
        self.wavelength = wavelength  # for measured files that do not state theirs

    def work(self) -> Any:
        """Run :func:`labeltune.core.xrd.training.train_xrd`; returns its ``XrdRunResult``."""
        from labeltune.core.xrd.training import train_xrd

        config = self.config
        if self.init_run is not None:
            config = dataclasses.replace(config, init=self.init_run)
        return train_xrd(
            self.data_dir,
            config,
            self.out_dir,
            progress=self.report,
            stop_event=self.stop_event,
            callbacks=[SignalCallback(self)],
            default_wavelength=self.wavelength,
        )
