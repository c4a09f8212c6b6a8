"""The benign calibration split shared by every detector that holds out calibration inputs.

``fit(x_benign, ...)`` without ``x_calib`` holds out a seeded ``calib_fraction`` of
``x_benign`` for calibration and fits on the rest; :func:`hold_out` does that split once for
the images and everything aligned with them (attribute boxes, masks or an
:class:`~deepscope.detect.ami.attributes.AttributeSet`, groups), so no caller slices by hand.

Example
-------
>>> split = hold_out(x, 0.3, seed=0, boxes=boxes, groups=groups)   # doctest: +SKIP
>>> det.fit(split.x_fit, split.boxes, groups=split.groups, x_calib=split.x_calib)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from deepscope._validate import check_probability
from deepscope.errors import InputError

__all__ = ["HeldOut", "hold_out", "quantile_threshold", "split_calibration"]


def quantile_threshold(scores: torch.Tensor, target_fpr: float) -> float:
    """The smallest threshold ``t`` among the scores with ``mean(scores > t) <= target_fpr``.

    With ``k = floor(target_fpr * n)`` false positives allowed, ``t`` is the (k+1)-th largest
    score, so at most ``k`` benign scores exceed it (fewer when scores tie).
    """
    s = scores.detach().flatten().double()
    if s.numel() == 0:
        raise InputError("calibration needs at least one benign input")
    s = torch.sort(s, descending=True).values
    k = math.floor(target_fpr * s.numel() + 1e-9)
    if k >= s.numel():
        return float(s[-1]) - 1.0
    return float(s[k])


def split_calibration(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``(fit indices, calibration indices)`` of ``n`` inputs, each sorted."""
    check_probability("calib_fraction", fraction)
    k = max(1, round(n * fraction))
    if n - k < 2:
        raise InputError(f"{n} benign inputs are too few to split off {k} for calibration; "
                         "pass more inputs or x_calib=")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[k:].sort().values, perm[:k].sort().values


@dataclass(frozen=True)
class HeldOut:
    """The fitting part of the benign inputs (with what is aligned with them) and the
    held-out calibration inputs."""

    x_fit: torch.Tensor
    x_calib: torch.Tensor
    boxes: Any = None
    masks: Any = None
    groups: torch.Tensor | None = None


def _take(value: Any, index: torch.Tensor) -> Any:
    """``value`` restricted to the rows ``index`` (None stays None)."""
    if value is None:
        return None
    if hasattr(value, "subset"):  # an AttributeSet
        return value.subset(index)
    if isinstance(value, torch.Tensor):
        return value[index.to(value.device)]
    return torch.as_tensor(value)[index]


def hold_out(x: torch.Tensor, fraction: float, seed: int, *, boxes: Any = None,
             masks: Any = None, groups: Any = None) -> HeldOut:
    """Split ``x`` (and the aligned ``boxes`` / ``masks`` / ``groups``) for calibration.

    Parameters
    ----------
    x : torch.Tensor
        N benign inputs.
    fraction : float
        Share held out for calibration, in (0, 1).
    seed : int
        Seed of the split (:func:`split_calibration`).
    boxes : tensor, array or AttributeSet, optional
        Per-input attribute boxes (or an :class:`AttributeSet`), sliced like ``x``.
    masks, groups : tensor, optional
        Per-input masks and groups, sliced like ``x``.

    Returns
    -------
    HeldOut
        The fitting rows of everything, and the calibration rows of ``x``.
    """
    fit_idx, cal_idx = split_calibration(x.shape[0], fraction, seed)
    return HeldOut(x_fit=_take(x, fit_idx), x_calib=_take(x, cal_idx),
                   boxes=_take(boxes, fit_idx), masks=_take(masks, fit_idx),
                   groups=_take(groups, fit_idx))
