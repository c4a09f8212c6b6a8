"""Heat maps and MODE's three differential heat maps (DHMs).

Label heat maps
    ``HM_L`` is row ``L`` of the chosen layer's feature-model weights, scaled to [-1, 1] by that
    row's max |w| (red = positive importance, blue = negative).

Subset heat maps (documented choice)
    The subsets ``S_1..S_m`` (e.g. "misclassified as L", "correctly classified as L", "L
    misclassified as k") become *extra classes* ``K..K+m-1`` of one shared softmax layer
    trained on the analysis features; every other input keeps its own label. The loss is
    weighted by inverse class size (so a 15-sample subset counts as much as a 600-sample class).
    The subset rows are normalised by **one** global max |w| over all subset rows, so that the
    difference of two subset rows is a (scaled) log-odds direction between the two subsets
    rather than a difference of two independently rescaled vectors.

Differential heat maps (exactly as the seed)
    * UF(1): ``DHM[f] = HM_L[f] - HM_k[f]`` with ``k != L`` minimising ``|HM_L[f] - HM_k[f]|``;
    * UF(2): ``DHM = HM_{misclassified as L} - HM_{correctly classified as L}``; inputs should
      *avoid* its red and cover its blue features, so selection uses ``-DHM``;
    * OF: ``DHM[f] = max_k (HM_{L misclassified as k}[f] - HM_{correct L}[f])`` over the labels
      ``k`` that ``L`` is misclassified as.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepscope.debug.feature_models import fit_softmax
from deepscope.errors import InputError

__all__ = ["DHM", "label_heatmaps", "of", "subset_heatmaps", "to_image", "uf1", "uf2"]


def _scale_rows(w: np.ndarray) -> np.ndarray:
    m = np.abs(w).max(axis=1, keepdims=True)
    return w / np.where(m > 0, m, 1.0)


def label_heatmaps(weights: np.ndarray) -> np.ndarray:
    """K×D label heat maps: each weight row divided by its own max |w| (values in [-1, 1])."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise InputError(f"weights must be K×D, got shape {w.shape}")
    return _scale_rows(w)


def subset_heatmaps(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    subsets: dict[str, torch.Tensor], *, epochs: int = 15, seed: int = 0
                    ) -> dict[str, np.ndarray]:
    """Heat maps of input subsets as extra classes of one shared softmax (see module docstring).

    Parameters
    ----------
    features : N×D tensor
        Analysis features at the chosen layer.
    labels : N int64 tensor
        True labels.
    num_classes : int
        K, the number of real classes.
    subsets : dict
        Name → boolean mask of length N; masks must be disjoint. Empty subsets are skipped.

    Returns
    -------
    dict
        Name → D-vector heat map (one global max |w| normalisation over all subset rows).
    """
    target = labels.clone()
    names = []
    for name, mask in subsets.items():
        if mask.shape != labels.shape or mask.dtype != torch.bool:
            raise InputError(f"subset {name!r} must be a boolean mask with one entry per input")
        if int(mask.sum()) == 0:
            continue
        if bool((target[mask] >= num_classes).any()):
            raise InputError(f"subset {name!r} overlaps another subset")
        target[mask] = num_classes + len(names)
        names.append(name)
    if not names:
        return {}
    k = num_classes + len(names)
    counts = torch.bincount(target, minlength=k).float()
    weight = 1.0 / counts.clamp(min=1)[target]
    head = fit_softmax(features, target, k, sample_weight=weight, epochs=epochs, seed=seed)
    rows = head.weight[num_classes:].double().numpy()
    scale = np.abs(rows).max()
    rows = rows / (scale if scale > 0 else 1.0)
    return {name: rows[i] for i, name in enumerate(names)}


def uf1(hm: np.ndarray, label: int) -> np.ndarray:
    """UF(1) DHM: per feature, ``HM_L - HM_k`` for the other label ``k`` closest to ``HM_L``."""
    hm = np.asarray(hm)
    diffs = hm[label][None, :] - np.delete(hm, label, axis=0)
    nearest = np.abs(diffs).argmin(axis=0)
    return diffs[nearest, np.arange(hm.shape[1])]


def uf2(hm_misclassified_as: np.ndarray, hm_correct: np.ndarray) -> np.ndarray:
    """UF(2) DHM: ``HM_{misclassified as L} - HM_{correctly classified as L}``."""
    return np.asarray(hm_misclassified_as) - np.asarray(hm_correct)


def of(hm_misclassified: list[np.ndarray], hm_correct: np.ndarray) -> np.ndarray:
    """OF DHM: ``max_k (HM_{L misclassified as k} - HM_{correct L})``."""
    if not hm_misclassified:
        raise InputError("the over-fitting DHM needs at least one 'L misclassified as k' subset")
    return np.max(np.stack([h - hm_correct for h in hm_misclassified]), axis=0)


@dataclass(frozen=True, eq=False)
class DHM:
    """One differential heat map and the direction selection scores along.

    ``score = V · (sign · vector)``; ``sign`` is -1 for UF(2) (avoid the red features).
    """

    kind: str  # "uf1" | "uf2" | "of"
    vector: np.ndarray
    sign: float
    subset_sizes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sign": self.sign, "subset_sizes": dict(self.subset_sizes),
                "min": float(self.vector.min()), "max": float(self.vector.max())}


def to_image(vector: np.ndarray, shape: tuple[int, ...], *, reduce: str = "mean") -> np.ndarray:
    """A heat map as a 2-D array for plotting.

    Convolutional features (``shape = (C, H, W)``) are averaged over channels (``reduce="mean"``)
    into an H×W image, or laid out channel by channel side by side (``reduce="tile"``); dense
    features (``shape = (D,)``) become a 1×D strip.
    """
    v = np.asarray(vector, dtype=np.float64)
    if len(shape) == 3:
        c, h, w = shape
        cube = v.reshape(c, h, w)
        if reduce == "tile":
            return np.concatenate([np.pad(ch, ((0, 0), (0, 1)), constant_values=np.nan)
                                   for ch in cube], axis=1)
        return cube.mean(axis=0)
    return v.reshape(1, -1)
