"""Perturbation sampling shared by DMM-MEN (local samples) and the KernelSHAP adapter.

A *coalition* is a boolean vector over a feature space: ``True`` = the feature keeps its value,
``False`` = it is nullified (filled from a baseline). :func:`render` turns coalitions into
inputs through the feature space, so every explainer perturbs inputs the same way.
"""

from __future__ import annotations

import numpy as np

from deepscope.errors import InputError
from deepscope.explain.features import FeatureSpace


def random_coalitions(
    n: int,
    n_features: int,
    rng: np.random.Generator,
    off_fraction: tuple[float, float] = (0.02, 0.5),
) -> np.ndarray:
    """``n`` random coalitions; each turns off a share of features drawn from ``off_fraction``.

    Returns
    -------
    ndarray
        ``n×n_features`` bool, at least one feature off per row.
    """
    lo, hi = off_fraction
    if not 0.0 <= lo <= hi <= 1.0:
        raise InputError(f"off_fraction must satisfy 0 <= lo <= hi <= 1, got {off_fraction}")
    share = rng.uniform(lo, hi, size=(n, 1))
    keep = rng.random((n, n_features)) >= share
    # guarantee one nullified feature per coalition (otherwise it repeats the original input)
    all_on = keep.all(axis=1)
    if all_on.any():
        keep[np.flatnonzero(all_on), rng.integers(0, n_features, all_on.sum())] = False
    return keep


def render(space: FeatureSpace, x_row: np.ndarray, coalitions: np.ndarray, fill_row) -> np.ndarray:
    """Inputs made from one input ``x_row`` by nullifying the features each coalition turns off.

    Parameters
    ----------
    space : FeatureSpace
        A fitted space.
    x_row : ndarray
        One input (``C×H×W`` or ``D``).
    coalitions : ndarray of bool
        ``M×F``; ``False`` = nullify.
    fill_row : ndarray
        Replacement values shaped like ``x_row``.
    """
    coalitions = np.asarray(coalitions, dtype=bool)
    reps = np.broadcast_to(x_row, (len(coalitions), *x_row.shape))
    return space.nullify(reps, ~coalitions, np.broadcast_to(fill_row, reps.shape))


def local_samples(
    space: FeatureSpace,
    x: np.ndarray,
    fill: np.ndarray,
    n_per_sample: int,
    rng: np.random.Generator,
    off_fraction: tuple[float, float] = (0.02, 0.5),
) -> tuple[np.ndarray, np.ndarray]:
    """Perturbed copies of every row of ``x`` (LEMNA-style local samples).

    Returns
    -------
    inputs : ndarray
        ``(N·n_per_sample)×...`` perturbed inputs, grouped by source row.
    source : ndarray
        ``N·n_per_sample`` int: the row of ``x`` each perturbed input comes from.
    """
    if n_per_sample <= 0:
        return x[:0], np.zeros(0, dtype=np.int64)
    n_feat = space.n_features_
    keep = random_coalitions(len(x) * n_per_sample, n_feat, rng, off_fraction)
    source = np.repeat(np.arange(len(x)), n_per_sample)
    inputs = space.nullify(x[source], ~keep, fill[source])
    return inputs, source
