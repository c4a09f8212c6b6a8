"""Audit section ``robustness``: accuracy under FGSM and BIM as ε grows, and C&W L2's success
rate and median L2 distance on a sample. Gradient attacks: differentiable image models only.

The sample is a seeded random draw of the test role (all of it, correct or not, so the ε = 0
point is the plain accuracy on the same n); the C&W sample is its first part.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepscope import attacks
from deepscope.audit.inputs import AuditInputs
from deepscope.audit.result import SectionResult
from deepscope.audit.spec import AuditConfig, Costs, register_section
from deepscope.models import predict_logits

__all__ = ["EPSILONS", "attack_sample", "robustness_section"]

#: L∞ budgets of the curves (pixels in [0, 1]).
EPSILONS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
#: Samples of the curves and of C&W L2, before scaling.
N_CURVE, N_CW = 200, 50
BIM_STEPS = 10
CW = {"steps": 50, "binary_search_steps": 2, "initial_const": 1.0, "lr": 0.05}


def needs_gradients(inputs: AuditInputs) -> str | None:
    """Why gradient attacks cannot run on this model and data (None: they can)."""
    if not inputs.is_image:
        return "the attacks here perturb pixels; the data is not images"
    if not inputs.differentiable:
        kind = getattr(inputs.loaded, "kind", "this")
        return f"the model ({kind}) is not differentiable, so gradient attacks cannot run"
    return None


def attack_sample(inputs: AuditInputs, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random draw of ``n`` test-role inputs and labels."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(inputs.test), generator=g)[:n]
    return inputs.test.x[idx], inputs.test.y[idx]


def _estimate(inputs: AuditInputs, config: AuditConfig, costs: Costs) -> float:
    n = config.count(N_CURVE, low=20)
    n_cw = config.count(N_CW, low=8)
    grads = n * (len(EPSILONS) - 1) * (1 + BIM_STEPS + 2)
    grads += n_cw * CW["steps"] * CW["binary_search_steps"]
    return grads * costs.gradient


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_logits(model, x).argmax(1) == y).float().mean())


@register_section("robustness", "Robustness to adversarial inputs", applies=needs_gradients,
                  estimate=_estimate)
def robustness_section(inputs: AuditInputs, config: AuditConfig, memo: dict[str, Any]
                       ) -> SectionResult:
    """Accuracy vs ε for FGSM and BIM; C&W L2 success rate and median L2."""
    model = inputs.model
    n = min(config.count(N_CURVE, low=20), len(inputs.test))
    x, y = attack_sample(inputs, n, config.seed)
    curves: dict[str, list[float]] = {"FGSM": [], "BIM": []}
    clean = _accuracy(model, x, y)
    for eps in EPSILONS:
        if eps == 0:
            curves["FGSM"].append(clean)
            curves["BIM"].append(clean)
            continue
        fgsm = attacks.get("fgsm", model, eps=eps, seed=config.seed, progress=False)(x, y)
        bim = attacks.get("bim", model, eps=eps, steps=BIM_STEPS, step_size=eps / 4,
                          seed=config.seed, progress=False)(x, y)
        curves["FGSM"].append(_accuracy(model, fgsm.x_adv, y))
        curves["BIM"].append(_accuracy(model, bim.x_adv, y))
    right = predict_logits(model, x).argmax(1) == y  # C&W on correctly classified inputs only
    xc, yc = x[right], y[right]
    n_cw = min(config.count(N_CW, low=8), len(xc))
    if n_cw == 0:
        return SectionResult.skipped("robustness", "the model classifies none of the sampled "
                                                   "test inputs correctly")
    cw = attacks.get("cw-l2", model, seed=config.seed, progress=False, **CW)(xc[:n_cw],
                                                                             yc[:n_cw])
    ok = cw.success.cpu().numpy()
    l2 = cw.l2.cpu().numpy()
    median = float(np.median(l2[ok])) if ok.any() else None
    summary = {"n": n, "epsilons": list(EPSILONS), "clean_accuracy": clean,
               "accuracy": curves, "cw_l2": {"n": n_cw, "success": int(ok.sum()),
                                              "success_rate": float(ok.mean()),
                                              "median_l2": median, "settings": CW},
               "bim_steps": BIM_STEPS}
    half = next((e for e, a in zip(EPSILONS, curves["BIM"], strict=True) if a <= clean / 2),
                None)
    where = (f"BIM halves its accuracy at ε = {half:g}" if half is not None else
             f"BIM at ε = {EPSILONS[-1]:g} leaves {curves['BIM'][-1]:.0%}")
    med = f", median L2 {median:.2f}" if median is not None else ""
    finding = (f"On {n} test inputs (clean accuracy {clean:.0%}), {where}; C&W L2 succeeds on "
               f"{int(ok.sum())} of {n_cw} correctly classified inputs{med}.")
    return SectionResult("robustness", "ok", finding, summary=summary,
                         arrays={"fgsm": np.array(curves["FGSM"]),
                                 "bim": np.array(curves["BIM"]),
                                 "epsilons": np.array(EPSILONS), "cw_l2": l2,
                                 "cw_success": ok})
