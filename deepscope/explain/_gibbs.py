"""Blocked Gibbs sampler for a truncated Dirichlet-process mixture of linear regressions whose
coefficients have a mixture of Bayesian elastic-net priors (the model behind DMM-MEN).

Model (``i`` = observation, ``k`` = component, ``m`` = elastic-net prior, ``j`` = feature)::

    v_k ~ Beta(1, alpha),  pi_k = v_k prod_{l<k} (1 - v_l)   (truncated at K, v_K = 1)
    alpha ~ Gamma(a_alpha, b_alpha)
    z_i ~ Categorical(pi)
    y_i | z_i = k ~ N(b_k + x_i' beta_k, sigma2_k)
    c_k ~ Categorical(omega),  omega ~ Dirichlet(1, ..., 1)
    beta_k | c_k = m, sigma2_k ~ EN(lambda1_m, lambda2_m):
        p(beta) ∝ exp(-(lambda1 |beta| + lambda2 beta^2) / (2 sigma2))     (Li & Lin, 2010)
    b_k ~ N(0, s0^2 sigma2_k),  sigma2_k ~ InvGamma(a_s, b_s)

The elastic net is sampled through its scale mixture: with ``w_kj = 1 / (tau_kj - 1)``,
``beta_kj | w ~ N(0, sigma2 / (lambda2 (1 + w)))`` and
``w | beta ~ InverseGaussian(lambda1 / (2 lambda2 |beta|), lambda1^2 / (4 lambda2 sigma2))``.
``sigma2`` and ``c`` are drawn with ``w`` integrated out (partially collapsed Gibbs): ``c``
exactly from its discrete conditional, ``sigma2`` by a random-walk Metropolis–Hastings step on
``log sigma2`` (its conditional involves the prior's normalising constant, no closed form).

One sweep: z → sticks, alpha → (b, beta) | w → sigma2 (MH) → c → omega → w. Chains run for
``n_sweeps``; draws after ``burn_in`` (every ``thin``-th) are kept; the chain with the highest
mean log-likelihood wins; its draws are label-aligned to its best-likelihood draw by Hungarian
matching of the assignments, then averaged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.special import log_ndtr
from tqdm.auto import tqdm

LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class GibbsResult:
    """Posterior summary of the best chain (label-aligned)."""

    coef: np.ndarray  # K×(1+D): intercept then coefficients, posterior mean
    sigma2: np.ndarray  # K
    weights: np.ndarray  # K: posterior mean of pi
    prior: np.ndarray  # K: most frequent elastic-net prior per component
    z_prob: np.ndarray  # N×K: share of kept draws assigning i to k
    loglik_trace: np.ndarray  # n_chains×n_sweeps
    best_chain: int
    ess: float  # effective sample size of the best chain's kept log-likelihood
    accept_rate: float  # MH acceptance of the sigma2 step (best chain, after burn-in)
    seconds_per_sweep: float
    n_kept: int

    @property
    def z(self) -> np.ndarray:
        """Most probable component of each observation."""
        return self.z_prob.argmax(axis=1)


def log_en_normaliser(sigma2: np.ndarray, lam1: np.ndarray, lam2: np.ndarray) -> np.ndarray:
    """log of ``Z = ∫ exp(-(lam1 |b| + lam2 b^2) / (2 sigma2)) db`` (broadcasting)."""
    a = lam2 / (2.0 * sigma2)
    r = lam1**2 / (8.0 * lam2 * sigma2)
    # Z = sqrt(pi / a) * exp(r) * erfc(sqrt(r)), erfc(u) = 2 Phi(-u sqrt(2))
    return 0.5 * np.log(np.pi / a) + r + np.log(2.0) + log_ndtr(-np.sqrt(2.0 * r))


def log_en_density(beta: np.ndarray, sigma2, lam1, lam2) -> np.ndarray:
    """Elementwise log density of the elastic-net prior ``EN(lam1, lam2)`` given ``sigma2``."""
    return -(lam1 * np.abs(beta) + lam2 * beta**2) / (2.0 * sigma2) - log_en_normaliser(
        sigma2, lam1, lam2
    )


def effective_sample_size(trace: np.ndarray) -> float:
    """ESS of a 1-D trace (Geyer's initial positive sequence of autocorrelations)."""
    x = np.asarray(trace, dtype=np.float64)
    n = x.size
    if n < 4 or np.var(x) == 0:
        return float(n)
    x = x - x.mean()
    f = np.fft.rfft(x, n=2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (np.arange(n, 0, -1) * x.var())
    total = 0.0
    for t in range(1, n - 1, 2):
        pair = acf[t] + acf[t + 1]
        if pair <= 0:
            break
        total += pair
    tau = -1.0 + 2.0 * (1.0 + acf[1] + total) if n > 2 else 1.0
    tau = max(tau, 1.0 / np.log10(max(n, 10)))
    return float(min(n / tau, n))


class _Chain:
    """State and one sweep of a single chain."""

    def __init__(self, X1, y, K, lam1, lam2, rng, hyper, groups):
        self.X1, self.y, self.K, self.rng = X1, y, K, rng
        self.lam1, self.lam2 = lam1, lam2  # M
        self.h = hyper
        self.groups = groups
        self.n_groups = int(groups.max()) + 1
        n, p = X1.shape
        self._order = np.argsort(groups, kind="stable")
        self._starts = np.searchsorted(groups[self._order], np.arange(self.n_groups))
        self.gram = self.xty = None
        if self.n_groups * 4 <= n and self.n_groups * p * p * 8 <= 256 * 2**20:
            # few large groups: precompute per-group X'X and X'y once (z is per group)
            ends = np.append(self._starts[1:], n)
            self.gram = np.empty((self.n_groups, p * p))
            self.xty = np.empty((self.n_groups, p))
            for g, (a, b) in enumerate(zip(self._starts, ends, strict=True)):
                rows = self._order[a:b]
                self.gram[g] = (X1[rows].T @ X1[rows]).ravel()
                self.xty[g] = X1[rows].T @ y[rows]
            self.yty = np.bincount(groups, weights=y**2, minlength=self.n_groups)
        self._stats = None
        self._stats_zg = None
        self._sweeps = 0
        self.zg = rng.integers(0, K, self.n_groups)
        self.z = self.zg[groups]
        self.B = np.zeros((K, p))
        self.sigma2 = np.full(K, 1.0)
        self.c = rng.integers(0, len(lam1), K)
        self.omega = np.full(len(lam1), 1.0 / len(lam1))
        self.w = np.ones((K, p - 1))
        self.alpha = 1.0
        self.logpi = np.full(K, -np.log(K))
        self.step = np.full(K, 0.3)
        self.accepted = np.zeros(K)
        self.tried = 0
        self.loglik = -np.inf

    # -- blocks ----------------------------------------------------------------------------
    def update_z(self) -> None:
        mu = self.X1 @ self.B.T  # N×K
        ll = -0.5 * (LOG2PI + np.log(self.sigma2)) - 0.5 * (self.y[:, None] - mu) ** 2 / self.sigma2
        # all observations of a group share one component: sum their log-likelihoods
        llg = np.add.reduceat(ll[self._order], self._starts, axis=0)
        logits = llg + self.logpi
        top = logits.max(axis=1, keepdims=True)
        self.loglik = float((top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))).sum())
        gumbel = -np.log(-np.log(self.rng.random(logits.shape)))
        self.zg = np.argmax(logits + gumbel, axis=1)
        self.z = self.zg[self.groups]

    def update_sticks(self) -> None:
        K = self.K
        counts = np.bincount(self.zg, minlength=K).astype(np.float64)
        if K == 1:
            self.logpi = np.zeros(1)
            return
        after = counts[::-1].cumsum()[::-1] - counts  # n_{>k}
        v = self.rng.beta(1.0 + counts[:-1], self.alpha + after[:-1])
        v = np.clip(v, 1e-12, 1 - 1e-12)
        log1m = np.log1p(-v)
        self.logpi = np.concatenate([np.log(v), [0.0]]) + np.concatenate([[0.0], np.cumsum(log1m)])
        a0, b0 = self.h["alpha_prior"]
        self.alpha = float(self.rng.gamma(a0 + K - 1, 1.0 / (b0 - log1m.sum())))

    def _component_stats(self):
        """Per-component X'X, X'y, y'y from the per-group statistics (kept up to date
        incrementally: only groups that changed component move, with a full refresh every
        50 sweeps against rounding drift)."""
        K, p = self.K, self.X1.shape[1]
        if self._stats is None or self._sweeps % 50 == 0:
            onehot = np.zeros((K, self.n_groups))
            onehot[self.zg, np.arange(self.n_groups)] = 1.0
            self._stats = [
                (onehot @ self.gram).reshape(K, p, p),
                onehot @ self.xty,
                onehot @ self.yty,
            ]
        else:
            grams, xtys, ytys = self._stats
            for g in np.flatnonzero(self.zg != self._stats_zg):
                old, new = self._stats_zg[g], self.zg[g]
                G = self.gram[g].reshape(p, p)
                grams[old] -= G
                grams[new] += G
                xtys[old] -= self.xty[g]
                xtys[new] += self.xty[g]
                ytys[old] -= self.yty[g]
                ytys[new] += self.yty[g]
        self._stats_zg = self.zg.copy()
        return self._stats

    def update_beta(self) -> None:
        X1, y, rng = self.X1, self.y, self.rng
        p = X1.shape[1]
        s0 = self.h["intercept_scale"]
        counts = np.bincount(self.z, minlength=self.K)
        if self.gram is not None:
            grams, xtys, _ = self._component_stats()
        for k in range(self.K):
            prior = np.concatenate([[1.0 / s0**2], self.lam2[self.c[k]] * (1.0 + self.w[k])])
            if counts[k] == 0:  # no data: the conditional is the (diagonal) prior
                self.B[k] = rng.standard_normal(p) * np.sqrt(self.sigma2[k] / prior)
                continue
            if self.gram is not None:
                A = grams[k] + np.diag(prior)
                r = xtys[k]
            else:
                Xk = X1[self.z == k]
                A = Xk.T @ Xk + np.diag(prior)
                r = Xk.T @ y[self.z == k]
            L = cholesky(A, lower=True, check_finite=False)
            mean = cho_solve((L, True), r, check_finite=False)
            noise = solve_triangular(L.T, rng.standard_normal(p), lower=False, check_finite=False)
            self.B[k] = mean + np.sqrt(self.sigma2[k]) * noise
        self._sweeps += 1

    def _log_post_sigma2(self, s2: np.ndarray, rss: np.ndarray, counts: np.ndarray) -> np.ndarray:
        a_s, b_s = self.h["sigma2_prior"]
        s0 = self.h["intercept_scale"]
        lam1 = self.lam1[self.c][:, None]
        lam2 = self.lam2[self.c][:, None]
        beta = self.B[:, 1:]
        prior_beta = log_en_density(beta, s2[:, None], lam1, lam2).sum(axis=1)
        prior_b0 = -0.5 * np.log(s2) - self.B[:, 0] ** 2 / (2 * s0**2 * s2)
        lik = -0.5 * counts * np.log(s2) - rss / (2 * s2)
        return -(a_s + 1) * np.log(s2) - b_s / s2 + lik + prior_beta + prior_b0

    def update_sigma2(self, adapt: bool) -> None:
        if self.gram is not None:  # RSS from the sufficient statistics of update_beta
            grams, xtys, ytys = self._stats
            B = self.B
            quad = np.einsum("kp,kp->k", np.matmul(grams, B[:, :, None])[:, :, 0], B)
            rss = ytys - 2 * np.einsum("kp,kp->k", B, xtys) + quad
            rss = np.maximum(rss, 0.0)
        else:
            resid = self.y - np.einsum("ij,ij->i", self.X1, self.B[self.z])
            rss = np.bincount(self.z, weights=resid**2, minlength=self.K)
        counts = np.bincount(self.z, minlength=self.K).astype(np.float64)
        cur = self.sigma2
        prop = cur * np.exp(self.step * self.rng.standard_normal(self.K))
        # log-normal random walk: the Jacobian adds log(s2') - log(s2)
        log_ratio = (
            self._log_post_sigma2(prop, rss, counts)
            - self._log_post_sigma2(cur, rss, counts)
            + np.log(prop)
            - np.log(cur)
        )
        accept = np.log(self.rng.random(self.K)) < log_ratio
        self.sigma2 = np.where(accept, prop, cur)
        self.sigma2 = np.clip(self.sigma2, 1e-8, 1e4)
        self.accepted += accept
        self.tried += 1
        if adapt:  # Robbins–Monro towards ~40% acceptance, burn-in only
            self.step *= np.exp(np.where(accept, 0.6, -0.4) * 0.1)
            self.step = np.clip(self.step, 0.01, 2.0)

    def update_prior(self) -> None:
        M = len(self.lam1)
        if M == 1:
            return
        beta = self.B[:, 1:]
        s2 = self.sigma2[:, None, None]
        lam1, lam2 = self.lam1[None, :, None], self.lam2[None, :, None]
        dens = log_en_density(beta[:, None, :], s2, lam1, lam2)
        logits = dens.sum(axis=2) + np.log(self.omega)[None, :]  # K×M
        gumbel = -np.log(-np.log(self.rng.random(logits.shape)))
        self.c = np.argmax(logits + gumbel, axis=1)
        self.omega = self.rng.dirichlet(1.0 + np.bincount(self.c, minlength=M))

    def update_w(self) -> None:
        lam1 = self.lam1[self.c][:, None]
        lam2 = self.lam2[self.c][:, None]
        absb = np.maximum(np.abs(self.B[:, 1:]), 1e-10)
        mean = np.minimum(lam1 / (2.0 * lam2 * absb), 1e10)
        shape = lam1**2 / (4.0 * lam2 * self.sigma2[:, None])
        self.w = np.clip(self.rng.wald(mean, np.broadcast_to(shape, mean.shape)), 1e-10, 1e10)

    def sweep(self, adapt: bool) -> None:
        self.update_z()
        self.update_sticks()
        self.update_beta()
        self.update_sigma2(adapt)
        self.update_prior()
        self.update_w()


