"""Qt-free engine of LabelTune."""
