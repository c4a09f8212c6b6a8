"""Ground truth: a piecewise-linear black box with known relevant features per region."""

from __future__ import annotations

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.explain import DMMMEN, KernelShap, Lime, RandomExplainer
from deepscope.explain.groundtruth import piecewise_linear, precision_recall

# shap warns about matplotlib colour maps when it is imported
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def test_black_box_is_what_it_says():
    bb = piecewise_linear(12, 3, 2, seed=0)
    x = bb.sample(300, seed=1)
    p = bb.predict_proba(x)
    np.testing.assert_allclose(np.log(p[:, 1] / p[:, 0]), bb.logit(x), atol=1e-8)
    rel = bb.relevant(x)
    assert np.all(rel.sum(axis=1) == 2) and not rel[:, bb.gate].any()
    assert set(bb.region(x)) == {0, 1, 2}
    # changing an irrelevant feature (within the region) leaves the output unchanged
    x2 = x.copy()
    irrelevant = np.flatnonzero(~rel[0])
    irrelevant = irrelevant[irrelevant != bb.gate]
    x2[0, irrelevant] = 0.5
    assert bb.logit(x2[:1])[0] == pytest.approx(bb.logit(x[:1])[0])
    with pytest.raises(InputError):
        piecewise_linear(5, 3, 2)


def test_global_dmm_men_recovers_the_relevant_features_better_than_lime_and_shap():
    bb = piecewise_linear(16, 3, 3, seed=0)
    x = bb.sample(600, seed=1)
    dmm = DMMMEN(
        mode="global", n_components=6, n_local=0, attribution="coef", n_sweeps=100, burn_in=50,
        n_chains=2,
        progress=False,
    ).fit(x, bb.predict_proba, target=1)
    xe = x[:10]
    truth = bb.relevant(xe)
    p_dmm, r_dmm = precision_recall(dmm.explain(xe), truth)
    lime = Lime(num_samples=500, seed=0).fit(x, bb.predict_proba, target=1)
    p_lime, _ = precision_recall(lime.explain(xe), truth)
    shap = KernelShap(nsamples=200, seed=0).fit(x, bb.predict_proba, target=1)
    p_shap, _ = precision_recall(shap.explain(xe), truth)
    rand = RandomExplainer(seed=0).fit(x, bb.predict_proba, 1)
    p_rand, _ = precision_recall(rand.explain(xe), truth)
    assert p_dmm >= 0.9 and r_dmm == p_dmm  # k = number of relevant features
    assert p_dmm > max(p_lime, p_shap) + 0.1
    assert p_rand < 0.5


def test_precision_recall_counts_hits():
    from deepscope.explain import Explanation

    e = Explanation("t", 1, np.array([[3.0, 2.0, 1.0, 0.0]]), np.arange(4), (4,))
    truth = np.array([[True, False, True, False]])
    assert precision_recall(e, truth) == (0.5, 0.5)
    assert precision_recall(e, truth, k=3) == pytest.approx((2 / 3, 1.0))
    with pytest.raises(InputError):
        precision_recall(e, truth[:, :3])
