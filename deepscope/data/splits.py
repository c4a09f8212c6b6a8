"""Seeded, stratified splits of a :class:`~deepscope.data.Dataset`.

Every class is divided on its own, so each part receives its share of every class up to
rounding: for a class of ``n`` samples and a fraction ``f`` a part gets ``floor(f·n)`` or
``ceil(f·n)`` samples (never more than one away from ``f·n``). Which parts round up is chosen
so that the parts' total sizes also stay close to their fractions. Indices inside a part keep
the dataset's order. With per-position labels (N×T, e.g. function starts) a sample's stratum is
its highest label (1 = the window holds a function start). :func:`group_split` keeps whole
groups (e.g. source libraries) together instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepscope.data.dataset import Dataset
from deepscope.errors import InputError

_EPS = 1e-9


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    try:
        values = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise InputError(f"fractions must be a sequence of numbers, got {fractions!r}") from None
    if not values:
        raise InputError("fractions must not be empty")
    if any(not math.isfinite(f) or f < 0 for f in values):
        raise InputError(f"fractions must be finite and >= 0, got {values}")
    if sum(values) > 1 + _EPS:
        raise InputError(f"fractions must sum to at most 1, got {values} (sum {sum(values)})")
    return values


def _allocate(sizes: np.ndarray, fractions: list[float]) -> np.ndarray:
    """Per-class part sizes: counts[c, i] is floor or ceil of fractions[i] * sizes[c]."""
    f = np.asarray(fractions)
    counts = np.zeros((len(sizes), len(f)), dtype=np.int64)
    given = np.zeros(len(f))
    seen = 0
    for c, n in enumerate(sizes):
        target = f * n
        base = np.floor(target + _EPS)
        frac = np.where(target - base > _EPS, target - base, 0.0)
        seen += n
        # How many parts round up: keep the running total on track with sum(fractions) * seen.
        wanted = round(float(f.sum()) * seen) - int(given.sum() + base.sum())
        extra = int(np.clip(wanted, 0, np.count_nonzero(frac)))
        if extra:
            # Round up where the running totals lag furthest behind their share.
            deficit = f * seen - (given + base)
            order = sorted(np.flatnonzero(frac > 0), key=lambda i: (-deficit[i], -frac[i], i))
            base[order[:extra]] += 1
        counts[c] = base.astype(np.int64)
        given += base
    return counts


def stratified_split(
    ds: Dataset,
    fractions: Sequence[float],
    *,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> list[Dataset]:
    """Split ``ds`` into disjoint, class-stratified parts.

    Parameters
    ----------
    ds : Dataset
        The data to split.
    fractions : sequence of float
        Share of each part; non-negative, summing to at most 1 (+1e-9). When the sum is below
        1 the remaining samples are left out.
    seed : int
        Seed of the shuffle; the same seed gives the same parts.
    names : sequence of str, optional
        Part names, used as each part's ``split``; default ``"part0"``, ``"part1"``, ...

    Returns
    -------
    list of Dataset
        One per fraction, on the device of ``ds``.
    """
    if not isinstance(ds, Dataset):
        raise InputError(f"ds must be a deepscope Dataset, got {type(ds).__name__}")
    values = _check_fractions(fractions)
    seed = _check_seed(seed)
    if names is None:
        names = [f"part{i}" for i in range(len(values))]
    names = [str(n) for n in names]
    if len(names) != len(values) or len(set(names)) != len(names):
        raise InputError(f"names must be {len(values)} distinct strings, got {names}")
    labels = ds.y.cpu().numpy()
    if ds.per_position:
        labels = labels.max(axis=1, initial=0)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(labels == c) for c in range(ds.num_classes)]
    counts = _allocate(np.array([len(m) for m in members]), values)
    parts: list[list[np.ndarray]] = [[] for _ in values]
    for c, idx in enumerate(members):
        shuffled = idx[rng.permutation(len(idx))]
        bounds = np.concatenate([[0], np.cumsum(counts[c])])
        for i in range(len(values)):
            parts[i].append(shuffled[bounds[i] : bounds[i + 1]])
    return [
        ds.subset(torch.from_numpy(np.sort(np.concatenate(p)).astype(np.int64)), split=name)
        for p, name in zip(parts, names, strict=True)
    ]


def _check_fraction(val_fraction: object) -> None:
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not (
            0 < val_fraction < 1):
        raise InputError(f"val_fraction must be in (0, 1), got {val_fraction!r}")


def train_val_split(
    ds: Dataset, val_fraction: float = 0.1, *, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """Split off a stratified validation set.

    Returns
    -------
    (Dataset, Dataset)
        ``(train, validation)`` with splits named ``"train"`` and ``"validation"``.
    """
    _check_fraction(val_fraction)
    train, val = stratified_split(
        ds, [1.0 - val_fraction, val_fraction], seed=seed, names=("train", "validation")
    )
    return train, val


def group_split(
    ds: Dataset, val_fraction: float = 0.1, *, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """Split off a validation set made of whole groups (``ds.groups``, e.g. source libraries).

    The distinct group names, sorted, are permuted with ``numpy.random.default_rng(seed)``;
    groups are moved to validation in that order until it holds at least ``val_fraction`` of
    the samples (at least one group, never all of them). No group is in both parts, so a
    validation score is not inflated by near-copies from the same library.

    Returns
    -------
    (Dataset, Dataset)
        ``(train, validation)`` with splits named ``"train"`` and ``"validation"``.
    """
    _check_fraction(val_fraction)
    if ds.groups is None:
        raise InputError(f"{ds.name} has no groups; use train_val_split instead")
    names, counts = np.unique(ds.groups, return_counts=True)
    if len(names) < 2:
        raise InputError(f"group_split needs at least 2 groups, {ds.name} has {len(names)}")
    order = np.random.default_rng(_check_seed(seed)).permutation(len(names))
    chosen, total = [], 0
    for i in order[:-1]:
        chosen.append(names[i])
        total += int(counts[i])
        if total >= val_fraction * len(ds):
            break
    val = np.isin(ds.groups, chosen)
    return (ds.subset(torch.from_numpy(~val), split="train"),
            ds.subset(torch.from_numpy(val), split="validation"))


def stratified_subset(ds: Dataset, n: int | None, *, seed: int = 0) -> Dataset:
    """A seeded, stratified subset of ``n`` samples (``ds`` itself when ``n`` is None or
    at least ``len(ds)``); the split keeps its name."""
    if n is None or n >= len(ds):
        return ds
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise InputError(f"the subset size must be a positive integer, got {n!r}")
    (part,) = stratified_split(ds, [n / len(ds)], seed=seed, names=[ds.split])
    return part


@dataclass(frozen=True)
class ModeSplit:
    """The four parts of the MODE protocol (see :func:`mode_split`)."""

    train: Dataset
    validation: Dataset
    test: Dataset
    pool: Dataset

    def to_dict(self) -> dict[str, Any]:
        """Summaries of the four parts."""
        return {
            "train": self.train.to_dict(),
            "validation": self.validation.to_dict(),
            "test": self.test.to_dict(),
            "pool": self.pool.to_dict(),
        }


def mode_split(
    ds: Dataset, *, seed: int = 0, fractions: Sequence[float] = (0.3, 0.1, 0.1, 0.5)
) -> ModeSplit:
    """Split ``ds`` as in the MODE paper: 30% train / 10% validation / 10% test / 50% pool.

    The pool is the bug-fixing pool that repair selects new training samples from. The split is
    stratified and seeded (see :func:`stratified_split`).

    Parameters
    ----------
    ds : Dataset
        Usually the whole dataset (e.g. ``load(name, "all")``).
    seed : int
        Shuffle seed.
    fractions : four floats
        Shares of train, validation, test and pool.
    """
    if len(fractions) != 4:
        raise InputError(f"mode_split needs four fractions, got {list(fractions)}")
    train, validation, test, pool = stratified_split(
        ds, fractions, seed=seed, names=("train", "validation", "test", "pool")
    )
    return ModeSplit(train=train, validation=validation, test=test, pool=pool)
