"""Feature squeezing (Xu et al., NDSS'18): the baseline detector.

The model's softmax on an input is compared with its softmax on *squeezed* copies: bit-depth
reduction to ``bit_depth`` bits and a ``median_size``×``median_size`` median filter. The score
is the largest L1 distance over the squeezers (the paper's joint detector); the threshold is
set on benign calibration inputs at ``target_fpr``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from deepscope._validate import check_int
from deepscope.detect._adaptive import AdaptiveTerms, straight_through
from deepscope.detect.base import DETECTORS, Detector
from deepscope.errors import InputError
from deepscope.models.execution import inference, model_device

__all__ = ["FeatureSqueezingDetector", "median_filter", "reduce_bit_depth"]


def reduce_bit_depth(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantise pixels in [0, 1] to ``2**bits`` levels."""
    levels = 2**bits - 1
    return torch.round(x * levels) / levels


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Per-channel ``size``×``size`` median filter (edge pixels replicated).

    Same as ``scipy.ndimage.median_filter(x, size, mode="nearest")`` per channel: the window of
    pixel (i, j) spans rows ``i - size//2 .. i + (size-1)//2``, and for even sizes the median is
    the upper of the two middle values (rank ``size²//2``).
    """
    if size == 1:
        return x
    n, c, h, w = x.shape
    lo, hi = size // 2, (size - 1) // 2
    padded = F.pad(x, (lo, hi, lo, hi), mode="replicate")
    patches = F.unfold(padded, size).view(n, c, size * size, h * w)
    med = patches.sort(dim=2).values[:, :, (size * size) // 2]
    return med.view(n, c, h, w)


@DETECTORS.register("squeeze")
class FeatureSqueezingDetector(Detector):
    """Feature squeezing with bit-depth reduction and a median filter.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (returns logits).
    target_fpr : float
        False-positive rate on the benign calibration inputs.
    bit_depth : int or None
        Bits kept by the bit-depth squeezer (None: no such squeezer).
    median_size : int or None
        Window of the median squeezer (None: no such squeezer).
    batch_size, progress
        See :class:`~deepscope.detect.base.Detector`.
    """

    name: ClassVar[str] = "squeeze"

    def __init__(self, model: nn.Module, *, target_fpr: float = 0.05, bit_depth: int | None = 5,
                 median_size: int | None = 2, batch_size: int = 64, progress: bool = True
                 ) -> None:
        super().__init__(model, target_fpr=target_fpr, batch_size=batch_size, progress=progress)
        if bit_depth is not None:
            bit_depth = check_int("bit_depth", bit_depth, low=1, high=16)
        if median_size is not None:
            median_size = check_int("median_size", median_size, low=1)
        if bit_depth is None and median_size is None:
            raise InputError("feature squeezing needs at least one squeezer (bit_depth or "
                             "median_size)")
        self.bit_depth = bit_depth
        self.median_size = median_size

    def squeezers(self) -> list[tuple[str, Any]]:
        """``(name, function)`` of every squeezer, in score order."""
        out = []
        if self.bit_depth is not None:
            out.append((f"bit-depth-{self.bit_depth}",
                        lambda x, b=self.bit_depth: reduce_bit_depth(x, b)))
        if self.median_size is not None:
            out.append((f"median-{self.median_size}x{self.median_size}",
                        lambda x, m=self.median_size: median_filter(x, m)))
        return out

    def adaptive_terms(self) -> AdaptiveTerms:
        """The terms :class:`deepscope.attacks.AdaptiveSqueeze` attacks: the model on the input
        and on every squeezed copy as views (bit-depth reduction through a straight-through
        estimator, BPDA; the median filter is differentiable as it is: the gradient flows to
        the selected pixel), this detector's score (largest L1 gap of the softmaxes) as the
        penalty, and its decision."""
        self._check_fitted()
        squeeze = [fn for _, fn in self.squeezers()]

        def views(x: torch.Tensor) -> list[torch.Tensor]:
            x = x.to(model_device(self.model))
            return [self.model(x)] + [self.model(straight_through(x, fn(x))) for fn in squeeze]

        def penalty(x: torch.Tensor, labels: torch.Tensor, zs: list[torch.Tensor]
                    ) -> torch.Tensor:
            p = [torch.softmax(z.float(), dim=1) for z in zs]
            return torch.stack([(q - p[0]).abs().sum(1) for q in p[1:]]).amax(0)

        return AdaptiveTerms(self.name, self.model, views, penalty, self.detect)

    def fit(self, x_benign: torch.Tensor, *, x_calib: torch.Tensor | None = None
            ) -> FeatureSqueezingDetector:
        """Set the threshold on benign inputs (``x_calib`` if given, else ``x_benign``)."""
        self._fit_threshold_only(x_benign, x_calib)
        return self

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.to(model_device(self.model))
        with inference(self.model):
            batch = torch.cat([xs] + [fn(xs) for _, fn in self.squeezers()])
            p = torch.softmax(self.model(batch).float(), dim=1)
        n = xs.shape[0]
        base = p[:n]
        dists = torch.stack([(p[(i + 1) * n : (i + 2) * n] - base).abs().sum(1)
                             for i in range(len(self.squeezers()))])
        return dists.amax(0).to(dtype=x.dtype)
