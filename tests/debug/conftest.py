"""Shared fixtures: a small synthetic task and a zoo MLP with an injected under-fitting bug."""

from __future__ import annotations

import pytest
import torch

from deepscope import data, models
from deepscope.testing.data import blobs


@pytest.fixture(scope="session")
def split() -> data.ModeSplit:
    torch.set_num_threads(2)
    ds = blobs(2000, 4, (1, 28, 28), noise=0.6, styles=4, seed=0)
    return data.mode_split(ds, seed=0)


@pytest.fixture(scope="session")
def buggy(split):
    """(model, buggy train set): label 1 starved to 10 % of its samples."""
    train, _ = models.bugs.underfit(split.train, 1, keep=0.1, seed=0)
    model = models.zoo.build("mlp-100k", num_classes=4, seed=0)
    models.fit(model, train, epochs=3, seed=0, lr=2e-3, patience=None, progress=False)
    return model, train
