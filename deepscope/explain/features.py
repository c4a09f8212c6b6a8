"""Feature spaces shared by every explainer and by the fidelity tests.

A feature space maps an input to a vector of interpretable features and a set of features back
to the input positions it covers. It is a *segmentation*: every input position (pixel, or
tabular column) belongs to one feature, or to none (label ``-1``, never perturbed). DMM-MEN, the
LIME / KernelSHAP adapters and the fidelity tests all perturb inputs through the same object, so
that "feature 17" and "nullify feature 17" mean the same thing everywhere.

Spaces: :class:`PixelSpace` (raw pixels, optionally only the top-variance ones),
:class:`GridSpace` (square cells), :class:`SuperpixelSpace` (SLIC superpixels, shared or per
image) and :class:`TabularSpace` (plain columns).

Filling ("nullifying") replaces the covered positions with a *baseline*: ``"zero"``, ``"mean"``
(a reference mean input) or ``"blur"`` (a Gaussian-blurred copy of the input itself), see
:func:`fill_values`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from deepscope._validate import check_int
from deepscope.errors import InputError, NotFittedError

BASELINES = ("zero", "mean", "blur")


def check_inputs(x, *, name: str = "x") -> np.ndarray:
    """Return ``x`` as a float array after checking it is finite and 2-D or 4-D.

    Parameters
    ----------
    x : array-like
        ``N×C×H×W`` images or ``N×D`` tabular rows.
    name : str
        Argument name used in error messages.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # e.g. a ragged list
        raise InputError(f"{name} must be an array, got {type(x).__name__}: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim not in (2, 4):
        raise InputError(
            f"{name} must be N×C×H×W images or N×D tabular rows, got shape {arr.shape}; "
            "add a batch axis with x[None] for a single sample"
        )
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty; pass at least one sample")
    arr = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or inf values")
    return arr


def fill_values(
    x: np.ndarray, baseline: str | np.ndarray = "zero", *, reference=None, sigma: float = 2.0
) -> np.ndarray:
    """Values that replace nullified positions of ``x``.

    Parameters
    ----------
    x : ndarray
        Inputs, ``N×C×H×W`` or ``N×D``.
    baseline : {"zero", "mean", "blur"} or ndarray
        ``"zero"``: zeros. ``"mean"``: the per-position mean of ``reference`` (of ``x`` itself
        when ``reference`` is None). ``"blur"``: each image blurred with a Gaussian of width
        ``sigma`` pixels (images only). An array is broadcast to ``x``'s shape.
    reference : ndarray, optional
        Inputs whose mean is the ``"mean"`` baseline, e.g. a slice of the training set.
    sigma : float
        Blur width in pixels.

    Returns
    -------
    ndarray
        An array shaped like ``x``.
    """
    if isinstance(baseline, np.ndarray):
        try:
            return np.broadcast_to(baseline.astype(x.dtype), x.shape)
        except ValueError:
            raise InputError(
                f"baseline array of shape {baseline.shape} does not broadcast to {x.shape}"
            ) from None
    if baseline == "zero":
        return np.zeros_like(x)
    if baseline == "mean":
        ref = x if reference is None else np.asarray(reference, dtype=x.dtype)
        if ref.shape[1:] != x.shape[1:]:
            raise InputError(
                f"reference of shape {ref.shape} does not match inputs {x.shape}; "
                "pass samples of the same kind"
            )
        return np.broadcast_to(ref.mean(axis=0, keepdims=True), x.shape)
    if baseline == "blur":
        if x.ndim != 4:
            raise InputError("baseline 'blur' needs images (N×C×H×W); use 'zero' or 'mean'")
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="nearest").astype(x.dtype)
    raise InputError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")


