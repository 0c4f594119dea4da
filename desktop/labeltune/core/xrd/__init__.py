"""Powder X-ray diffraction (XRD), Qt-free: measured patterns, their readers, and XRD computations.

`labeltune.core.xrd.readers.read_pattern` turns a file (text/xy/xye, RRUFF, PANalytical ``.xrdml``,
Rigaku ``.ras``/``.rasx``, Bruker RAW v1-v4/UXD/BRML, RIET7/LHPM/ILL/PSI ``.dat``, GSAS, Philips RD/UDF,
Sietronics CPI, pdCIF) into one `labeltune.core.xrd.pattern.Pattern` (ADR 0045).
"""
