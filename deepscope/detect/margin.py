"""The logit-margin baseline: low confidence as the only evidence.

The score is ``−(z_top1 − z_top2)``, minus the gap between the two largest logits (higher =
less confident = more suspicious), thresholded at ``target_fpr`` on benign calibration inputs.
The logit margin rather than ``1 − max softmax``: the softmax saturates at 1 on confident
inputs, so many benign scores tie at 0 and the threshold cannot sit at the target FP, while the
margin keeps ordering them (and it is the quantity C&W's κ bounds). It is the "zero witnesses"
reference for AmI: a detector that reasons about attributes should beat it.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from deepscope.detect.base import DETECTORS, Detector
from deepscope.errors import InputError

__all__ = ["MarginDetector", "logit_margin"]


def logit_margin(logits: torch.Tensor) -> torch.Tensor:
    """``z_top1 − z_top2`` per row of N×K logits (K ≥ 2)."""
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise InputError(f"the margin needs N×K logits with K >= 2, got shape "
                         f"{tuple(logits.shape)}")
    top = logits.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


@DETECTORS.register("margin")
class MarginDetector(Detector):
    """Flags inputs whose top-1 / top-2 logit margin is small (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (returns logits).
    target_fpr : float
        False-positive rate on the benign calibration inputs.
    batch_size, progress
        See :class:`~deepscope.detect.base.Detector`.
    """

    name: ClassVar[str] = "margin"

    def fit(self, x_benign: torch.Tensor, *, x_calib: torch.Tensor | None = None
            ) -> MarginDetector:
        """Set the threshold on benign inputs (``x_calib`` if given, else ``x_benign``)."""
        self._fit_threshold_only(x_benign, x_calib)
        return self

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        return -logit_margin(self.model(x).float()).to(x.dtype)
