"""Audit section ``explanations``: why the model decides what it decides.

The explained class C is the model's most frequent wrong answer on the test role (the class it
assigns most often to inputs of another label). A handful of test inputs predicted C are
explained — correct ones (true label C) and wrong ones (true label ≠ C) — with DMM-MEN (one
Bayesian mixture fitted on up to 30 inputs predicted C) and LIME (one local model per input),
through :func:`deepscope.explain.compare.side_by_side`. The result keeps, per method, the top-k
feature mask of each shown input, so the report draws them side by side without recomputing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepscope.audit.inputs import AuditInputs
from deepscope.audit.result import SectionResult
from deepscope.audit.spec import AuditConfig, Costs, register_section
from deepscope.explain import compare
from deepscope.models import predict_logits

__all__ = ["explanations_section"]

METHODS = ("dmm-men", "lime")
#: Correct and wrong predictions shown; inputs DMM-MEN is fitted on; top-k features drawn.
N_CORRECT, N_WRONG, N_FIT, TOP_K = 3, 3, 30, 20


def _applies(inputs: AuditInputs) -> str | None:
    if not inputs.is_image:
        return "the explanations drawn here are pixel-cell overlays; the data is not images"
    return None


def _estimate(inputs: AuditInputs, config: AuditConfig, costs: Costs) -> float:
    n_fit = config.count(N_FIT, low=8)
    lime_queries = (N_CORRECT + N_WRONG) * 1000
    return (n_fit * 500 + lime_queries) * costs.forward + 10.0


def _pick(pred: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[int, torch.Tensor,
                                                                    torch.Tensor]:
    """The explained class and the indices of its correct and wrong predictions."""
    wrong = pred != y
    k = int(max(int(pred.max()), int(y.max())) + 1)
    into = torch.bincount(pred[wrong], minlength=k) if wrong.any() else torch.bincount(
        pred, minlength=k)
    target = int(into.argmax())
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g)
    correct_idx = order[(pred[order] == target) & (y[order] == target)]
    wrong_idx = order[(pred[order] == target) & (y[order] != target)]
    return target, correct_idx, wrong_idx


@register_section("explanations", "Explanations (DMM-MEN vs LIME)", applies=_applies,
                  estimate=_estimate)
def explanations_section(inputs: AuditInputs, config: AuditConfig, memo: dict[str, Any]
                         ) -> SectionResult:
    """DMM-MEN and LIME top features of a few correct and wrong predictions of one class."""
    test = inputs.test
    pred = predict_logits(inputs.model, test.x).argmax(1)
    target, correct_idx, wrong_idx = _pick(pred, test.y, config.seed)
    shown = torch.cat([correct_idx[:N_CORRECT], wrong_idx[:N_WRONG]])
    if len(shown) == 0:
        return SectionResult.skipped("explanations", "the model predicts no test input as the "
                                                     "explained class")
    n_fit = config.count(N_FIT, low=8)
    fit_idx = torch.cat([correct_idx, wrong_idx])[:n_fit]
    fit_x = torch.cat([test.x[shown], test.x[fit_idx]])
    result = compare.side_by_side(inputs.model, test.x[shown], target, METHODS, fit_x=fit_x,
                                  seed=config.seed, progress=config.progress)
    arrays: dict[str, np.ndarray] = {"x": np.asarray(result.x), "y": test.y[shown].numpy(),
                                     "pred": pred[shown].numpy()}
    timing = {}
    k = max(1, min(TOP_K, result.runs[0].explanation.n_features // 4))
    for run in result.runs:
        exp = run.explanation
        arrays[f"mask/{run.method}"] = np.stack(
            [exp[i].feature_mask(k)[0].any(axis=0) for i in range(len(shown))])
        timing[run.method] = {"seconds": run.seconds, "queries": run.queries}
    n_c, n_w = int(min(len(correct_idx), N_CORRECT)), int(min(len(wrong_idx), N_WRONG))
    name = inputs.classes[target]
    summary = {"target": target, "name": name, "k": k, "cell": result.cell,
               "n_correct": n_c, "n_wrong": n_w, "n_fit": len(fit_x),
               "n_predicted": int((pred == target).sum()), "methods": timing,
               "agreement": _agreement(arrays)}
    agree = summary["agreement"]
    finding = (f"The model's most frequent wrong answer is {name!r}: {n_c} correct and {n_w} "
               f"wrong predictions of it are explained; DMM-MEN and LIME share "
               f"{agree:.0%} of their top-{k} features on average (n = {len(shown)} inputs).")
    return SectionResult("explanations", "ok", finding, summary=summary, arrays=arrays)


def _agreement(arrays: dict[str, np.ndarray]) -> float:
    """Mean share of DMM-MEN's top-k pixels that LIME marks too, over the shown inputs."""
    a, b = arrays[f"mask/{METHODS[0]}"], arrays[f"mask/{METHODS[1]}"]
    inter = (a & b).reshape(len(a), -1).sum(1)
    size = np.maximum(a.reshape(len(a), -1).sum(1), 1)
    return float(np.mean(inter / size))
