"""Feature spaces shared by every explainer and by the fidelity tests.

A feature space maps an input to a vector of interpretable features and a set of features back
to the input positions it covers. It is a *segmentation*: every input position (pixel, or
tabular column) belongs to one feature, or to none (label ``-1``, never perturbed). DMM-MEN, the
LIME / KernelSHAP adapters and the fidelity tests all perturb inputs through the same object, so
that "feature 17" and "nullify feature 17" mean the same thing everywhere.

Spaces: :class:`PixelSpace` (raw pixels, optionally only the top-variance ones),
:class:`GridSpace` (square cells), :class:`SuperpixelSpace` (SLIC superpixels, shared or per
image), :class:`TabularSpace` (plain columns) and :class:`SequenceSpace` (the positions of int64
token / byte sequences, optionally only a window of them).

Filling ("nullifying") replaces the covered positions with a *baseline*: ``"zero"``, ``"mean"``
(a reference mean input) or ``"blur"`` (a Gaussian-blurred copy of the input itself), see
:func:`fill_values`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from deepscope._validate import check_int
from deepscope.errors import InputError, NotFittedError
from deepscope.explain._inputs import BASELINES, check_inputs, fill_values

__all__ = ["BASELINES", "FeatureSpace", "GridSpace", "PixelSpace", "SequenceSpace",
           "SuperpixelSpace", "TabularSpace", "check_inputs", "fill_values", "n_features"]


class FeatureSpace(ABC):
    """A segmentation of the input into interpretable features.

    Subclasses implement :meth:`_segmentation`. ``fit(x)`` learns what needs data (input shape,
    top-variance pixels, a shared superpixel map). Shared spaces (``shared = True``) use one
    segmentation for every input, which is what a global surrogate such as DMM-MEN needs.
    """

    shared: bool = True
    #: True for spaces over integer ids (sequences): inputs stay int64 end to end.
    integer: bool = False

    def check(self, x, *, name: str = "x") -> np.ndarray:
        """``x`` checked for this space: float images / rows, or int64 ids (``integer``)."""
        return check_inputs(x, name=name, integer=self.integer)

    def baseline(self, x: np.ndarray, how: str | float | np.ndarray = "zero", *,
                 reference=None) -> np.ndarray:
        """Values of nullified positions of ``x``: :func:`fill_values` (sequences override)."""
        return fill_values(x, how, reference=reference)

    def fit(self, x) -> FeatureSpace:
        """Learn the segmentation from example inputs; returns ``self``."""
        x = self.check(x)
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
        """Feature-id map per input: ``N×H×W`` (images) or ``N×D`` / ``N×T``, ``-1`` = none."""
        x = self.check(x)
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
        x = self.check(x)
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

    def nullify(self, x, off_mask, fill=None) -> np.ndarray:
        """Copy of ``x`` whose features in ``off_mask`` take the values of ``fill``.

        Parameters
        ----------
        x : ndarray
            Inputs.
        off_mask : ndarray of bool
            ``N×n_features``; ``True`` = replace this feature.
        fill : ndarray, optional
            Replacement values shaped like ``x`` (see :func:`fill_values`), or another set of
            inputs (transplanting their feature values). Default: the space's own baseline
            (:meth:`baseline`: zeros, or a sequence space's ``fill`` id).
        """
        x = np.asarray(x)
        if fill is None:
            fill = self.baseline(x)
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
        x = self.check(x)
        self._check_shape(x)
        return np.stack([self._slic(img) for img in x])


class TabularSpace(FeatureSpace):
    """Plain tabular columns: feature ``j`` is column ``j`` of an ``N×D`` array."""

    def _segmentation(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2:
            raise InputError("TabularSpace needs N×D rows; use an image space for N×C×H×W")
        return np.arange(x.shape[1])


class SequenceSpace(FeatureSpace):
    """Positions of int64 ``N×T`` token / byte sequences as features (LEMNA's setting).

    Feature ``j`` is position ``start + j`` of every sequence; with no window, feature ``j`` is
    position ``j``. Positions outside the window belong to no feature (label ``-1``) and are
    never perturbed. Nullifying a position writes ``fill`` (0 = padding, as LEMNA zeroes bytes).
    Inputs stay int64 everywhere (:attr:`integer`). The feature *values* (:meth:`transform`,
    what DMM-MEN regresses on) are binary: 1 where a position holds a token other than
    ``fill``, 0 where it holds ``fill`` (LEMNA's interpretable representation).

    Parameters
    ----------
    fill : int
        The id written into nullified positions.
    window : (int, int), optional
        ``(start, stop)``: only positions ``start <= t < stop`` are features (a negative index
        counts from the end, as in Python slices). Exclusive with ``centre``.
    centre, radius : int, optional
        The window ``centre - radius .. centre + radius`` (e.g. LEMNA's 41 bytes: radius 20).
    """

    integer = True

    def __init__(self, fill: int = 0, window: tuple[int, int] | None = None,
                 centre: int | None = None, radius: int | None = None) -> None:
        self.fill = fill
        self.window = window
        self.centre = centre
        self.radius = radius

    def _bounds(self, length: int) -> tuple[int, int]:
        if self.window is not None and (self.centre is not None or self.radius is not None):
            raise InputError("SequenceSpace: pass window=(start, stop) or centre and radius, "
                             "not both")
        if self.window is not None:
            start, stop, step = slice(*self.window).indices(length)
        elif self.centre is not None or self.radius is not None:
            if self.centre is None or self.radius is None:
                raise InputError("SequenceSpace: centre and radius go together")
            centre = check_int("centre", self.centre, low=0)
            radius = check_int("radius", self.radius, low=0)
            start, stop, step = max(centre - radius, 0), min(centre + radius + 1, length), 1
        else:
            start, stop, step = 0, length, 1
        if stop <= start or step != 1:
            where = self.window or (self.centre, self.radius)
            raise InputError(f"SequenceSpace: the window {where} holds no position of "
                             f"sequences of length {length}")
        return start, stop

    def _segmentation(self, x: np.ndarray) -> np.ndarray:
        check_int("fill", self.fill, low=0)
        start, stop = self._bounds(x.shape[1])
        seg = np.full(x.shape[1], -1)
        seg[start:stop] = np.arange(stop - start)
        return seg

    @property
    def positions_(self) -> np.ndarray:
        """Input position of each feature (``n_features`` int64)."""
        self._check_fitted()
        return np.flatnonzero(self.segments_ >= 0).astype(np.int64)

    def baseline(self, x: np.ndarray, how: str | float | np.ndarray = "zero", *,
                 reference=None) -> np.ndarray:
        """``fill`` everywhere (``how="zero"`` or ``"fill"``: the null token), or ``how``'s ids.

        ``"mean"`` and ``"blur"`` make no sense for ids and are refused.
        """
        if isinstance(how, str):
            if how not in ("zero", "fill"):
                raise InputError(f"sequence spaces nullify with their fill id; baseline {how!r}"
                                 " is for images / rows, use 'zero' (= the fill id)")
            return np.full_like(x, self.fill)
        return fill_values(x, how, reference=reference)

    def transform(self, x) -> np.ndarray:
        """Binary feature values: 1 where the position holds a token other than ``fill``."""
        x = self.check(x)
        self._check_shape(x)
        return (x[:, self.positions_] != self.fill).astype(np.float64)


def n_features(space: FeatureSpace, x) -> int:
    """Largest feature count over the rows of ``x`` (per-sample spaces vary by row)."""
    if space.shared:
        return space.n_features_
    return int(space.segments(x).reshape(len(x), -1).max()) + 1
