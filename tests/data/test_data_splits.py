"""Stratified, seeded, disjoint splits and the MODE protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepscope.data import (
    Dataset,
    ModeSplit,
    load,
    mode_split,
    stratified_split,
    train_val_split,
)
from deepscope.errors import InputError

SIZES = [50, 37, 13, 100, 1, 0, 9]  # imbalanced, one singleton, one empty class


def toy(sizes: list[int] = SIZES) -> Dataset:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    y = y[perm]
    n = len(y)
    return Dataset(torch.rand(n, 1, 2, 2), y, tuple(f"c{i}" for i in range(len(sizes))),
                   extras={"idx": torch.arange(n)})


def ids(ds: Dataset) -> list[int]:
    return ds.extras["idx"].tolist()


@pytest.mark.parametrize("fractions", [(0.5, 0.3, 0.2), (0.3, 0.1, 0.1, 0.5), (0.25, 0.25)])
def test_parts_are_disjoint_and_stratified(fractions: tuple[float, ...]) -> None:
    ds = toy()
    parts = stratified_split(ds, fractions, seed=3)
    all_ids = [i for p in parts for i in ids(p)]
    assert len(all_ids) == len(set(all_ids)), "parts overlap"
    if sum(fractions) == pytest.approx(1.0):
        assert sorted(all_ids) == list(range(len(ds)))
    counts = ds.class_counts()
    for part, f in zip(parts, fractions, strict=True):
        # per class within one sample of its share
        assert np.all(np.abs(part.class_counts() - f * counts) < 1.0 + 1e-9)
        # totals close to the share as well
        assert abs(len(part) - f * len(ds)) <= 2
        # each sample keeps its own label
        assert torch.equal(part.y, ds.y[part.extras["idx"]])
        assert ids(part) == sorted(ids(part))
    assert [p.split for p in parts] == [f"part{i}" for i in range(len(fractions))]


def test_seeded() -> None:
    ds = toy()
    a = stratified_split(ds, [0.5, 0.5], seed=7)
    b = stratified_split(ds, [0.5, 0.5], seed=7)
    c = stratified_split(ds, [0.5, 0.5], seed=8)
    assert [ids(p) for p in a] == [ids(p) for p in b]
    assert ids(a[0]) != ids(c[0])
    assert sorted(ids(c[0]) + ids(c[1])) == list(range(len(ds)))


def test_names_and_validation() -> None:
    ds = toy()
    a, b = stratified_split(ds, [0.6, 0.2], names=["x", "y"])
    assert (a.split, b.split) == ("x", "y")
    assert len(a) + len(b) == pytest.approx(0.8 * len(ds), abs=2)
    for bad, message in [([0.7, 0.4], "at most 1"), ([-0.1, 0.5], ">= 0"), ([], "empty"),
                         ([float("nan")], "finite")]:
        with pytest.raises(InputError, match=message):
            stratified_split(ds, bad)
    with pytest.raises(InputError, match="distinct"):
        stratified_split(ds, [0.5, 0.5], names=["a"])
    with pytest.raises(InputError, match="seed"):
        stratified_split(ds, [0.5], seed=-1)
    with pytest.raises(InputError, match="Dataset"):
        stratified_split(torch.zeros(3), [0.5])  # type: ignore[arg-type]


def test_train_val_split() -> None:
    ds = toy([100, 60, 40])
    train, val = train_val_split(ds, 0.1, seed=0)
    assert (train.split, val.split) == ("train", "validation")
    assert val.class_counts().tolist() == [10, 6, 4]
    assert len(train) == 180
    assert not set(ids(train)) & set(ids(val))
    for bad in (0, 1, 1.5, -0.2):
        with pytest.raises(InputError, match="val_fraction"):
            train_val_split(ds, bad)


def test_mode_split_sizes_balanced() -> None:
    ds = toy([100] * 10)
    split = mode_split(ds, seed=0)
    assert isinstance(split, ModeSplit)
    parts = [split.train, split.validation, split.test, split.pool]
    assert [len(p) for p in parts] == [300, 100, 100, 500]
    assert [p.split for p in parts] == ["train", "validation", "test", "pool"]
    assert split.train.class_counts().tolist() == [30] * 10
    assert split.pool.class_counts().tolist() == [50] * 10
    assert sorted(i for p in parts for i in ids(p)) == list(range(1000))
    assert set(split.to_dict()) == {"train", "validation", "test", "pool"}
    other = mode_split(ds, seed=1)
    assert ids(other.pool) != ids(split.pool)
    with pytest.raises(InputError, match="four"):
        mode_split(ds, fractions=(0.5, 0.5))


def test_mode_split_real_mnist_test(mnist_root) -> None:
    ds = load("mnist", "test", root=mnist_root, download=False, progress=False)
    split = mode_split(ds, seed=0)
    sizes = [len(split.train), len(split.validation), len(split.test), len(split.pool)]
    assert sizes == [3000, 1000, 1000, 5000]
    counts = ds.class_counts()
    for part, f in zip([split.train, split.validation, split.test, split.pool],
                       (0.3, 0.1, 0.1, 0.5), strict=True):
        assert np.all(np.abs(part.class_counts() - f * counts) < 1.0 + 1e-9)
