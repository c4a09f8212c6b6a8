"""The DP mixture of elastic-net regressions: sampler sanity and its building blocks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from deepscope.explain._gibbs import (
    align_labels,
    effective_sample_size,
    log_en_density,
    log_en_normaliser,
    run_gibbs,
)


@pytest.mark.parametrize(
    ("s2", "lam1", "lam2"), [(1.0, 2.0, 1.0), (0.05, 10.0, 0.5), (3.0, 0.1, 5.0)]
)
def test_elastic_net_normaliser_matches_quadrature(s2, lam1, lam2):
    f = lambda b: np.exp(-(lam1 * abs(b) + lam2 * b * b) / (2 * s2))  # noqa: E731
    z, _ = quad(f, -np.inf, np.inf)
    assert log_en_normaliser(np.float64(s2), lam1, lam2) == pytest.approx(np.log(z), rel=1e-6)
    # a proper density
    total, _ = quad(lambda b: np.exp(log_en_density(np.float64(b), s2, lam1, lam2)), -50, 50)
    assert total == pytest.approx(1.0, rel=1e-6)


def test_scale_mixture_conditional_is_consistent_with_the_prior():
    """Alternating w | beta and beta | w must leave the elastic-net prior invariant."""
    rng = np.random.default_rng(0)
    lam1, lam2, s2 = 2.0, 1.0, 1.0
    beta = np.zeros(200_000)
    for _ in range(30):
        mean = lam1 / (2 * lam2 * np.maximum(np.abs(beta), 1e-10))
        w = rng.wald(np.minimum(mean, 1e10), lam1**2 / (4 * lam2 * s2))
        beta = rng.normal(0, np.sqrt(s2 / (lam2 * (1 + w))))
    # compare E|beta| with the closed-form prior
    density = lambda b: np.exp(log_en_density(np.float64(b), s2, lam1, lam2))  # noqa: E731
    expected, _ = quad(lambda b: 2 * b * density(b), 0, 50)
    assert np.abs(beta).mean() == pytest.approx(expected, rel=0.02)


def _two_component_data(n=1200, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    b1 = np.zeros(d)
    b1[[0, 1, 2]] = [2.0, -1.5, 1.0]
    b2 = np.zeros(d)
    b2[[5, 6]] = [-2.0, 2.5]
    group = rng.random(n) < 0.5
    y = np.where(group, x @ b1 + 1.0, x @ b2 - 1.0) + 0.1 * rng.standard_normal(n)
    return x, y, group, b1, b2


def test_sampler_recovers_a_two_component_mixture():
    x, y, group, b1, b2 = _two_component_data()
    res = run_gibbs(x, y, n_components=5, n_sweeps=120, burn_in=60, n_chains=2, seed=0)
    top = np.argsort(-res.weights)[:2]
    assert res.weights[top].sum() > 0.95
    coefs = res.coef[top]
    # match each true component to its closest estimate
    for truth, b0 in ((b1, 1.0), (b2, -1.0)):
        err = np.abs(coefs[:, 1:] - truth).max(axis=1)
        best = int(np.argmin(err))
        assert err[best] < 0.1
        assert coefs[best, 0] == pytest.approx(b0, abs=0.1)
    # the assignments separate the two groups
    z = res.z
    purity = max(np.mean(z[group] == top[0]), np.mean(z[group] == top[1]))
    assert purity > 0.97
    assert res.loglik_trace.shape == (2, 120)
    assert np.isfinite(res.loglik_trace).all()
    assert 0.05 < res.accept_rate < 0.95
    assert res.ess > 1


def test_sampler_is_deterministic_and_groups_share_components():
    x, y, _, _, _ = _two_component_data(n=300, d=8, seed=1)
    kw = {"n_components": 4, "n_sweeps": 40, "burn_in": 20, "n_chains": 2}
    a = run_gibbs(x, y, seed=3, **kw)
    b = run_gibbs(x, y, seed=3, **kw)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.loglik_trace, b.loglik_trace)
    c = run_gibbs(x, y, seed=4, **kw)
    assert not np.array_equal(a.loglik_trace, c.loglik_trace)
    groups = np.arange(300) // 10
    g = run_gibbs(x, y, groups=groups, seed=0, **kw)
    z = g.z
    assert all(len(set(z[groups == i])) == 1 for i in range(30))


def test_single_component_is_a_regression():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 5))
    beta = np.array([1.0, 0.0, -2.0, 0.5, 0.0])
    y = x @ beta + 0.05 * rng.standard_normal(400)
    res = run_gibbs(x, y, n_components=1, n_sweeps=60, burn_in=30, n_chains=1, seed=0)
    np.testing.assert_allclose(res.coef[0, 1:], beta, atol=0.05)
    assert res.weights[0] == pytest.approx(1.0)


def test_align_labels_undoes_permutations():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 3, 100)
    perm = np.array([2, 0, 1])
    draw = np.argsort(perm)[ref]  # relabelled copy of ref
    out = align_labels(draw[None], ref, 3)
    np.testing.assert_array_equal(out[0][draw], ref)


def test_effective_sample_size():
    rng = np.random.default_rng(0)
    iid = rng.standard_normal(2000)
    assert effective_sample_size(iid) > 1200
    ar = np.zeros(2000)
    for t in range(1, 2000):
        ar[t] = 0.95 * ar[t - 1] + rng.standard_normal()
    assert effective_sample_size(ar) < 200
    assert effective_sample_size(np.ones(10)) == 10


def test_grouped_sampler_recovers_the_mixture():
    """Groups of 10 observations from one component (the per-group sufficient-statistics path,
    with incremental updates) recover the same two regressions."""
    x, y, group, b1, b2 = _two_component_data(n=1200, d=12, seed=2)
    order = np.argsort(group, kind="stable")  # make groups pure
    x, y, group = x[order], y[order], group[order]
    groups = np.arange(1200) // 10
    res = run_gibbs(x, y, n_components=5, n_sweeps=120, burn_in=60, n_chains=2, groups=groups,
                    seed=0)
    top = np.argsort(-res.weights)[:2]
    for truth in (b1, b2):
        assert np.abs(res.coef[top, 1:] - truth).max(axis=1).min() < 0.1
    z = res.z
    assert np.mean(z[group] == z[group][0]) > 0.97 and z[group][0] != z[~group][0]
