"""LabelTune: label data and fine-tune pretrained networks on it, offline."""

__version__ = "0.1.0"