class FeatureSpace(ABC):
    """A segmentation of the input into interpretable features.

    Subclasses implement :meth:`_segmentation`. ``fit(x)`` learns what needs data (input shape,
    top-variance pixels, a shared superpixel map). Shared spaces (``shared = True``) use one
    segmentation for every input, which is what a global surrogate such as DMM-MEN needs.
    """

    shared: bool = True

    def fit(self, x) -> FeatureSpace:
        """Learn the segmentation from example inputs; returns ``self``."""
        x = check_inputs(x)
        self.input_shape_ = tuple(x.shape[1:])
        self.segments_ = self._segmentation(x)
        seg = self.segments_
        self.n_features_ = int(seg.max()) + 1 if seg.size and seg.max() >= 0 else 0
        if self.n_features_ == 0:
            raise InputError(f"{type(self).__name__} produced no features for these inputs")
        return self

    @abstractmethod
    def _segmentation(self, x: np.ndarray) -> np.ndarray:
        """Integer map of feature ids (``-1`` = none), shaped like one input without channels."""

    # -- helpers ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "segments_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call .fit(x) first")

    def _check_shape(self, x: np.ndarray) -> None:
        self._check_fitted()
        if tuple(x.shape[1:]) != self.input_shape_:
            raise InputError(
                f"inputs of shape {x.shape[1:]} do not match the feature space fitted on "
                f"{self.input_shape_}"
            )

    @property
    def is_image(self) -> bool:
        self._check_fitted()
        return len(self.input_shape_) == 3

    def segments(self, x) -> np.ndarray:
        """Feature-id map per input: ``N×H×W`` (images) or ``N×D`` (tabular), ``-1`` = none."""
        x = check_inputs(x)
        self._check_shape(x)
        return np.broadcast_to(self.segments_, (x.shape[0], *self.segments_.shape))

    def _flat_segments(self, x: np.ndarray) -> np.ndarray:
        return self.segments(x).reshape(x.shape[0], -1)

    def transform(self, x) -> np.ndarray:
        """Feature values: the mean of the positions (and channels) each feature covers.

        Returns
        -------
        ndarray
            ``N×n_features`` float64.
        """
        x = check_inputs(x)
        self._check_shape(x)
        if not self.shared:
            raise InputError("transform needs a shared feature space (per_sample=False)")
        seg = self.segments_.ravel()
        flat = x.reshape(x.shape[0], -1) if x.ndim == 2 else x.mean(axis=1).reshape(x.shape[0], -1)
        keep = seg >= 0
        counts = np.bincount(seg[keep], minlength=self.n_features_).astype(np.float64)
        agg = np.zeros((seg.size, self.n_features_))
        agg[np.flatnonzero(keep), seg[keep]] = 1.0
        return (flat.astype(np.float64) @ agg) / np.maximum(counts, 1.0)

    def to_input_mask(self, feature_mask, x) -> np.ndarray:
        """Boolean mask shaped like ``x`` marking the positions covered by the chosen features.

        Parameters
        ----------
        feature_mask : ndarray of bool
            ``N×n_features`` (or ``n_features`` for all rows alike); ``True`` = chosen.
        x : ndarray
            The inputs (their per-sample segmentation is used when the space is not shared).
        """
        x = np.asarray(x)
        fm = np.asarray(feature_mask, dtype=bool)
        if fm.ndim == 1:
            fm = np.broadcast_to(fm, (x.shape[0], fm.shape[0]))
        seg = self._flat_segments(x)
        n_cols = max(fm.shape[1], int(seg.max()) + 1)
        padded = np.zeros((fm.shape[0], n_cols + 1), dtype=bool)
        padded[:, : fm.shape[1]] = fm  # the last column stays False: label -1 maps there
        pix = np.take_along_axis(padded, np.where(seg < 0, n_cols, seg), axis=1)
        if x.ndim == 4:
            pix = pix.reshape(x.shape[0], 1, *x.shape[2:])
            pix = np.broadcast_to(pix, x.shape)
        return np.ascontiguousarray(pix.reshape(x.shape))

    def nullify(self, x, off_mask, fill) -> np.ndarray:
        """Copy of ``x`` whose features in ``off_mask`` take the values of ``fill``.

        Parameters
        ----------
        x : ndarray
            Inputs.
        off_mask : ndarray of bool
            ``N×n_features``; ``True`` = replace this feature.
        fill : ndarray
            Replacement values shaped like ``x`` (see :func:`fill_values`), or another set of
            inputs (transplanting their feature values).
        """
        x = np.asarray(x)
        mask = self.to_input_mask(off_mask, x)
        return np.where(mask, np.broadcast_to(fill, x.shape), x).astype(x.dtype, copy=False)

    def describe(self) -> dict:
        """Name and parameters, for reports and ``Explanation.to_dict()``."""
        params = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        return {"name": type(self).__name__, **params}


