"""Phase-identification metrics: phases compared by reduced chemical formula.

A label may name a library phase (``TiO2_136``) or only a formula (``TiO2``): measured samples are often
labeled by composition without the polymorph. Both sides are mapped to a canonical reduced formula
(the same ordering the library uses), so ``TiO2_136`` and ``TiO2_141`` both count as ``TiO2``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labeltune.core.xrd.crystal import reduced_formula
from labeltune.core.xrd.library import Library

_TOKEN = re.compile(r"([A-Z][a-z]?|\(|\)|\d+(?:\.\d+)?)")


class FormulaError(ValueError):
    """A label is neither a library phase nor a chemical formula."""


def parse_formula(text: str) -> dict[str, float]:
    """Element counts of a formula such as ``La(OH)3``, ``Li2MnO3`` or ``Mn0.5O`` (raises FormulaError)."""
    compact = text.replace(" ", "")
    tokens = _TOKEN.findall(compact)
    if not compact or "".join(tokens) != compact:
        raise FormulaError(f"not a chemical formula: {text!r}")
    stack: list[dict[str, float]] = [{}]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        mult = 1.0
        if i + 1 < len(tokens) and tokens[i + 1][0].isdigit():
            mult = float(tokens[i + 1])
        if tok == "(":
            stack.append({})
            i += 1
            continue
        if tok == ")":
            if len(stack) == 1:
                raise FormulaError(f"unbalanced parentheses in {text!r}")
            group = stack.pop()
            for el, n in group.items():
                stack[-1][el] = stack[-1].get(el, 0.0) + n * mult
            i += 2 if mult != 1.0 or (i + 1 < len(tokens) and tokens[i + 1][0].isdigit()) else 1
            continue
        if tok[0].isdigit():
            raise FormulaError(f"not a chemical formula: {text!r}")
        stack[-1][tok] = stack[-1].get(tok, 0.0) + mult
        i += 2 if i + 1 < len(tokens) and tokens[i + 1][0].isdigit() else 1
    if len(stack) != 1:
        raise FormulaError(f"unbalanced parentheses in {text!r}")
    return stack[0]


def canonical_formula(text: str) -> str:
    """The reduced formula of ``text`` in the library's element order (raises FormulaError)."""
    formula, _ = reduced_formula(parse_formula(text))
    return formula


def _without_hydrogen(formula: str) -> str:
    counts = {el: n for el, n in parse_formula(formula).items() if el not in ("H", "D")}
    return reduced_formula(counts)[0] if counts else ""


def _formula_matches(token: str, library: Library) -> list[int]:
    """Library indices whose formula is ``token``'s, or failing that equal once hydrogen is left out.

    X-ray CIFs often omit H: a La(OH)3 structure may read as LaO3.
    """
    key = canonical_formula(token)
    keys = [canonical_formula(phase.formula) for phase in library.phases]
    matches = [i for i, k in enumerate(keys) if k == key]
    if not matches:
        bare = _without_hydrogen(key)
        matches = [i for i, k in enumerate(keys) if bare and _without_hydrogen(k) == bare]
    return matches


def label_key(token: str, library: Library | None = None) -> str:
    """The comparison key of one label token.

    A library phase name gives its phase's formula; anything else is read as a formula itself (the
    formula of the library phase it stands for, when the library holds it without hydrogen).
    """
    if library is not None:
        for phase in library.phases:
            if phase.name == token:
                return canonical_formula(phase.formula)
    base = token.split("_")[0] if "_" in token else token
    if library is not None:
        matches = _formula_matches(base, library)
        if matches:
            return canonical_formula(library.phases[matches[0]].formula)
    return canonical_formula(base)


def resolve_label(token: str, library: Library) -> list[int]:
    """Library indices a label token stands for: the phase itself, or every phase with that formula."""
    names = library.names
    if token in names:
        return [names.index(token)]
    matches = _formula_matches(token, library)
    if not matches:
        raise FormulaError(f"{token!r} is neither a phase of the library nor the formula of one")
    return matches


@dataclass
class PhaseSetMetrics:
    """Multi-label metrics by formula key over a set of patterns."""

    n: int
    exact_accuracy: float
    precision: float
    recall: float
    per_phase: dict[str, dict[str, float]] = field(default_factory=dict)
    fraction_mae: float | None = None
    """Mean absolute weight-fraction error in percentage points over (pattern, phase) pairs that are
    labeled or predicted, for patterns whose labels carry fractions; None when none do."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out: dict[str, Any] = {
            "n": self.n,
            "exact_accuracy": round(self.exact_accuracy, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "per_phase": self.per_phase,
        }
        if self.fraction_mae is not None:
            out["fraction_mae_points"] = round(self.fraction_mae, 3)
        return out


def _merge(fractions: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in fractions.items():
        out[key] = out.get(key, 0.0) + float(value)
    return out


def phase_set_metrics(
    truth: Sequence[Iterable[str]],
    predicted: Sequence[Iterable[str]],
    true_fractions: Sequence[Mapping[str, float] | None] | None = None,
    predicted_fractions: Sequence[Mapping[str, float]] | None = None,
) -> PhaseSetMetrics:
    """Metrics from per-pattern sets of formula keys (see :func:`label_key`) and optional fractions.

    Fractions map a key to a weight fraction 0..1; several phases with one key are summed.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    exact = 0
    for t_raw, p_raw in zip(truth, predicted, strict=True):
        t, p = set(t_raw), set(p_raw)
        exact += t == p
        for key in t | p:
            if key in t and key in p:
                tp[key] = tp.get(key, 0) + 1
            elif key in p:
                fp[key] = fp.get(key, 0) + 1
            else:
                fn[key] = fn.get(key, 0) + 1
    per_phase: dict[str, dict[str, float]] = {}
    for key in sorted(set(tp) | set(fp) | set(fn)):
        a, b, c = tp.get(key, 0), fp.get(key, 0), fn.get(key, 0)
        per_phase[key] = {
            "precision": round(a / (a + b), 4) if a + b else 1.0,
            "recall": round(a / (a + c), 4) if a + c else 1.0,
            "support": float(a + c),
        }
    s_tp, s_fp, s_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    mae: float | None = None
    if true_fractions is not None and predicted_fractions is not None:
        errors: list[float] = []
        for tf, pf in zip(true_fractions, predicted_fractions, strict=True):
            if not tf:
                continue
            a_map, b_map = _merge(tf), _merge(pf)
            for key in set(a_map) | set(b_map):
                errors.append(abs(a_map.get(key, 0.0) - b_map.get(key, 0.0)) * 100.0)
        mae = sum(errors) / len(errors) if errors else None
    n = len(truth)
    return PhaseSetMetrics(
        n=n,
        exact_accuracy=exact / n if n else 0.0,
        precision=s_tp / (s_tp + s_fp) if s_tp + s_fp else 1.0,
        recall=s_tp / (s_tp + s_fn) if s_tp + s_fn else 1.0,
        per_phase=per_phase,
        fraction_mae=mae,
    )
