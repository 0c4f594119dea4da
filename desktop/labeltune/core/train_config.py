"""The settings of an image training run (:class:`TrainConfig`) and their validation; no torch import.

The GUI builds a :class:`TrainConfig` in its own thread and hands it to the training worker, so this module
must stay cheap to import: ``tests/core/test_train_config.py`` checks that importing it leaves ``torch``
out of ``sys.modules``.
"""

from __future__ import annotations

from dataclasses import dataclass

from labeltune.core.backbones import DEFAULT_BACKBONE, get_spec
from labeltune.core.errors import UnusableInputError
from labeltune.core.grouping import GroupingSpec

STRATEGIES = ("features", "partial", "full")
#: The head's learning rate (full fine-tuning: the backbone gets ``backbone_lr_factor`` of it).
DEFAULT_LR = {"features": 1e-3, "partial": 1e-3, "full": 1e-3}
#: Epochs when none are given. A features epoch is a few milliseconds, and ten of them (30 steps on a
#: 120-image project) left the linear head short of where it converges: 0.86 vs 0.92 on the corn demo.
DEFAULT_EPOCHS = {"features": 30, "partial": 10, "full": 10}


@dataclass
class TrainConfig:
    """The user's choices for one run (stored in the run's ``config.json``)."""

    backbone: str = DEFAULT_BACKBONE
    strategy: str = "features"
    weights: str = "imagenet"
    epochs: int = 0  # 0: the strategy's default (DEFAULT_EPOCHS)
    batch_size: int = 32
    #: The batch size was not given: partial/full compute each step in the largest micro-batches that a
    #: probe step finds fit the free memory, gradients accumulated (core/memory_probe.py, docs/adr/0050).
    batch_auto: bool = False
    lr: float | None = None  # None: the strategy's default
    backbone_lr_factor: float = 0.1  # full fine-tuning: backbone learns this much slower than the head
    #: Full fine-tuning of pretrained weights keeps BatchNorm statistics as pretrained (None: frozen
    #: then, trained from random weights); see docs/adr/0018-full-fine-tuning-frozen-batchnorm.md.
    freeze_batchnorm: bool | None = None
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    folds: int = 0  # >= 2: k-fold cross-validation, validating on fold ``fold`` (0-based) instead
    fold: int = 0
    group_by: str | None = None  # a grouping spec (core/grouping.py); None: the import's groups, if any
    seed: int = 0
    device: str = "auto"
    input_size: int | None = None  # None: the backbone's own (299 for Inception-v3, else 224)
    head_hidden: int = 0  # 0: linear head; >0: MLP with one hidden layer of this width
    augment: bool = True  # partial/full on images; features only through cached_views
    cached_views: int = 0  # augmented views per image cached for features/partial
    patience: int = 5  # early stopping after this many epochs without improvement (0: off)
    class_balanced: bool = True
    threads: int | None = None
    #: Add classes to this run (core/add_classes.py, docs/adr/0053): its network frozen, the head extended.
    init: str | None = None
    #: Distil these runs into this one (core/distill.py, docs/adr/0054): their averaged soft targets at
    #: ``distill_temperature``, weighted ``1 - distill_alpha`` against the labels' cross-entropy.
    teachers: list[str] | None = None
    distill_temperature: float = 4.0
    distill_alpha: float = 0.5
    #: Weight of the teachers' pooled features as targets (a projection of the student's, MSE; docs/adr/0062).
    distill_feature_weight: float = 0.0
    #: ``auto``: mixed precision where the device runs it fast (bf16 autocast on a CPU that has it, fp16
    #: AMP on CUDA) for partial/full; ``fp32``: off (docs/adr/0050). ``precision_used`` is what it resolved
    #: to on the run's device, recorded in config.json.
    precision: str = "auto"
    precision_used: str | None = None

    def __post_init__(self) -> None:
        if not self.epochs:
            self.epochs = DEFAULT_EPOCHS.get(self.strategy, 10)

    def resolved_lr(self) -> float:
        """The learning rate to use."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.strategy]

    def validate(self) -> None:
        """Raise :class:`UnusableInputError` for settings that cannot work."""
        get_spec(self.backbone)
        if self.strategy not in STRATEGIES:
            raise UnusableInputError(
                f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise UnusableInputError(
                "the number of epochs and the batch size must be at least 1",
                cli="--epochs and --batch-size must be at least 1",
            )
        if self.lr is not None and not (0 < self.lr < 10):
            raise UnusableInputError(
                f"the learning rate {self.lr} is out of range (0, 10)",
                cli=f"--lr {self.lr} is out of range (0, 10)",
            )
        if self.folds and not (2 <= self.folds <= 100 and 0 <= self.fold < self.folds):
            raise UnusableInputError(
                f"cross-validation needs 2 to 100 folds (got {self.folds}) and a validation fold among them"
            )
        if self.input_size is not None and self.input_size < 16:
            raise UnusableInputError("input size must be at least 16 px")
        if self.teachers is not None and not (self.distill_temperature > 0 and 0 <= self.distill_alpha <= 1):
            raise UnusableInputError("distillation needs a temperature > 0 and a label weight in [0, 1]")
        if self.teachers is not None and not 0 <= self.distill_feature_weight <= 100:
            raise UnusableInputError(
                "the feature loss's weight must be in [0, 100]", cli="--feature-loss must be in [0, 100]"
            )
        if self.precision not in ("auto", "fp32"):
            raise UnusableInputError(
                f"unknown precision {self.precision!r}; use auto or fp32", cli="--precision: use auto or fp32"
            )
        GroupingSpec.parse(self.group_by)
