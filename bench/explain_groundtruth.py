"""Ground truth of the explanation benchmark: top-k precision on gated black boxes.

Boxes (:func:`deepscope.explain.groundtruth.default_boxes`): tabular with signed weights and 1-3
gates, and int64 41-token sequences with scattered or contiguous relevant offsets. Every
explainer spends :data:`BUDGET` queries per explained input; ``k`` = the number of features the
region's rule reads (precision = recall). Two truths: the rule's features ("rule"), and the rule's
features plus the open gates ("rule + gates": the gates whose nullification switches the
region, which do change the output). DMM-MEN's ``coef`` attribution reports the input's regime
(its rule), its default ``contribution`` the effect of nullifying each feature alone (gates
included). The global mode is left out here: fitted on 200 inputs × 500 queries it costs
seconds per explanation. KernelSHAP's tabular background is the zero fill every other
explainer nullifies with (sequences: the fill id, as for every sequence explainer); LIME's
tabular explainer samples from the fitting rows (its own design).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deepscope.explain import DMMMEN, KernelShap, Lime, RandomExplainer, SequenceSpace
from deepscope.explain.features import FeatureSpace, TabularSpace
from deepscope.explain.groundtruth import default_boxes, precision_table

BUDGET = 500
N_FIT = 200
SEEDS = (0, 1, 2)
BASELINES = ("lime", "kernel-shap")


def _space(box) -> FeatureSpace:
    return SequenceSpace() if box.kind == "sequence" else TabularSpace()


def _shap(box) -> KernelShap:
    bg = None if box.kind == "sequence" else np.zeros((1, box.weights.shape[1]))
    return KernelShap(_space(box), nsamples=BUDGET, seed=0, progress=False, background=bg)


EXPLAINERS: dict[str, Callable[[Any], Any]] = {
    "dmm-men": lambda b: DMMMEN(_space(b), mode="local", n_samples=BUDGET, seed=0,
                                progress=False),
    "dmm-men (coef: the regime's rule)": lambda b: DMMMEN(
        _space(b), mode="local", n_samples=BUDGET, attribution="coef", seed=0, progress=False),
    "lime": lambda b: Lime(_space(b), num_samples=BUDGET, seed=0, progress=False),
    "kernel-shap": _shap,
    "random": lambda b: RandomExplainer(_space(b), seed=0),
}


def run(log: Callable[[str], None], n_explain: int, seeds: tuple[int, ...] = SEEDS) -> dict:
    """``{"seeds", "budget", "n_explain", "tables": {seed: precision_table(...)}}``."""
    tables = {}
    for seed in seeds:
        tables[str(seed)] = precision_table(EXPLAINERS, default_boxes(seed), n_explain=n_explain,
                                            n_fit=N_FIT, seed=seed, log=log)
    return {"seeds": list(seeds), "budget": BUDGET, "n_explain": n_explain, "tables": tables}


def _mean(gt: dict, box: str, name: str, key: str) -> float:
    return float(np.mean([t[box][name][key] for t in gt["tables"].values()]))


def lines(gt: dict) -> list[str]:
    """Markdown section: mean over seeds of each explainer's precision per box."""
    first = next(iter(gt["tables"].values()))
    names = list(next(iter(first.values())))
    out = ["## Ground truth: gated black boxes with signed weights", "",
           f"{len(gt['seeds'])} seeds × {gt['n_explain']} explained inputs per box, "
           f"{gt['budget']} queries per explanation for every explainer; top-k by |attribution| "
           "with k = the number of features the region's rule reads (2-5). Cells: precision "
           "against the rule's features / against the rule's features plus the open gates "
           "(those whose nullification switches the region). "
           "Boxes: `deepscope.explain.groundtruth.default_boxes`.", "",
           "| box | " + " | ".join(names) + " |",
           "| --- |" + " ---: |" * len(names)]
    for box in first:
        cells = [f"{_mean(gt, box, n, 'precision'):.2f} / "
                 f"{_mean(gt, box, n, 'precision_with_gates'):.2f}" for n in names]
        out.append(f"| {box} | " + " | ".join(cells) + " |")
    ms = [f"{n}: {1000 * np.mean([_mean(gt, b, n, 'seconds_per_explanation') for b in first]):.0f}"
          for n in names]
    out += ["", "Milliseconds per explanation (mean over boxes; shared machine): "
            + ", ".join(ms) + ".", ""]
    return out


def target_lines(gt: dict) -> list[str]:
    """The issue's ground-truth target, per box: >= 0.9 and above both baselines."""
    first = next(iter(gt["tables"].values()))
    out = []
    for box in first:
        rule = _mean(gt, box, "dmm-men (coef: the regime's rule)", "precision")
        eff = _mean(gt, box, "dmm-men", "precision_with_gates")
        best_rule = max(_mean(gt, box, b, "precision") for b in BASELINES)
        best_eff = max(_mean(gt, box, b, "precision_with_gates") for b in BASELINES)
        high = rule >= 0.9 and eff >= 0.9
        above = rule > best_rule and eff > best_eff
        tied = rule >= best_rule and eff >= best_eff
        verdict = ("met" if high and above else
                   "tie (a baseline is as precise)" if high and tied else "missed")
        out.append(f"- ground truth {box}: P@k >= 0.9 and above LIME and KernelSHAP — "
                   f"{verdict} (rule {rule:.2f} vs {best_rule:.2f}; "
                   f"rule + gates {eff:.2f} vs {best_eff:.2f})")
    return out
