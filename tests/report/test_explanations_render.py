"""The explanation section renders a Comparison (it computes nothing)."""

from __future__ import annotations

import numpy as np

from deepscope.explain import Explanation, GridSpace
from deepscope.explain.compare import Comparison, ExplainRun
from deepscope.report import explanations as rx


def _comparison() -> Comparison:
    space = GridSpace(2).fit(np.zeros((1, 1, 4, 4)))
    x = np.random.default_rng(0).uniform(size=(5, 1, 4, 4)).astype(np.float32)
    runs = tuple(
        ExplainRun(m, Explanation(m, 1, np.tile(np.arange(4.0) * s, (5, 1)), space.segments_,
                                  (1, 4, 4)), seconds=0.5, queries=q)
        for m, s, q in (("a", 1.0, 10), ("b", -1.0, None))
    )
    return Comparison(target=1, x=x, runs=runs)


def test_overlay_grid_draws_one_row_per_input_and_one_column_per_method():
    fig = rx.overlay_grid(_comparison(), 1, n_show=3)
    axes = fig.get_axes()
    assert len(axes) == 3 * 3
    assert [ax.get_title() for ax in axes[:3]] == ["input", "a", "b"]


def test_top_feature_table_lists_each_method_first_input():
    rows = rx.top_feature_table(_comparison(), 2)
    assert rows == [
        {"method": "a", "seconds": 0.5, "queries": 10, "top-2 features of input 1": "3, 2"},
        {"method": "b", "seconds": 0.5, "queries": "—", "top-2 features of input 1": "0, 1"},
    ]
