"""Per-position labels (taggers): masked loss, per-position metrics, the decision threshold.

A tagger returns logits N×T×K for int64 inputs N×T; position ``(i, t)`` counts only where
``x[i, t] != 0`` (0 = padding / nullified byte), in the loss and in every metric.

Metrics of the positive class (class 1, e.g. "a function starts here"), over non-padding
positions: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2·TP / (2·TP + FP + FN);
each is 0 when its denominator is 0.

Decision threshold
    Function starts are rare (~0.3 % of bytes), so the argmax of a model trained with class
    weights is not the F1-optimal decision. :func:`calibrate_threshold` picks, on validation
    data, the logit margin ``m`` (``logit_1 - logit_0 > m`` → start) with the highest F1 and
    folds it into the model: ``head.bias[1] -= m``. The argmax of the calibrated logits *is* the
    chosen decision, so :func:`deepscope.models.evaluate`, ``predict`` and the checkpoint need
    nothing else (``deepscope train`` records ``m`` and the threshold ``sigmoid(m)`` on the
    softmax probability in the checkpoint metadata). The softmax probabilities shift with it:
    ``p_1 > 0.5`` after calibration is ``p_1 > sigmoid(m)`` before. Never calibrate on the
    test split.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepscope.errors import InputError
from deepscope.models.execution import batched

__all__ = ["Calibration", "batch_loss", "best_margin", "calibrate_threshold", "confusion",
           "precision_recall_f1"]


def confusion(pred: torch.Tensor, y: torch.Tensor, x: torch.Tensor, k: int) -> np.ndarray:
    """K×K int64 counts of (true, predicted) labels over the non-padding positions of ``x``."""
    mask = x != 0
    yt, pt = y[mask].to(torch.int64), pred[mask].to(torch.int64)
    return torch.bincount(yt * k + pt, minlength=k * k).reshape(k, k).cpu().numpy().astype(
        np.int64)


def precision_recall_f1(conf: np.ndarray, positive: int = 1) -> tuple[float, float, float]:
    """Precision, recall and F1 of class ``positive`` from a confusion matrix (0 when empty)."""
    tp = int(conf[positive, positive])
    fp = int(conf[:, positive].sum()) - tp
    fn = int(conf[positive].sum()) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def batch_loss(
    logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor,
    class_weight: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float, int, int]:
    """Masked per-position cross-entropy of one batch.

    Parameters
    ----------
    logits : torch.Tensor
        N×T×K.
    y, x : torch.Tensor
        int64 N×T labels and inputs (``x == 0`` positions are left out).
    class_weight : torch.Tensor, optional
        K weights, one per class (e.g. ``[1, 5]`` to weigh function starts up).
    sample_weight : torch.Tensor, optional
        N weights, one per sequence (applied to each of its positions).

    Returns
    -------
    (loss, ce_sum, correct, count)
        The loss to minimise (weighted sum over non-padding positions divided by their number),
        the unweighted cross-entropy sum, the number of correct argmax decisions and the
        number of non-padding positions.
    """
    if logits.ndim != 3 or logits.shape[:2] != y.shape:
        raise InputError(
            f"a tagger must return N×T×K logits matching the labels {tuple(y.shape)}, got "
            f"{tuple(logits.shape)}"
        )
    mask = (x != 0).to(logits.dtype)
    flat = logits.transpose(1, 2)  # N×K×T, as cross_entropy wants
    ce = F.cross_entropy(flat, y, reduction="none")
    w = mask if class_weight is None else mask * class_weight.to(logits)[y]
    if sample_weight is not None:
        w = w * sample_weight.to(logits)[:, None]
    count = int(mask.sum())
    loss = (ce * w).sum() / max(count, 1)
    with torch.no_grad():
        ce_sum = float((ce * mask).sum())
        correct = int(((logits.argmax(-1) == y) & (x != 0)).sum())
    return loss, ce_sum, correct, count


def best_margin(margin: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    """The logit margin ``m`` (decide "positive" where ``margin > m``) with the highest F1.

    Exact over every cut of the sorted margins of the non-padding positions; ``m`` lies midway
    between two neighbouring margins. Returns ``(m, f1)``.
    """
    mask = x != 0
    s = margin[mask].double()
    t = (y[mask] == 1).double()
    positives = float(t.sum())
    if positives == 0:
        raise InputError("the calibration data has no positive positions; pass data with "
                         "function starts (e.g. a validation split of whole libraries)")
    order = torch.argsort(s, descending=True)
    s, t = s[order], t[order]
    tp = torch.cumsum(t, 0)
    k = torch.arange(1, len(s) + 1, dtype=torch.float64)
    f1 = 2 * tp / (k + positives)
    # a cut is only possible between different margins: take the last of each run of ties
    valid = torch.ones_like(s, dtype=torch.bool)
    valid[:-1] = s[:-1] != s[1:]
    f1 = torch.where(valid, f1, torch.zeros_like(f1))
    i = int(torch.argmax(f1))
    below = float(s[i + 1]) if i + 1 < len(s) else float(s[i]) - 1.0
    return 0.5 * (float(s[i]) + below), float(f1[i])


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate_threshold` chose and measured (on the calibration data).

    Attributes
    ----------
    margin : float
        Logit margin subtracted from the positive class's head bias.
    threshold : float
        The same decision as a threshold on the uncalibrated softmax probability of class 1
        (``sigmoid(margin)``).
    f1_before, f1_after : float
        F1 at argmax before and after calibration.
    n_positions : int
        Non-padding positions it was chosen on.
    """

    margin: float
    threshold: float
    f1_before: float
    f1_after: float
    n_positions: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-type copy."""
        return asdict(self)


def _head_bias(model: nn.Module) -> torch.Tensor:
    head = getattr(model, "head", None)
    bias = getattr(head, "bias", None)
    if not isinstance(bias, torch.Tensor) or bias.shape != (2,):
        raise InputError(
            "calibrate_threshold needs a two-class tagger with a `head` layer that has a bias "
            "(a zoo tagger, e.g. built by deepscope.models.zoo.build)"
        )
    return bias


def calibrate_threshold(model: nn.Module, val: Any, *, batch_size: int = 512) -> Calibration:
    """Choose the F1-optimal decision on ``val`` and fold it into ``model`` (in place).

    Parameters
    ----------
    model : torch.nn.Module
        A two-class zoo tagger (N×T → N×T×2) with a ``head`` layer whose bias is shifted.
    val : Dataset or (x, y)
        Validation sequences with per-position labels (never the test split).
    batch_size : int
        Sequences per forward pass.
    """
    bias = _head_bias(model)
    x, y = getattr(val, "x", None), getattr(val, "y", None)
    if x is None and isinstance(val, (tuple, list)) and len(val) == 2:
        x, y = val
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise InputError("calibrate_threshold needs int64 N×T inputs with N×T labels")
    logits = batched(model, x, batch_size=batch_size, to="cpu")
    assert isinstance(logits, torch.Tensor)
    x, y = x.cpu(), y.cpu()
    before = precision_recall_f1(confusion(logits.argmax(-1), y, x, 2))[2]
    margin, f1 = best_margin(logits[..., 1] - logits[..., 0], y, x)
    with torch.no_grad():
        bias[1] -= margin
    return Calibration(margin=margin, threshold=0.5 * (1.0 + math.tanh(margin / 2)),
                       f1_before=before, f1_after=f1, n_positions=int((x != 0).sum()))
