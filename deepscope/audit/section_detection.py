"""Audit section ``detection``: can attacks on this model be detected?

Feature squeezing always (images); AmI as well when the data carries attribute boxes
(``extras["boxes"]``, with ``info["box_names"]``). Both are fitted through
:func:`deepscope.audit.detector_fit.fit_detector` (the path ``deepscope detect fit`` uses) on
the correctly classified inputs of the pool role, calibrated to a 5 % false-positive rate on the
correctly classified validation role, and evaluated with :func:`deepscope.detect.evaluate` on a
seeded test-role sample: false positives on its correctly classified benign inputs, detection on
the successful FGSM, BIM and C&W L2 versions of them (differentiable models only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepscope import attacks, detect
from deepscope.audit.detector_fit import MIN_BENIGN, benign_indices, fit_detector
from deepscope.audit.inputs import AuditInputs
from deepscope.audit.result import SectionResult
from deepscope.audit.section_robustness import CW, attack_sample, needs_gradients
from deepscope.audit.spec import AuditConfig, Costs, register_section
from deepscope.models import predict_logits

__all__ = ["detection_section"]

TARGET_FPR = 0.05
#: Attacked test inputs, before scaling; the attacks' L∞ budget.
N_ATTACK, EPS = 100, 0.1
#: AmI fits on at most this many pool inputs, before scaling.
N_AMI_FIT = 400


def _applies(inputs: AuditInputs) -> str | None:
    if not inputs.is_image:
        return "feature squeezing and AmI work on images; the data is not images"
    return None


def _estimate(inputs: AuditInputs, config: AuditConfig, costs: Costs) -> float:
    n = config.count(N_ATTACK, low=20)
    secs = (len(inputs.validation) + 2 * n) * 3 * costs.forward
    if needs_gradients(inputs) is None:
        secs += n * (1 + 10 + CW["steps"] * CW["binary_search_steps"]) * costs.gradient
    if "boxes" in inputs.data.extras:
        secs += config.count(N_AMI_FIT, low=40) * 60 * costs.forward + 30
    return secs


def _attacks(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int
             ) -> dict[str, Any]:
    return {
        f"FGSM (ε={EPS:g})": attacks.get("fgsm", model, eps=EPS, seed=seed, progress=False)(x, y),
        f"BIM (ε={EPS:g})": attacks.get("bim", model, eps=EPS, steps=10, step_size=EPS / 4,
                                        seed=seed, progress=False)(x, y),
        "C&W L2": attacks.get("cw-l2", model, seed=seed, progress=False, **CW)(x, y),
    }


def _detectors(inputs: AuditInputs, config: AuditConfig) -> dict[str, detect.Detector]:
    model, seed = inputs.model, config.seed
    cal = benign_indices(model, inputs.validation, seed=seed)
    x_cal = inputs.validation.x[cal]
    out: dict[str, detect.Detector] = {}
    fs, _ = fit_detector("squeeze", model, inputs.pool, target_fpr=TARGET_FPR, seed=seed,
                         progress=config.progress, limit=config.count(1000, low=50),
                         x_calib=x_cal)
    out["feature squeezing"] = fs
    if "boxes" in inputs.pool.extras:
        ami, _ = fit_detector("ami", model, inputs.pool, target_fpr=TARGET_FPR, seed=seed,
                              progress=config.progress, limit=config.count(N_AMI_FIT, low=40),
                              x_calib=x_cal)
        out["AmI"] = ami
    return out


def _counts(rep: detect.DetectionReport) -> dict[str, dict[str, Any]]:
    return {det: {key: (None if c is None else {"flagged": c[0], "n": c[1]})
                  for key, c in rep.counts[det].items()} for det in rep.detectors}


@register_section("detection", "Adversarial detection", applies=_applies, estimate=_estimate)
def detection_section(inputs: AuditInputs, config: AuditConfig, memo: dict[str, Any]
                      ) -> SectionResult:
    """FP at the calibrated threshold and detection rate per attack, per detector."""
    if len(benign_indices(inputs.model, inputs.validation, seed=config.seed)) < MIN_BENIGN:
        return SectionResult.skipped("detection", "too few correctly classified inputs to "
                                                  "calibrate a detector")
    dets = _detectors(inputs, config)
    n = min(config.count(N_ATTACK, low=20), len(inputs.test))
    x, y = attack_sample(inputs, n, config.seed + 1)
    right = predict_logits(inputs.model, x).argmax(1) == y  # attack what the model gets right
    x, y = x[right], y[right]
    why_no_attacks = needs_gradients(inputs)
    runs = {} if why_no_attacks else _attacks(inputs.model, x, y, config.seed)
    rep = detect.evaluate(dets, x, y, adversarial=runs, model=inputs.model)
    summary: dict[str, Any] = {
        "detectors": list(rep.detectors), "attacks": list(rep.attacks),
        "counts": _counts(rep), "target_fpr": TARGET_FPR, "n_sampled": n,
        "n_correct": rep.n_correct,
        "attack_success": {a: {"successful": s, "n": t}
                           for a, (s, t) in rep.attack_success.items()},
        "thresholds": {k: float(v) for k, v in rep.thresholds.items()},
        "no_attacks_reason": why_no_attacks,
        "ami_reason": None if "AmI" in dets else "the data carries no attribute boxes "
                                                 "(an .npz with 'boxes' enables AmI)"}
    pooled = []
    for det in rep.detectors:
        cells = [rep.counts[det][a] for a in rep.attacks if rep.counts[det][a] is not None]
        k, m = sum(c[0] for c in cells), sum(c[1] for c in cells)
        fp = rep.counts[det]["fp"]
        assert fp is not None
        part = f"{det} flags {fp[0]} of {fp[1]} correct benign inputs"
        if m:
            part += f" and {k} of {m} successful attacks"
        pooled.append(part)
    finding = "At a threshold calibrated for 5% false positives, " + "; ".join(pooled) + "."
    arrays = {"fp": np.array([rep.fp_rate(d) for d in rep.detectors])}
    return SectionResult("detection", "ok", finding, summary=summary, arrays=arrays)
