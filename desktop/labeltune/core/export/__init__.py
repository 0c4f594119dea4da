"""Export a finished run's model to ONNX or TorchScript, check it, and write a model card beside it.

The exported model takes ``image``, float32 RGB in ``[0, 1]`` with shape ``(N, 3, S, S)`` (any ``N``),
normalises inside (see :mod:`labeltune.core.model`), and returns, in this order:

* ``logits`` over the run's classes in the order of ``config.classes``;
* ``probabilities``: the *calibrated* confidence, ``softmax(logits / T)`` with the run's fitted temperature
  (core/calibration.py), the same numbers ``labeltune predict`` reports;
* ``ood_score`` (runs that have one): how unlike the training images the input is; above 1 it is
  *unfamiliar* (core/familiarity.py). The densities and the threshold are constants inside the model.

Both formats have these outputs: ONNX (opset 18, one self-contained ``.onnx`` file, dynamic batch axis,
made by the ``torch.export``-based exporter, which needs *onnxscript*, with the legacy TorchScript-based
exporter as a fallback) as named outputs, TorchScript (``torch.jit.trace``, saved with ``torch.jit.save``;
``torch.jit`` is deprecated in recent PyTorch, its warnings are silenced here) as a tuple.

Both files embed a small JSON description (classes, input size, preprocessing, mean/std, outputs,
temperature): in ONNX as the ``labeltune`` metadata property, in TorchScript as the extra file
``labeltune.json``.

After writing, the file is loaded back with its own runtime (onnxruntime, ``torch.jit.load``) and run on a
fixed random batch; if its logits differ from PyTorch's by more than ``RTOL * max(1, max |logit|)`` (or its
other outputs by more than what that explains) the file is deleted and :class:`LabelTuneError` is raised.
The model card is ``<out>.card.json`` (machine readable) and ``<out>.card.md`` (for people); it carries the
temperature and the unfamiliar-score statistics.
"""

from labeltune.core.export.card import (
    CARD_VERSION,
    MANIFEST_FILE,
    METRICS_FILE,
    PREPROCESSING_DESCRIPTIONS,
    build_card,
)
from labeltune.core.export.card_markdown import REPRESENTATION_WORDS, render_card_markdown
from labeltune.core.export.exporter import ExportResult, export_model
from labeltune.core.export.formats import (
    FORMATS,
    ONNX_INPUT,
    ONNX_OPSET,
    ONNX_OUTPUTS,
    OOD_OUTPUT,
    OOD_RTOL,
    PROB_ATOL,
    RTOL,
    VERIFY_BATCHES,
    VERIFY_SEED,
)

__all__ = [
    "CARD_VERSION",
    "FORMATS",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "ONNX_INPUT",
    "ONNX_OPSET",
    "ONNX_OUTPUTS",
    "OOD_OUTPUT",
    "OOD_RTOL",
    "PREPROCESSING_DESCRIPTIONS",
    "PROB_ATOL",
    "REPRESENTATION_WORDS",
    "RTOL",
    "VERIFY_BATCHES",
    "VERIFY_SEED",
    "ExportResult",
    "build_card",
    "export_model",
    "render_card_markdown",
]
