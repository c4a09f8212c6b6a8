"""The overlay plot used by the CLI and the report."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from deepscope.errors import InputError
from deepscope.explain import Explanation, GridSpace, plot_overlay


def _exp():
    space = GridSpace(2).fit(np.zeros((1, 1, 4, 4)))
    return Explanation("t", 0, np.array([[1.0, 0.0, 0.0, 0.0]] * 2), space.segments_, (1, 4, 4))


def test_overlay_returns_a_figure_and_marks_the_top_cells():
    x = np.zeros((2, 1, 4, 4), dtype=np.float32)
    fig = plot_overlay(x, _exp(), 1)
    assert isinstance(fig, Figure)
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (4, 4, 3)
    assert np.all(img[:2, :2, 0] > 0.5) and np.all(img[2:, 2:] == 0)


def test_overlay_draws_on_a_given_axes():
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert plot_overlay(np.zeros((1, 4, 4)), _exp(), 2, ax=ax, title="x") is fig
    assert ax.get_title() == "x"
    with pytest.raises(InputError, match="index"):
        plot_overlay(np.zeros((2, 1, 4, 4)), _exp(), 1, index=5)
