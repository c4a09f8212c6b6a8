"""Fixtures of the models tests."""

from __future__ import annotations

import os

import pytest
import torch

from deepscope.data import Dataset


@pytest.fixture(autouse=True)
def _one_thread():
    """The models here are tiny: one thread is as fast, and immune to OpenMP busy-waiting
    slowdowns when other processes compete for the cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def mnist_slice() -> tuple[Dataset, Dataset]:
    """2,000 MNIST training and 1,000 test images (skips without DEEPSCOPE_DATA)."""
    if not os.environ.get("DEEPSCOPE_DATA", "").strip():
        pytest.skip("DEEPSCOPE_DATA is not set (point it at the staged data folder)")
    from deepscope.data import load

    train = load("mnist", "train", download=False, progress=False)
    test = load("mnist", "test", download=False, progress=False)
    return train.subset(slice(0, 2000)), test.subset(slice(0, 1000))
