"""Small hand-made black boxes for the explain tests."""

from __future__ import annotations

import numpy as np
import pytest


def _block_model(x: np.ndarray) -> np.ndarray:
    """2-class black box on 1×4×4 images: class 1 iff the top-left 2×2 block is bright.

    The log-odds of class 1 is ``8 * (mean of the block) - 3``; nothing else matters.
    """
    x = np.asarray(x, dtype=np.float64)
    s = 8.0 * x[:, 0, :2, :2].mean(axis=(1, 2)) - 3.0
    p1 = 1.0 / (1.0 + np.exp(-s))
    return np.stack([1.0 - p1, p1], axis=1)


@pytest.fixture
def block_model():
    """The :func:`_block_model` black box."""
    return _block_model


@pytest.fixture
def block_data():
    """Bright-block positives (class 1) and dark-block negatives, 1×4×4 in [0, 1]."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.3, size=(40, 1, 4, 4)).astype(np.float32)
    x[:20, 0, :2, :2] = rng.uniform(0.7, 1.0, size=(20, 2, 2))
    return x


@pytest.fixture
def linear_images():
    """A 3-class linear-softmax black box on 1×8×8 images, with data."""
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1.0, size=(3, 64))

    def predict_proba(x):
        z = np.asarray(x, dtype=np.float64).reshape(len(x), -1) @ w.T
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    x = rng.uniform(0, 1, size=(30, 1, 8, 8)).astype(np.float32)
    return predict_proba, x, w