class PixelSpace(FeatureSpace):
    """Raw pixels as features (channels share a pixel's feature).

    Parameters
    ----------
    top : int, optional
        Keep only the ``top`` pixels with the highest variance over the fitting inputs (the
        others belong to no feature and are never perturbed). All pixels when None.
    """

    def __init__(self, top: int | None = None) -> None:
        self.top = top

    def _segmentation(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            raise InputError("PixelSpace needs images (N×C×H×W); use TabularSpace for rows")
        h, w = x.shape[2:]
        if self.top is None:
            return np.arange(h * w).reshape(h, w)
        if not 1 <= self.top <= h * w:
            raise InputError(f"top must be in 1..{h * w}, got {self.top}")
        var = x.mean(axis=1).reshape(x.shape[0], -1).var(axis=0)
        keep = np.sort(np.argsort(-var, kind="stable")[: self.top])
        seg = np.full(h * w, -1)
        seg[keep] = np.arange(self.top)
        return seg.reshape(h, w)


class GridSpace(FeatureSpace):
    """Square cells of ``cell×cell`` pixels (the last row / column of cells may be smaller).

    Parameters
    ----------
    cell : int
        Cell side in pixels; 2 gives 196 features on 28×28 images, 4 gives 49.
    """

    def __init__(self, cell: int = 2) -> None:
        self.cell = cell

    def _segmentation(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            raise InputError("GridSpace needs images (N×C×H×W); use TabularSpace for rows")
        check_int("cell", self.cell, low=1)
        h, w = x.shape[2:]
        rows = np.arange(h) // self.cell
        cols = np.arange(w) // self.cell
        n_cols = -(-w // self.cell)
        return rows[:, None] * n_cols + cols[None, :]


class SuperpixelSpace(FeatureSpace):
    """SLIC superpixels (scikit-image), sized for small images such as 28×28.

    Parameters
    ----------
    n_segments : int
        Approximate number of superpixels.
    compactness : float
        SLIC compactness; high values give grid-like, low values contour-following segments.
    per_sample : bool
        False (default): one segmentation of the fitting inputs' mean image, shared by all
        inputs (needed by DMM-MEN). True: segment every image on its own (LIME-style); feature
        ids then differ between images.
    """

    def __init__(
        self, n_segments: int = 50, compactness: float = 0.1, per_sample: bool = False
    ) -> None:
        self.n_segments = n_segments
        self.compactness = compactness
        self.per_sample = per_sample

    @property
    def shared(self) -> bool:  # type: ignore[override]
        return not self.per_sample

    def _slic(self, img_chw: np.ndarray) -> np.ndarray:
        from skimage.segmentation import slic

        img = np.moveaxis(img_chw, 0, -1).astype(np.float64)
        seg = slic(
            img,
            n_segments=self.n_segments,
            compactness=self.compactness,
            start_label=0,
            channel_axis=-1,
            enforce_connectivity=True,
        )
        _, seg = np.unique(seg, return_inverse=True)  # consecutive ids
        return seg.reshape(img.shape[:2])

    def _segmentation(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            raise InputError("SuperpixelSpace needs images (N×C×H×W)")
        return self._slic(x.mean(axis=0))

    def segments(self, x) -> np.ndarray:
        if not self.per_sample:
            return super().segments(x)
        x = check_inputs(x)
        self._check_shape(x)
        return np.stack([self._slic(img) for img in x])


class TabularSpace(FeatureSpace):
    """Plain tabular columns: feature ``j`` is column ``j`` of an ``N×D`` array."""

    def _segmentation(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2:
            raise InputError("TabularSpace needs N×D rows; use an image space for N×C×H×W")
        return np.arange(x.shape[1])


def n_features(space: FeatureSpace, x) -> int:
    """Largest feature count over the rows of ``x`` (per-sample spaces vary by row)."""
    if space.shared:
        return space.n_features_
    return int(space.segments(x).reshape(len(x), -1).max()) + 1
