"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def data_dir() -> Path:
    """The staged real-data folder ($DEEPSCOPE_DATA); skips the test when it is not set."""
    value = os.environ.get("DEEPSCOPE_DATA", "").strip()
    if not value:
        pytest.skip("DEEPSCOPE_DATA is not set (point it at the staged data folder)")
    return Path(value)
