"""Issue 12: a stored audit of an XRD project compares phase sets as sets and says them as "A + B"."""

from __future__ import annotations

from pathlib import Path

from labeltune.core import demos
from labeltune.core.audit_run import xrd_label_text
from labeltune.core.audit_store import DUPLICATES, LABEL_ERRORS, AuditFindings, load_findings, save_report

REPORT = {
    "label_issues": [{"path": "/p/a.xy", "label": "A;B", "suggested": "A;C", "score": 0.91}],
    "duplicates": [{"paths": ["/p/a.xy", "/p/a_2.xy"], "similarity": 0.999, "kind": "cross_class"}],
    "multilabel": True,
}


def test_phase_sets_are_compared_as_sets_and_said_in_words(tmp_path: Path) -> None:
    save_report(tmp_path, REPORT)
    findings = load_findings(tmp_path)
    assert findings is not None and findings.multilabel
    assert findings.keeps(LABEL_ERRORS, "/p/a.xy", "B;A")  # the same set, in another order
    assert not findings.keeps(LABEL_ERRORS, "/p/a.xy", "A;C")  # fixed: leaves the list
    assert findings.keeps(DUPLICATES, "/p/a_2.xy", "")
    said = findings.describe("/p/a.xy", "B;A")
    assert said.startswith("labeled A + B; looks like A + C (likely label error #1, score 0.91); ")
    assert "labeled differently (2 items, similarity 0.999)" in said
    single = AuditFindings.from_json(tmp_path, {**REPORT, "multilabel": False})
    assert not single.keeps(LABEL_ERRORS, "/p/a.xy", "B;A")  # image classes are compared as written
    assert single.describe("/p/a.xy", "A;B").startswith("looks like A;C (likely")


def test_a_formula_label_reads_as_the_phase_the_audit_reads(tmp_path: Path) -> None:
    from labeltune.core.xrd.xrd_project import XrdProject

    library = XrdProject.open(demos.write_demo("xrd", tmp_path / "demo")).library()
    assert [n for n in library.names if n.startswith("MnO_")] == ["MnO_186", "MnO_225"]
    assert xrd_label_text(("TiO2_136", "MnO"), library) == "MnO_186;TiO2_136"  # library order
    assert xrd_label_text(("MnO", "Unobtainium"), library) == "MnO;Unobtainium"  # unknown: as written
