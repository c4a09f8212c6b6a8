"""Input checks and nullification baselines shared by the feature spaces and the fidelity tests.

Images are float ``N×C×H×W`` in [0, 1], tabular rows float ``N×D``; token and byte sequences
are int64 ``N×T`` ids (0 = padding). :func:`check_inputs` checks either kind (``integer=True``
for ids); :func:`fill_values` gives the values that replace nullified positions. Both are
re-exported by :mod:`deepscope.explain.features`.
"""

from __future__ import annotations

import numpy as np

from deepscope.errors import InputError

BASELINES = ("zero", "mean", "blur")


def check_inputs(x, *, name: str = "x", integer: bool = False) -> np.ndarray:
    """Return ``x`` as a checked array: float images / rows, or int64 sequences.

    Parameters
    ----------
    x : array-like
        ``N×C×H×W`` images, ``N×D`` tabular rows or (``integer=True``) ``N×T`` token / byte
        ids.
    name : str
        Argument name used in error messages.
    integer : bool
        False (default): cast to float32 (float64 stays float64), 2-D or 4-D. True: the input
        is a sequence of ids; it must be a 2-D integer array and is returned as int64 (never
        cast to float). A feature space decides which (:attr:`FeatureSpace.integer`).
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # e.g. a ragged list
        raise InputError(f"{name} must be an array, got {type(x).__name__}: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if integer:
        return _check_ids(arr, name)
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


def _check_ids(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as int64 ``N×T`` ids (sequences), refusing floats, negatives and other shapes."""
    if arr.dtype.kind not in "iub":
        raise InputError(
            f"{name} must hold integer token / byte ids (int64 N×T) for a sequence space, got "
            f"dtype {arr.dtype}; pass x.astype(np.int64) if the values are whole numbers"
        )
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be N×T sequences of ids, got shape {arr.shape}; add a batch axis "
            "with x[None] for a single sequence"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} is empty; pass at least one non-empty sequence")
    if arr.min() < 0:
        raise InputError(f"{name} holds negative ids (min {arr.min()}); ids are >= 0")
    return arr.astype(np.int64, copy=False)


def fill_values(
    x: np.ndarray, baseline: str | np.ndarray = "zero", *, reference=None, sigma: float = 2.0
) -> np.ndarray:
    """Values that replace nullified positions of ``x``.

    Parameters
    ----------
    x : ndarray
        Inputs, ``N×C×H×W`` or ``N×D``.
    baseline : {"zero", "mean", "blur"}, number or ndarray
        A number: every position takes it (e.g. a sequence space's padding id). ``"zero"``:
        zeros. ``"mean"``: the per-position mean of ``reference`` (of ``x`` itself
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
    if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(
        baseline, bool
    ):
        return np.full_like(x, baseline)
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
