"""What :func:`deepscope.models.fit` minimises, and the checks of its weights and labels.

:func:`batch_loss` is the loss of one batch: cross-entropy per sample for classifiers (N×K
logits), per non-padding position for taggers (N×T×K logits, see
:mod:`deepscope.models.tagging`), optionally weighted per sample and per class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deepscope.errors import InputError
from deepscope.models import tagging

__all__ = ["batch_loss", "check_class_weight", "check_outputs", "check_sample_weight"]


def check_sample_weight(sample_weight: Any, n: int) -> torch.Tensor | None:
    if sample_weight is None:
        return None
    if isinstance(sample_weight, torch.Tensor):
        w = sample_weight.detach().to(device="cpu", dtype=torch.float32)
    else:
        w = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32))
    if w.shape != (n,):
        raise InputError(
            f"sample_weight must have shape ({n},), one weight per sample, got {tuple(w.shape)}"
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise InputError("sample_weight must be finite and >= 0")
    if float(w.sum()) <= 0:
        raise InputError("sample_weight must not be all zero")
    return w


def check_outputs(k: int, y: torch.Tensor, yv: torch.Tensor | None,
                   cweights: torch.Tensor | None) -> None:
    """The model's ``k`` outputs cover the labels and the class weights."""
    if cweights is not None and len(cweights) != k:
        raise InputError(f"class_weight must have one weight per class ({k}), got {len(cweights)}")
    for name, labels in (("train", y), ("val", yv)):
        if labels is not None and int(labels.max()) >= k:
            raise InputError(
                f"{name} has label {int(labels.max())} but the model has only {k} outputs; "
                f"build it with num_classes={int(labels.max()) + 1} or more"
            )


def check_class_weight(class_weight: Any) -> torch.Tensor | None:
    if class_weight is None:
        return None
    try:
        w = torch.as_tensor(np.asarray(class_weight, dtype=np.float32))
    except (TypeError, ValueError):
        w = torch.empty(0)
    if w.ndim != 1 or len(w) < 2 or not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise InputError(f"class_weight must be one finite weight >= 0 per class, got "
                         f"{class_weight!r}")
    return w


def batch_loss(logits: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor,
                sw: torch.Tensor | None, cw: torch.Tensor | None
                ) -> tuple[torch.Tensor, float, int, int]:
    """(loss, summed cross-entropy, correct, counted) of one batch: samples or positions."""
    if yb.ndim == 2:
        return tagging.batch_loss(logits, yb, xb, cw, sw)
    ce = F.cross_entropy(logits, yb, reduction="none")
    w = sw
    if cw is not None:
        w = cw.to(ce)[yb] if w is None else w * cw.to(ce)[yb]
    loss = (ce * w).mean() if w is not None else ce.mean()
    with torch.no_grad():
        return loss, float(ce.sum()), int((logits.argmax(1) == yb).sum()), len(yb)
