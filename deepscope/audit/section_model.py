"""Audit section ``model``: the model card (architecture, parameters, input, classes, accuracy,
per-label accuracy, confusion matrix on all held-out data)."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepscope.audit.inputs import AuditInputs
from deepscope.audit.result import SectionResult
from deepscope.audit.spec import AuditConfig, Costs, register_section
from deepscope.models import evaluate

__all__ = ["layer_summary", "model_card"]


def layer_summary(model: Any, *, limit: int = 40) -> list[dict[str, Any]]:
    """Leaf modules by dotted name with their type and parameter count (first ``limit``)."""
    rows = []
    for name, mod in model.named_modules():
        if name and not list(mod.children()):
            n = sum(p.numel() for p in mod.parameters(recurse=False))
            rows.append({"layer": name, "type": getattr(mod, "original_name", None)
                         or type(mod).__name__, "parameters": int(n)})
    return rows[:limit]


def _estimate(inputs: AuditInputs, config: AuditConfig, costs: Costs) -> float:
    return len(inputs.data) * costs.forward


def _finding(acc: float, per_label: np.ndarray, classes: tuple[str, ...], counts: np.ndarray,
             n: int) -> str:
    have = ~np.isnan(per_label)
    worst = int(np.nanargmin(per_label)) if have.any() else 0
    mean = float(np.nanmean(per_label)) if have.any() else float("nan")
    return (f"The model classifies {acc:.1%} of {n:,} held-out samples correctly; its weakest "
            f"label is {classes[worst]!r} at {per_label[worst]:.1%} (n = {int(counts[worst])}) "
            f"against a per-label mean of {mean:.1%}.")


@register_section("model", "Model card", applies=lambda inputs: None, estimate=_estimate)
def model_card(inputs: AuditInputs, config: AuditConfig, memo: dict[str, Any]) -> SectionResult:
    """Accuracy, per-label accuracy and the confusion matrix on all held-out data."""
    ev = evaluate(inputs.model, inputs.data)
    counts = ev.confusion.sum(axis=1)
    per_label = {name: {"accuracy": None if np.isnan(a) else float(a), "n": int(c)}
                 for name, a, c in zip(inputs.classes, ev.per_label, counts, strict=True)}
    summary = {**inputs.model_dict(), "accuracy": ev.accuracy, "n": ev.n, "loss": ev.loss,
               "per_label": per_label, "layers": layer_summary(inputs.model),
               "data": inputs.data_dict()}
    return SectionResult("model", "ok", _finding(ev.accuracy, ev.per_label, inputs.classes,
                                                 counts, ev.n),
                         summary=summary, arrays={"confusion": ev.confusion,
                                                  "per_label": ev.per_label})
