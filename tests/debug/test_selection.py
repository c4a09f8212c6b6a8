"""Selection strategies: valid picks, their defining property, determinism, registry."""

from __future__ import annotations

import numpy as np
import pytest

from deepscope.debug import STRATEGIES, PoolContext, select
from deepscope.errors import RegistryError

ALL = ("mode", "random", "random-label", "failing", "deepgini", "auto")


@pytest.fixture(scope="module")
def ctx(buggy, split):
    model, _ = buggy
    return PoolContext(model, 1, "underfit", split.pool, split.validation, seed=0,
                       max_samples=800)


def test_registry_holds_every_strategy():
    assert set(ALL) <= set(STRATEGIES.names())
    with pytest.raises(RegistryError, match="choose one of"):
        STRATEGIES.get("nope")


@pytest.mark.parametrize("name", ALL)
def test_picks_are_valid_and_deterministic(ctx, name):
    available = np.ones(len(ctx.y), dtype=bool)
    available[::3] = False
    a = select(name, ctx, 40, available, seed=3)
    b = select(name, ctx, 40, available, seed=3)
    assert len(a) == 40 and len(np.unique(a)) == 40 and available[a].all()
    np.testing.assert_array_equal(a, b)
    # asking for more than is available returns what is left
    few = np.zeros(len(ctx.y), dtype=bool)
    few[:5] = True
    assert sorted(select(name, ctx, 50, few, seed=0)) == [0, 1, 2, 3, 4]


def test_label_and_failing_and_gini_properties(ctx):
    available = np.ones(len(ctx.y), dtype=bool)
    n_label = int((ctx.y == 1).sum())
    picks = select("random-label", ctx, 20, available, seed=0)
    assert (ctx.y[picks] == 1).all()
    assert (ctx.y[select("auto", ctx, 20, available, seed=0)] == 1).all()
    # more than the label has: all of the label's inputs, then others
    picks = select("random-label", ctx, n_label + 10, available, seed=0)
    assert (ctx.y[picks[:n_label]] == 1).all() and int((ctx.y[picks] == 1).sum()) == n_label
    wrong = ctx.probs().argmax(1) != ctx.y
    picks = select("failing", ctx, 15, available, seed=0)
    assert wrong[picks].all()
    wrong_of_label = int((wrong & (ctx.y == 1)).sum())
    assert (ctx.y[picks[: min(15, wrong_of_label)]] == 1).all()
    gini = 1 - (ctx.probs() ** 2).sum(1)
    picks = select("deepgini", ctx, 10, available, seed=0)
    assert gini[picks].min() >= np.sort(gini)[-10] - 1e-12


def test_mode_ranks_by_v_dot_dhm(ctx):
    available = np.ones(len(ctx.y), dtype=bool)
    scores = ctx.dhm_scores()
    picks = select("mode", ctx, 25, available, seed=0)
    assert scores[picks].min() >= np.sort(scores)[-25] - 1e-9
    info = ctx.to_dict()
    assert "uf1" in info["dhms"] and info["feature_models"]["layer"] in ("fc1", "fc2")
    assert info["seconds"] > 0


def test_context_carries_the_model_being_repaired(ctx, buggy):
    import copy

    import torch

    from deepscope.debug import SelectionContext

    model, _ = buggy
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-1.0)
    idx = np.arange(30)
    np.testing.assert_allclose(SelectionContext(ctx).current_probs(idx), ctx.probs()[idx],
                               atol=1e-6)
    assert not np.allclose(SelectionContext(ctx, other).current_probs(idx), ctx.probs()[idx])
    assert not hasattr(ctx, "current")  # the analysis holds no per-round state
    available = np.ones(len(ctx.y), dtype=bool)
    np.testing.assert_array_equal(select("auto", ctx, 20, available, seed=0, current=other),
                                  select("auto", SelectionContext(ctx, other), 20, available,
                                         seed=0))


def test_auto_parameters_are_the_ablation_variants(ctx):
    from deepscope.errors import InputError

    available = np.ones(len(ctx.y), dtype=bool)
    default = select("auto", ctx, 30, available, seed=1)
    np.testing.assert_array_equal(default, select("auto", ctx, 30, available, seed=1,
                                                  clusters=8, fresh=True, top_share=1.0))
    for params in ({"fresh": False}, {"top_share": 0.5}, {"candidates": 3}, {"clusters": 2}):
        picks = select("auto", ctx, 30, available, seed=1, **params)
        assert len(np.unique(picks)) == 30 and (ctx.y[picks] == ctx.label).all()
    with pytest.raises(InputError, match="takes no parameter"):
        select("auto", ctx, 30, available, seed=1, colors=3)
