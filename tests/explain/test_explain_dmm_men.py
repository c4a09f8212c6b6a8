"""DMM-MEN (global mode) on small black boxes: contract, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

from deepscope.errors import InputError, NotFittedError
from deepscope.explain import DMMMEN, GridSpace, SuperpixelSpace, class_logit, get

FAST = {"mode": "global", "n_sweeps": 40, "burn_in": 20, "n_chains": 1, "n_local": 10,
        "progress": False}


def test_class_logit_is_exact_where_probabilities_saturate():
    p = np.array([[1e-12, 1.0 - 2e-12, 1e-12]])
    assert class_logit(p, 1)[0] == pytest.approx(np.log((1 - 2e-12) / 2e-12))
    p32 = np.array([[1e-9, 1.0, 1e-9]], dtype=np.float32)  # 1 - p rounds to 0 in float32
    assert class_logit(p32, 1)[0] == pytest.approx(-np.log(2e-9), rel=1e-6)
    assert class_logit(np.array([[0.25, 0.75]]), 0)[0] == pytest.approx(np.log(1 / 3))


def test_dmm_men_on_the_block_model(block_model, block_data):
    dmm = DMMMEN(GridSpace(2), n_components=3, seed=0, **FAST).fit(
        block_data, block_model, target=1
    )
    e = dmm.explain(block_data[:20])
    assert e.method == "dmm-men" and e.target == 1
    assert e.attributions.shape == (20, 4)
    assert e.component.shape == (20,)
    # the block (cell 0) is the only thing that matters
    assert np.all(e.top_features(1)[:, 0] == 0)
    used = dmm.coef_[np.unique(e.component)]
    np.testing.assert_allclose(used[:, 0], 8.0, rtol=0.1)  # the true log-odds slope
    assert np.abs(used[:, 1:]).max() < 0.5
    mask = e.feature_mask(1)
    assert mask.shape == (20, 1, 4, 4) and mask[:, 0, :2, :2].all() and mask.sum() == 20 * 4
    assert e.extras["fit_queries"] == 1 + 40 * 11  # probe + inputs + 10 copies each
    assert e.extras["explain_queries"] == 0  # fitting inputs keep their fitted component
    assert len(e.extras["loglik_trace"]) == 40
    d = dmm.diagnostics()
    assert np.isfinite(d["loglik_trace"]).all() and d["ess_loglik"] > 0


def test_new_samples_cost_one_query_each(block_model, block_data):
    dmm = DMMMEN(n_components=2, seed=0, **FAST).fit(block_data, block_model, target=1)
    new = np.clip(block_data[:5] + 0.01, 0, 1)
    before = dmm.black_box_.queries
    e = dmm.explain(new)
    assert dmm.black_box_.queries - before == 5 and e.extras["explain_queries"] == 5
    assert np.all(e.top_features(1)[:, 0] == 0)


def test_same_seed_same_explanation(linear_images):
    predict_proba, x, _ = linear_images
    kw = {"n_components": 3, **FAST}
    a = DMMMEN(seed=7, **kw).fit(x, predict_proba, target=2).explain(x)
    b = DMMMEN(seed=7, **kw).fit(x, predict_proba, target=2).explain(x)
    np.testing.assert_array_equal(a.attributions, b.attributions)
    np.testing.assert_array_equal(a.component, b.component)
    c = DMMMEN(seed=8, **kw).fit(x, predict_proba, target=2).explain(x)
    assert not np.array_equal(a.attributions, c.attributions)


def test_recovers_a_linear_black_box(linear_images):
    """On a linear-softmax model the log-odds is nearly linear; the top cells must carry
    the largest contributions w·x of the true logit difference."""
    predict_proba, x, w = linear_images
    dmm = DMMMEN(GridSpace(1), n_components=1, attribution="coef", seed=0, **FAST)
    dmm.fit(x, predict_proba, target=0)
    coef = dmm.coef_[0]
    truth = w[0] - w[1:].mean(axis=0)  # the log-odds slope, roughly
    assert np.corrcoef(coef, truth)[0, 1] > 0.8


def test_registry_and_k1_ablation(block_model, block_data):
    dmm = get("dmm-men", n_components=1, **FAST).fit(block_data, block_model, target=1)
    assert isinstance(dmm, DMMMEN)
    assert np.all(dmm.explain(block_data[:20]).component == 0)


def test_validation_errors(block_model, block_data):
    with pytest.raises(NotFittedError):
        DMMMEN().explain(block_data)
    with pytest.raises(InputError, match="n_components"):
        DMMMEN(n_components=0, **FAST).fit(block_data, block_model, target=1)
    with pytest.raises(InputError, match="burn_in"):
        DMMMEN(n_sweeps=10, burn_in=10, progress=False).fit(block_data, block_model, 1)
    with pytest.raises(InputError, match="shared"):
        imgs = np.random.default_rng(0).uniform(size=(4, 1, 16, 16))
        DMMMEN(SuperpixelSpace(per_sample=True), **FAST).fit(
            imgs, lambda z: np.full((len(z), 2), 0.5), 1
        )
    dmm = DMMMEN(**FAST)
    with pytest.raises(InputError, match="out of range"):
        dmm.fit(block_data, block_model, target=5)
    with pytest.raises(InputError, match="callable"):
        dmm.fit(block_data, "model", target=1)
    with pytest.raises(InputError, match="probabilities"):
        dmm.fit(block_data, lambda z: np.full((len(z), 2), 3.0), target=1)
    with pytest.raises(InputError, match="N×K"):
        dmm.fit(block_data, lambda z: np.zeros(len(z)), target=1)
    with pytest.raises(InputError, match="NaN"):
        dmm.fit(np.full_like(block_data, np.nan), block_model, target=1)
    with pytest.raises(InputError, match="batch axis"):
        dmm.fit(block_data[0], block_model, target=1)
    dmm.fit(block_data, block_model, target=1)
    with pytest.raises(InputError, match="do not match"):
        dmm.explain(np.zeros((2, 1, 5, 5)))
