"""The one result object every explainer returns (sliceable, like shap's ``Explanation``).

It is a :class:`~deepscope.protocol.Persistent` result: ``expl.save(path)`` writes one
``.npz`` (arrays ``attributions``, ``segments``, ``input_shape``, ``target``, ``method`` and
``component`` when present, plus a JSON header with method, target, input shape and extras),
atomically and without pickles; ``Explanation.load(path)`` reads it back. :func:`save_npz` /
:func:`load_npz` are the older function spellings (``load_npz`` also reads files written before
the header existed).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepscope._jsonable import to_jsonable
from deepscope._typing import PathType
from deepscope._validate import check_choice, check_int
from deepscope.errors import InputError
from deepscope.protocol import Persistent

RANKINGS = ("positive", "abs")
_LEGACY_KEYS = ("attributions", "segments", "input_shape", "target", "method")


@dataclass(frozen=True)
class Explanation(Persistent):
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
        Feature id of each input position: ``H×W`` / ``D`` / ``T`` when shared by all samples,
        or ``N×H×W`` / ``N×D`` per sample; ``-1`` = belongs to no feature.
    input_shape : tuple of int
        Shape of one input (``C×H×W``, ``D`` or, for token / byte sequences, ``T``).
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

    _format = "explanation"

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
        k = check_int("k", k)
        if not 1 <= k <= self.n_features:
            raise InputError(f"k must be in 1..{self.n_features} (the number of features), got {k}")
        return k

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
        check_choice("by", by, RANKINGS)
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
            "extras": to_jsonable(self.extras),
        }



    # -- persistence -------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"method": self.method, "target": int(self.target),
                "input_shape": list(self.input_shape), "extras": to_jsonable(self.extras)}
        arrays = {
            "attributions": self.attributions,
            "segments": self.segments,
            "input_shape": np.asarray(self.input_shape, dtype=np.int64),
            "target": np.asarray(self.target, dtype=np.int64),
            "method": np.asarray(self.method),
        }
        if self.component is not None:
            arrays["component"] = self.component
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Explanation:
        return cls(
            method=str(meta["method"]),
            target=int(meta["target"]),
            attributions=arrays["attributions"],
            segments=arrays["segments"],
            input_shape=tuple(int(v) for v in meta["input_shape"]),
            component=arrays.get("component"),
            extras=dict(meta.get("extras") or {}),
        )


def save_npz(explanation: Explanation, path: PathType, *, overwrite: bool = True) -> Path:
    """Write an explanation to ``path`` (``.npz``) atomically: :meth:`Explanation.save`.

    Unlike :meth:`Explanation.save`, this older spelling requires the ``.npz`` suffix, creates
    missing parent folders and, for compatibility, replaces an existing file unless
    ``overwrite=False``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError(f"save_npz writes .npz files; got {path.name!r}")
    if not isinstance(explanation, Explanation):
        raise InputError(f"save_npz saves an Explanation, got {type(explanation).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return explanation.save(path, overwrite=overwrite)


def _has_header(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as data:
            return "meta_json" in data.files
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return True  # let Explanation.load report the unreadable file


def _load_legacy(path: Path) -> Explanation:
    """A file of the first format: the arrays of :data:`_LEGACY_KEYS` and no JSON header."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    missing = [k for k in _LEGACY_KEYS if k not in arrays]
    if missing:
        raise InputError(f"{path} is not a deepscope explanation file (no {missing})")
    meta = {"method": str(arrays["method"]), "target": int(arrays["target"]),
            "input_shape": arrays["input_shape"].tolist()}
    return Explanation._from_state(meta, arrays)


def load_npz(path: PathType) -> Explanation:
    """Read an explanation written by :func:`save_npz` or :meth:`Explanation.save` (no pickles).

    Files written by older deepscope versions (arrays only, no JSON header) load too, with
    empty ``extras``.
    """
    path = Path(path)
    if path.is_file() and not _has_header(path):
        return _load_legacy(path)
    return Explanation.load(path)
