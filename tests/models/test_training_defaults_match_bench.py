"""The zoo's recommended training settings are the benchmark's recipes (bench/zoo.py) on each
architecture's home dataset, so ``deepscope train`` reproduces bench/results/train_zoo.md."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from deepscope.models import zoo

ROOT = Path(__file__).resolve().parents[2]


def _home(name: str) -> str:
    if name.startswith("text-"):
        return "sst2"
    if name.startswith("cifar-"):
        return "cifar10"
    if name.startswith("face-"):
        return "att-faces"
    return "mnist"


@pytest.fixture(scope="module")
def bench_zoo():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.zoo")


@pytest.mark.parametrize("name", zoo.names())
def test_defaults_equal_the_bench_recipe(name, bench_zoo):
    try:
        r = bench_zoo.recipe(name, _home(name))
    except KeyError:
        pytest.skip(f"bench/zoo.py has no recipe for {name}")
    d = zoo.training_defaults(name)
    assert (d.epochs, d.lr, d.batch_size, d.weight_decay, d.augment, d.patience,
            d.val_fraction) == (r.epochs, r.lr, r.batch_size, r.weight_decay, r.augment,
                                r.patience, r.val_fraction)
