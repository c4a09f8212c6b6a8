"""The one result object every explainer returns (sliceable, like shap's ``Explanation``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepscope._atomic import atomic_write
from deepscope.errors import InputError

PathType = str | os.PathLike

RANKINGS = ("positive", "abs")


@dataclass(frozen=True)
class Explanation:
    """Per-sample feature attributions for one target class.

    Attributes
    ----------
    method : str
        Registry name of the explainer (``"dmm-men"``, ``"lime"``, ...).
    target : int
        The explained class.
    attributions : ndarray
        ``N×F`` float64: the contribution of each feature to the target's score (positive =
        supports the class). NaN marks features a sample does not have (per-image superpixels).
    segments : ndarray
        Feature id of each input position: ``H×W`` / ``D`` when shared by all samples, or
        ``N×H×W`` / ``N×D`` per sample; ``-1`` = belongs to no feature.
    input_shape : tuple of int
        Shape of one input (``C×H×W`` or ``D``).
    component : ndarray, optional
        DMM-MEN only: the mixture component that explains each sample.
    extras : dict
        Method-specific arrays and figures (queries, seconds, diagnostics), all JSON-able.
    """

    method: str
    target: int
    attributions: np.ndarray
    segments: np.ndarray
    input_shape: tuple[int, ...]
    component: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    # -- shape -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.attributions.shape[0])

    @property
    def n_features(self) -> int:
        """Width of the attribution matrix (the largest feature count of any sample)."""
        return int(self.attributions.shape[1])

    @property
    def per_sample_segments(self) -> bool:
        """True when every sample has its own segmentation (``N×H×W`` / ``N×D``)."""
        shared_ndim = 2 if len(self.input_shape) == 3 else 1
        return self.segments.ndim == shared_ndim + 1

    def __getitem__(self, index) -> Explanation:
        """Select samples (int, slice, index array or boolean mask); keeps the class info."""
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        seg = self.segments[idx] if self.per_sample_segments else self.segments
        comp = None if self.component is None else self.component[idx]
        return Explanation(
            method=self.method,
            target=self.target,
            attributions=self.attributions[idx],
            segments=seg,
            input_shape=self.input_shape,
            component=comp,
            extras=dict(self.extras),
        )

    # -- features ----------------------------------------------------------------------------
    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise InputError(f"k must be an integer, got {k!r}")
        if not 1 <= k <= self.n_features:
            raise InputError(f"k must be in 1..{self.n_features} (the number of features), got {k}")
        return int(k)

    def top_features(self, k: int, by: str = "positive") -> np.ndarray:
        """Indices of each sample's ``k`` most important features, most important first.

        Parameters
        ----------
        k : int
            How many features.
        by : {"positive", "abs"}
            ``"positive"`` (default): the largest attributions, i.e. the features that support
            the target most. ``"abs"``: the largest magnitudes, whatever the sign.

        Returns
        -------
        ndarray
            ``N×k`` int64, indices in the explainer's feature space. Ties break by index.
        """
        k = self._check_k(k)
        if by not in RANKINGS:
            raise InputError(f"by must be one of {RANKINGS}, got {by!r}")
        score = np.abs(self.attributions) if by == "abs" else self.attributions.copy()
        score = np.where(np.isnan(score), -np.inf, score)
        order = np.argsort(-score, axis=1, kind="stable")
        return order[:, :k].astype(np.int64)

    def feature_selection(self, k: int, by: str = "positive") -> np.ndarray:
        """Boolean ``N×F`` matrix, ``True`` at each sample's top-``k`` features."""
        top = self.top_features(k, by=by)
        sel = np.zeros(self.attributions.shape, dtype=bool)
        np.put_along_axis(sel, top, True, axis=1)
        return sel & ~np.isnan(self.attributions)

    def feature_mask(self, k: int, by: str = "positive") -> np.ndarray:
        """Boolean mask shaped like the inputs (``N×C×H×W`` or ``N×D``) covering the top-k."""
        sel = self.feature_selection(k, by=by)
        n = len(self)
        seg = self.segments if self.per_sample_segments else np.broadcast_to(
            self.segments, (n, *self.segments.shape)
        )
        flat = seg.reshape(n, -1)
        padded = np.concatenate([sel, np.zeros((n, 1), dtype=bool)], axis=1)
        pix = np.take_along_axis(padded, np.where(flat < 0, sel.shape[1], flat), axis=1)
        if len(self.input_shape) == 3:
            pix = pix.reshape(n, 1, *self.input_shape[1:])
            return np.ascontiguousarray(np.broadcast_to(pix, (n, *self.input_shape)))
        return pix.reshape(n, *self.input_shape)

    def heatmap(self) -> np.ndarray:
        """Attributions painted onto the input grid (``N×H×W`` or ``N×D``); 0 off-feature."""
        n = len(self)
        seg = self.segments if self.per_sample_segments else np.broadcast_to(
            self.segments, (n, *self.segments.shape)
        )
        flat = seg.reshape(n, -1)
        attr = np.nan_to_num(self.attributions)
        padded = np.concatenate([attr, np.zeros((n, 1))], axis=1)
        vals = np.take_along_axis(padded, np.where(flat < 0, attr.shape[1], flat), axis=1)
        return vals.reshape(seg.shape)

    # -- export ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: method, target, shapes, attributions and extras."""
        return {
            "method": self.method,
            "target": int(self.target),
            "n_samples": len(self),
            "n_features": self.n_features,
            "input_shape": list(self.input_shape),
            "attributions": np.where(
                np.isnan(self.attributions), None, self.attributions
            ).tolist(),
            "component": None if self.component is None else self.component.tolist(),
            "extras": _jsonable(self.extras),
        }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_npz(explanation: Explanation, path: PathType) -> Path:
    """Write an explanation to ``path`` (``.npz``) atomically (temp file + rename).

    The file holds plain arrays only (``attributions``, ``segments``, ``input_shape``,
    ``target``, ``method``, and ``component`` when present), so it loads with
    ``np.load(path, allow_pickle=False)``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError(f"save_npz writes .npz files; got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "attributions": explanation.attributions,
        "segments": explanation.segments,
        "input_shape": np.asarray(explanation.input_shape, dtype=np.int64),
        "target": np.asarray(explanation.target, dtype=np.int64),
        "method": np.asarray(explanation.method),
    }
    if explanation.component is not None:
        arrays["component"] = explanation.component
    with atomic_write(path) as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_npz(path: PathType) -> Explanation:
    """Read an explanation written by :func:`save_npz` (no pickles)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return Explanation(
            method=str(data["method"]),
            target=int(data["target"]),
            attributions=data["attributions"],
            segments=data["segments"],
            input_shape=tuple(int(v) for v in data["input_shape"]),
            component=data["component"] if "component" in data else None,
        )
