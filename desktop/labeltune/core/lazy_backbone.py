"""A *features* run's classifier whose frozen backbone is built only when a step needs pixels.

A cached re-run (another learning rate on images whose pooled features are in the feature cache) trains
only the head, yet building DenseNet-201 and reading its ImageNet weights took longer than the head's whole
training, and torchvision's import pulls in ``torch._dynamo`` (docs/adr/0059). So the first run that builds
a backbone from ImageNet (or file) weights also writes its frozen part (``normalize``, ``trunk``, ``top``,
in the run folder's key names, plus the probe widths) once to the cache, ``<cache>/backbones/``; later
*features* runs with the same backbone and weights build only the head (:class:`LazyClassifier`):

* ``model.normalize`` / ``model.trunk`` / ``model.top`` build the backbone from that file the first time
  they are used (new images to extract, an export), without any initialisation (``meta_build``);
* ``state_dict()`` of a classifier never built is that file's tensors plus the head's, so the run folder's
  ``model.safetensors`` is the same as an eagerly built model's and ``predict``/``export``/``explain``
  read it as before;
* :attr:`LazyClassifier.known_probe_dims` answers :func:`labeltune.core.probes.probe_dims` without a pass.

The head is built exactly as before (the backbone's construction from pretrained weights draws no random
numbers), so a lazy run trains the same head and predicts the same as an eager one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeltune.core.backbones import build_architecture, get_spec, meta_build, split_backbone

if TYPE_CHECKING:
    import torch
    from torch import nn

    from labeltune.core.model import ModelConfig

log = logging.getLogger(__name__)

FORMAT = "labeltune-frozen-backbone-1"
#: The parts of a classifier that a *features* run keeps frozen, in the order of its state dict.
FROZEN_PARTS = ("normalize", "trunk", "top")


def frozen_file(cache_root: Path, backbone: str, weights_id: str) -> Path:
    """Where the frozen part of ``backbone`` with the weights ``weights_id`` is kept in the cache."""
    digest = hashlib.sha256(f"{FORMAT}|{backbone}|{weights_id}".encode()).hexdigest()[:20]
    return Path(cache_root) / "backbones" / f"{backbone}-{digest}.safetensors"


def pretrained_weights_id(backbone: str, choice: str) -> str | None:
    """The id :func:`~labeltune.core.weights.resolve_weights` gives ``choice``, without reading the weights.

    ``None`` where it cannot be had cheaply: random weights (their BatchNorm is calibrated on the data),
    ImageNet weights not downloaded yet, a file that is not there.
    """
    from labeltune.core.hashing import file_sha256
    from labeltune.core.weights import weights_present, weights_sha256

    key = choice.strip().lower()
    try:
        if key == "imagenet":
            if not weights_present(backbone):
                return None
            spec = get_spec(backbone)
            return f"imagenet-{weights_sha256(backbone)[: max(len(spec.sha256_prefix), 8)]}"
        if key == "none":
            return None
        path = Path(choice).expanduser()
        return f"file-{file_sha256(path)[:12]}" if path.is_file() else None
    except OSError:
        return None


def frozen_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The frozen parts' tensors of a built classifier, contiguous on the CPU (the run folder's names)."""
    return {
        k: v.detach().contiguous().cpu()
        for k, v in model.state_dict().items()
        if k.split(".", 1)[0] in FROZEN_PARTS
    }


