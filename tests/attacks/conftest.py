"""Fixtures of the attack tests: a small trained MNIST model and correctly classified inputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("_attacks_model_loader",
                                               Path(__file__).with_name("_model.py"))
_loader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_loader)
helper = _loader.load_helper()


@pytest.fixture
def digits():
    """(model, x, y): the shared small classifier and 24 inputs it classifies correctly.

    The model is returned in eval mode; tests that change its state must restore it.
    """
    return helper.trained()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, especially when other jobs share the cores."""
    with helper.one_thread():
        yield
