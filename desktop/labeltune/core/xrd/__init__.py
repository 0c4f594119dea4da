"""Powder X-ray diffraction (XRD), Qt-free: measured patterns, their readers, and XRD computations.

`labeltune.core.xrd.readers.read_pattern` turns a file (text/xy, RRUFF, PANalytical ``.xrdml``,
Rigaku ``.ras``/``.rasx``, Bruker RAW v4, pdCIF) into one `labeltune.core.xrd.pattern.Pattern`.
"""