def remember_frozen(path: Path, model: nn.Module, backbone: str, input_size: int) -> None:
    """Write ``model``'s frozen part and its probe widths to ``path`` (once; a failure only logs)."""
    if path.is_file():
        return
    from safetensors.torch import save_file

    from labeltune.core.atomic import write_atomic
    from labeltune.core.probes import probe_dims

    try:
        dims = probe_dims(model, backbone, input_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = frozen_state(model)
        metadata = {"format": FORMAT, "backbone": backbone, "probe_dims": json.dumps(list(dims))}
        write_atomic(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    except OSError as error:  # a full or read-only cache: the next run builds the backbone again
        log.info("could not keep the frozen backbone in %s: %s", path, error)


def read_probe_dims(path: Path) -> tuple[int, ...] | None:
    """The probe widths stored with a frozen part (``None``: unreadable, or not one of ours)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("format") != FORMAT:
            return None
        return tuple(int(d) for d in json.loads(meta["probe_dims"]))
    except Exception:  # damaged or foreign file: built eagerly instead
        return None


def _load_frozen(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return dict(load_file(str(path), device="cpu"))


def build_frozen_parts(config: ModelConfig, state: dict[str, torch.Tensor]) -> dict[str, nn.Module]:
    """``normalize``, ``trunk`` and ``top`` of ``config``'s backbone holding ``state`` (no initialisation)."""
    from labeltune.core.model import _modules

    normalize_cls, _ = _modules()
    with meta_build():
        parts = split_backbone(config.backbone, build_architecture(config.backbone))
        normalize = normalize_cls(config.mean, config.std)
    modules: dict[str, nn.Module] = {"normalize": normalize, "trunk": parts.trunk, "top": parts.top}
    for name, module in modules.items():
        prefix = name + "."
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        module.load_state_dict(own, strict=True, assign=True)
        module.requires_grad_(False)
    return modules


def _lazy_class() -> type:
    import torch
    from torch import nn

    class LazyClassifier(nn.Module):
        """``head(top(trunk(normalize(x))))`` whose frozen parts come from a cached file on first use."""

        def __init__(self, config: ModelConfig, head: nn.Module, path: Path, dims: tuple[int, ...]) -> None:
            super().__init__()
            self.head = head
            self._config, self._path = config, path
            #: The probe widths (core/probes.py ``probe_dims``) without running the backbone.
            self.known_probe_dims = dims

        @property
        def backbone_built(self) -> bool:
            """Whether the frozen parts have been built (a step needed pixels)."""
            return "trunk" in self._modules

        def __getattr__(self, name: str) -> Any:
            if name in FROZEN_PARTS and "_modules" in self.__dict__ and name not in self._modules:
                self._build()
            return super().__getattr__(name)

        def _build(self) -> None:
            parts = build_frozen_parts(self._config, _load_frozen(self._path))
            device = next(self.head.parameters()).device
            head = self._modules.pop("head")
            for name, module in parts.items():  # the eager model's order: normalize, trunk, top, head
                self._modules[name] = module.to(device)
            self._modules["head"] = head
            log.info("built the frozen %s from %s", self._config.backbone, self._path)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.top(self.trunk(self.normalize(x))))

        def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            """The classifier's state; the frozen parts' from the cached file while they are not built."""
            if self.backbone_built or args or kwargs:
                if not self.backbone_built:
                    self._build()
                return super().state_dict(*args, **kwargs)
            state: dict[str, torch.Tensor] = dict(_load_frozen(self._path))
            state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
            return state

    del torch
    return LazyClassifier


def lazy_classifier(config: ModelConfig, path: Path, dims: tuple[int, ...]) -> nn.Module:
    """A classifier for ``config`` with its head built now and its frozen parts from ``path`` when used."""
    from labeltune.core.model import make_head

    spec = get_spec(config.backbone)
    head = make_head(spec.feature_dim, len(config.classes), config.head_hidden, config.head_dropout)
    model: nn.Module = _lazy_class()(config, head, path, dims)
    return model


def is_unbuilt(model: Any) -> bool:
    """Whether ``model`` is a :class:`LazyClassifier` whose frozen parts are not built yet."""
    return getattr(model, "backbone_built", True) is False


def frozen_modules(model: Any) -> list[nn.Module]:
    """``model``'s normalize, trunk and top as far as they are built (none of an unbuilt lazy one)."""
    if is_unbuilt(model):
        return []
    return [model.normalize, model.trunk, model.top]


def lazy_module(factory: Callable[[], nn.Module]) -> nn.Module:
    """A module that calls ``factory`` the first time it is moved, switched to eval/train or run."""
    from torch import nn

    class LazyModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._factory: Callable[[], nn.Module] | None = factory

        def _inner(self) -> nn.Module:
            if self._factory is not None:
                self.inner = self._factory()
                self._factory = None
            return self.inner

        def train(self, mode: bool = True) -> LazyModule:
            self._inner()
            return super().train(mode)

        def _apply(self, fn: Any, recurse: bool = True) -> LazyModule:
            self._inner()
            return super()._apply(fn, recurse)  # type: ignore[no-any-return]

        def forward(self, *args: Any) -> Any:
            return self._inner()(*args)

    return LazyModule()


def _frozen_path(job: Any) -> Path | None:
    """The cache file of ``job``'s frozen part where a lazy backbone can serve it (``None``: build it)."""
    from labeltune.core.features import default_cache_root

    config = job.config
    if config.strategy != "features" or config.init or config.teachers:
        return None
    weights_id = pretrained_weights_id(config.backbone, config.weights)
    if weights_id is None:
        return None
    root = Path(job.cache_root) if job.cache_root is not None else default_cache_root()
    return frozen_file(root, config.backbone, weights_id)


def build_lazy(job: Any) -> tuple[nn.Module, ModelConfig, str] | None:
    """A *features* job's classifier with a lazy backbone, its config and weights id; ``None``: build it.

    Only where the cache holds the frozen part of the job's backbone and weights (:func:`remember`).
    """
    from labeltune.core.model import ModelConfig

    path = _frozen_path(job)
    if path is None or not path.is_file():
        return None
    dims = read_probe_dims(path)
    if dims is None:
        return None
    config = job.config
    if config.freeze_batchnorm is None:  # as the eager build records it
        config.freeze_batchnorm = False
    model_config = ModelConfig.for_backbone(config.backbone, job.data.classes, config.input_size)
    model_config.head_hidden = config.head_hidden
    weights_id = pretrained_weights_id(config.backbone, config.weights)
    assert weights_id is not None
    return lazy_classifier(model_config, path, dims), model_config, weights_id


def remember(job: Any, model: nn.Module, model_config: ModelConfig, weights_id: str) -> None:
    """After an eager build of a *features* job: keep the frozen part for the next runs' lazy builds."""
    path = _frozen_path(job)
    if path is not None and pretrained_weights_id(job.config.backbone, job.config.weights) == weights_id:
        remember_frozen(path, model, job.config.backbone, model_config.input_size)