def align_labels(z_draws: np.ndarray, ref: np.ndarray, K: int) -> np.ndarray:
    """Permutation per draw mapping its labels onto ``ref``'s (Hungarian matching).

    Returns
    -------
    ndarray
        ``S×K``: ``perm[s, k]`` is the reference label of draw ``s``'s label ``k``.
    """
    perms = np.empty((len(z_draws), K), dtype=np.int64)
    for s, z in enumerate(z_draws):
        overlap = np.zeros((K, K))
        np.add.at(overlap, (z, ref), 1.0)
        rows, cols = linear_sum_assignment(-overlap)
        perms[s, rows] = cols
    return perms


def run_gibbs(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_components: int = 8,
    priors: tuple[tuple[float, float], ...] = ((10.0, 1.0), (3.0, 3.0), (1.0, 10.0)),
    n_sweeps: int = 300,
    burn_in: int = 150,
    thin: int = 2,
    n_chains: int = 3,
    alpha_prior: tuple[float, float] = (1.0, 1.0),
    sigma2_prior: tuple[float, float] = (2.0, 0.1),
    intercept_scale: float = 10.0,
    groups: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = False,
) -> GibbsResult:
    """Sample the DP mixture of elastic-net regressions; see the module docstring.

    Parameters
    ----------
    X : ndarray
        ``N×D`` design (standardise it; no intercept column, one is added).
    y : ndarray
        ``N`` responses (standardise them).
    n_components : int
        Truncation level ``K`` of the stick-breaking process (1 = one global regression).
    priors : tuple of (lambda1, lambda2)
        The elastic-net priors components choose from.
    n_sweeps, burn_in, thin, n_chains : int
        Chain length, discarded sweeps, keep-every, and number of independent chains.
    groups : ndarray, optional
        ``N`` group ids ``0..G-1``: observations of a group share one component (e.g. an input
        and its perturbed copies). Default: every observation is its own group.
    seed : int
        Seed of the chains (chain ``c`` uses a child seed of ``seed``).
    progress : bool
        Show a progress bar.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = X.shape[0]
    K = int(n_components)
    X1 = np.hstack([np.ones((n, 1)), X])
    groups = np.arange(n) if groups is None else np.asarray(groups, dtype=np.int64)
    if groups.shape != (n,) or groups.min() < 0:
        raise ValueError("groups must hold one non-negative id per observation")
    _, groups = np.unique(groups, return_inverse=True)
    lam1 = np.array([p[0] for p in priors], dtype=np.float64)
    lam2 = np.array([p[1] for p in priors], dtype=np.float64)
    hyper = {
        "alpha_prior": alpha_prior,
        "sigma2_prior": sigma2_prior,
        "intercept_scale": intercept_scale,
    }
    seeds = np.random.SeedSequence(seed).spawn(n_chains)
    traces = np.full((n_chains, n_sweeps), np.nan)
    best = None
    total_sweeps = n_chains * n_sweeps
    bar = tqdm(total=total_sweeps, desc="DMM-MEN Gibbs", disable=not progress, leave=False)
    start = time.perf_counter()
    for c in range(n_chains):
        chain = _Chain(X1, y, K, lam1, lam2, np.random.default_rng(seeds[c]), hyper, groups)
        kept = {"B": [], "s2": [], "pi": [], "z": [], "c": [], "ll": []}
        acc0 = None
        for t in range(n_sweeps):
            chain.sweep(adapt=t < burn_in)
            traces[c, t] = chain.loglik
            if t == burn_in:
                acc0 = (chain.accepted.copy(), chain.tried)
            if t >= burn_in and (t - burn_in) % thin == 0:
                kept["B"].append(chain.B.copy())
                kept["s2"].append(chain.sigma2.copy())
                kept["pi"].append(np.exp(chain.logpi))
                kept["z"].append(chain.zg.copy())
                kept["c"].append(chain.c.copy())
                kept["ll"].append(chain.loglik)
            bar.update(1)
        score = float(np.mean(kept["ll"]))
        if acc0 is None:
            acc0 = (np.zeros(K), 0)
        tried = max(chain.tried - acc0[1], 1)
        rate = float((chain.accepted - acc0[0]).mean() / tried)
        if best is None or score > best[0]:
            best = (score, c, kept, rate)
    bar.close()
    seconds = (time.perf_counter() - start) / max(total_sweeps, 1)
    _, best_c, kept, rate = best
    z_draws = np.asarray(kept["z"])
    ref = z_draws[int(np.argmax(kept["ll"]))]
    perms = align_labels(z_draws, ref, K)
    S = len(z_draws)
    B = np.zeros((K, X1.shape[1]))
    s2 = np.zeros(K)
    pi = np.zeros(K)
    n_groups = int(groups.max()) + 1
    zg_prob = np.zeros((n_groups, K))
    prior_counts = np.zeros((K, len(lam1)))
    for s in range(S):
        inv = perms[s]
        B[inv] += kept["B"][s]
        s2[inv] += kept["s2"][s]
        pi[inv] += kept["pi"][s]
        prior_counts[inv, kept["c"][s]] += 1
        zg_prob[np.arange(n_groups), inv[z_draws[s]]] += 1
    return GibbsResult(
        coef=B / S,
        sigma2=s2 / S,
        weights=pi / S,
        prior=prior_counts.argmax(axis=1),
        z_prob=(zg_prob / S)[groups],
        loglik_trace=traces,
        best_chain=best_c,
        ess=effective_sample_size(np.asarray(kept["ll"])),
        accept_rate=rate,
        seconds_per_sweep=seconds,
        n_kept=S,
    )
