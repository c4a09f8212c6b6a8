"""Gibbs sampler of DMM-MEN's *local* mode: a Dirichlet-process mixture of elastic-net (and
optionally fused-lasso) regressions fitted to the perturbations of ONE explained input.

Data: ``Z`` (``n×F`` 0/1, ``1`` = the feature keeps the input's value, ``0`` = filled), row
``origin`` is the unperturbed input (all ones); ``y`` the explained class's log-odds. Model
(``i`` = perturbation, ``k`` = component, ``j`` = feature)::

    v_k ~ Beta(1, alpha),  pi_k = v_k prod_{l<k} (1 - v_l)  (truncated at K),  alpha ~ Gamma
    z_i ~ Categorical(pi)
    y_i | z_i = k ~ N(b_k + Z_i' beta_k, sigma2_k),   sigma2_k ~ InvGamma(a_s, b_s)
    c_k ~ Categorical(omega): the elastic net (lambda1, lambda2) component k uses
    beta_k | tau, w ~ N(0, P_k^-1)  with the prior precision
        P_k = diag(1 / tau_kj^2 + lambda2) + D' diag(1 / w_kj^2) D      (D: first differences)
    tau_kj^2 ~ Exp(lambda1^2 / 2),  w_kj^2 ~ Exp(lambda_f^2 / 2)  (the D-part only if lambda_f > 0)

This is the hierarchical Bayesian elastic net and fused lasso of Kyung, Gill, Ghosh & Casella
(2010, "Penalized regression, standard errors, and Bayesian lassos", Bayesian Analysis 5(2)),
with the coefficients' prior *not* scaled by ``sigma2`` (on noise-free regimes a
``sigma2``-scaled prior holds ``sigma2`` up and lets the regimes blur): integrating ``tau`` and
``w`` out gives (up to normalising constants) the penalty ``lambda1 |beta_j| + lambda2 beta_j^2
/ 2 + lambda_f |beta_j - beta_{j-1}|`` — LEMNA's fused lasso on ordered features
(``lambda_f > 0``) plus the elastic net, on the standardised log-odds. Every conditional is
closed-form (``beta`` Gaussian, ``sigma2`` inverse gamma, ``1/tau^2`` and ``1/w^2`` inverse
Gaussian), so no Metropolis step is needed; ``c`` is drawn from the elastic-net densities of the
candidate priors (the fused factor, common to all of them, is left out of that choice).

Grouping: the perturbations are first grouped by :func:`split_partition`, a small model-based
regression tree grown along the input's side; its splits are the features whose nullification
switches the box to another linear regime (a "gate"). The mixture assigns *groups* to
components (as the global mode assigns an input and its perturbed copies together): assigned
one by one, perturbations drift between components that extrapolate alike and the regimes blur.

Chains: they start from the finest partition (one component per group; the sampler reaches
every coarser one by merging), differ by seed, and the one with the highest mean log-likelihood
after burn-in is kept (as in the global mode). Convergence: the split R-hat of the
log-likelihood over the chains and its effective sample size.

Readout, over the kept draws, Rao-Blackwellised over each group's component (its conditional
probabilities ``r`` in the z-update, so no label alignment is needed): ``coef`` — the
coefficients of the input's component, ``sum_k r_0k beta_k``; ``effect`` — the change of the
log-odds when one feature alone is nullified, which is ``coef`` for ordinary features and, for a
split feature, the drop from the input's regime to the one the tree routes it to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky

from deepscope.explain._gibbs import effective_sample_size, log_en_density

LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class LocalFit:
    """Posterior summary of one local fit (on the log-odds scale of the explained class)."""

    coef: np.ndarray  # F: coefficients of the original input's component (posterior mean)
    effect: np.ndarray  # F: log-odds change when the feature alone is nullified (the mixture's)
    intercept: float
    share: float  # posterior mean share of the perturbations in the original's component
    n_used: float  # posterior mean number of components holding >= 5 % of the perturbations
    r2: float  # R^2 of the mixture's fit (each perturbation by its component, last draws)
    rhat: float  # split R-hat of the log-likelihood over the chains (1 = converged)
    ess: float  # effective sample size of the kept log-likelihood, summed over chains
    loglik_trace: np.ndarray  # n_chains×n_sweeps
    splits: tuple[int, ...] = ()  # the features the grouping tree split on (its gates)
    leaf_coef: np.ndarray | None = None  # G×(1+F): each group's coefficients, posterior mean

    def deletion_path(self) -> np.ndarray:
        """Attributions from the mixture's greedy deletion path (``F``, log-odds units).

        Starting from the input (every feature kept, the input's group), remove at each step
        the feature whose removal lowers the predicted log-odds most, predicting with the
        coefficients of the group the tree routes the current state to (removing a split
        feature moves to that split's group: the regime it switches to). The attribution of a
        feature is the drop at its step, made non-increasing along the path (a feature removed
        later never outranks an earlier one).
        """
        F = len(self.coef)
        if self.leaf_coef is None or F == 0:
            return self.effect.copy()
        on = np.ones(F, dtype=bool)
        drops = np.zeros(F)
        order = []
        leaves = self.leaf_coef

        def leaf(state: np.ndarray) -> int:
            for level, j in enumerate(self.splits):
                if not state[j]:
                    return level + 1
            return 0

        pred = leaves[0, 0] + leaves[0, 1:] @ on
        for _ in range(F):
            c = leaves[leaf(on)]
            after = np.where(on, pred - c[1:], np.inf)  # same group: minus the coefficient
            for j in self.splits:  # a split feature moves the state to another group
                if on[j]:
                    on[j] = False
                    c2 = leaves[leaf(on)]
                    after[j] = c2[0] + c2[1:] @ on
                    on[j] = True
            j = int(np.argmin(after))
            drops[j] = pred - after[j]
            order.append(j)
            on[j] = False
            pred = after[j]
        ranked = np.minimum.accumulate(drops[order]) - 1e-9 * np.arange(F)
        out = np.empty(F)
        out[order] = ranked
        return out


def split_rhat(traces: np.ndarray) -> float:
    """Split R-hat (Gelman et al., BDA3 11.4) of ``C×S`` traces; NaN when too short."""
    t = np.asarray(traces, dtype=np.float64)
    half = t.shape[1] // 2
    if half < 2:
        return float("nan")
    parts = np.concatenate([t[:, :half], t[:, half : 2 * half]])
    n = parts.shape[1]
    w = parts.var(axis=1, ddof=1).mean()
    b = n * parts.mean(axis=1).var(ddof=1)
    if w <= 0:
        return 1.0 if b <= 0 else float("inf")
    var = (n - 1) / n * w + b / n
    return float(np.sqrt(var / w))


def _inv_gauss(rng: np.random.Generator, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    mean = np.clip(mean, 1e-8, 1e8)
    return np.clip(rng.wald(mean, np.broadcast_to(shape, mean.shape)), 1e-8, 1e8)


class _Chains:
    """State and one sweep of ``C`` chains at once (arrays lead with the chain axis, then the
    component axis; a Cholesky per non-empty component). Groups share a component, so the
    components' sufficient statistics are sums of the groups' (computed once)."""

    def __init__(self, X1, y, K, lam1, lam2, lam_f, hyper, rng, groups, zg0):
        self.X1, self.y, self.K, self.rng = X1, y, K, rng
        self.lam1, self.lam2, self.lam_f, self.h = lam1, lam2, lam_f, hyper
        self.groups = groups
        n, p = X1.shape
        n_groups = int(groups.max()) + 1
        self._order = np.argsort(groups, kind="stable")
        self._starts = np.searchsorted(groups[self._order], np.arange(n_groups))
        onehot = np.zeros((n_groups, n))
        onehot[groups, np.arange(n)] = 1.0
        self._g_gram = np.stack([(X1[groups == g].T @ X1[groups == g]).ravel()
                                 for g in range(n_groups)])
        self._g_xty = onehot @ (X1 * y[:, None])
        self._g_yy = onehot @ y**2
        self._g_n = onehot.sum(axis=1)
        self.zg = np.asarray(zg0, dtype=np.int64).copy()  # C×G
        C, F = len(self.zg), p - 1
        self.B = np.zeros((C, K, p))
        self.s2 = np.ones((C, K))
        self.c = np.zeros((C, K), dtype=np.int64)
        self.omega = np.full((C, len(lam1)), 1.0 / len(lam1))
        self.inv_tau = np.ones((C, K, F))
        self.inv_w = np.ones((C, K, max(F - 1, 0)))
        self.alpha = np.ones(C)
        self.logpi = np.full((C, K), -np.log(K))
        self.loglik = np.full(C, -np.inf)
        self.resp = np.full((C, n_groups, K), 1.0 / K)
        diag = np.arange(1, p)
        self._diag, self._off = diag, (diag[:-1], diag[1:])

    def _onehot(self) -> np.ndarray:
        C, n_groups = self.zg.shape
        onehot = np.zeros((C, self.K, n_groups))
        onehot[np.arange(C)[:, None], self.zg, np.arange(n_groups)[None, :]] = 1.0
        return onehot

    def prior_precision(self) -> np.ndarray:
        """``C×K×p×p`` prior precisions of the coefficients; index 0 is the intercept."""
        C, K, p = self.B.shape
        P = np.zeros((C, K, p, p))
        P[:, :, 0, 0] = 1.0 / self.h["intercept_scale"] ** 2
        d = self._diag
        P[:, :, d, d] = self.inv_tau + self.lam2[self.c][:, :, None]
        if self.lam_f > 0 and p > 2:
            a, b = self._off
            w = self.inv_w
            P[:, :, a, a] += w
            P[:, :, b, b] += w
            P[:, :, a, b] -= w
            P[:, :, b, a] -= w
        return P

    def update_beta_sigma2(self) -> None:
        """beta | z, sigma2, tau, w then sigma2 | beta (both exact), every chain and k at once."""
        rng = self.rng
        C, K, p = self.B.shape
        a_s, b_s = self.h["sigma2_prior"]
        member = self._onehot()
        G = (member @ self._g_gram).reshape(C, K, p, p)
        r = member @ self._g_xty
        yy = member @ self._g_yy
        counts = member @ self._g_n
        P = self.prior_precision()
        eps = rng.standard_normal((C, K, p))
        for ch, k in np.ndindex(C, K):
            if counts[ch, k] == 0 and self.lam_f == 0:  # no data, diagonal prior: direct draw
                self.B[ch, k] = eps[ch, k] / np.sqrt(np.diagonal(P[ch, k]))
                continue
            # beta = A^-1 (r / s2 + L eps) with L L' = A: mean A^-1 r / s2, covariance A^-1
            A = G[ch, k] / self.s2[ch, k] + P[ch, k]
            L = cholesky(A, lower=True, check_finite=False)
            self.B[ch, k] = cho_solve((L, True), r[ch, k] / self.s2[ch, k] + L @ eps[ch, k],
                                      check_finite=False)
        quad = np.einsum("ckp,ckp->ck", self.B, np.matmul(G, self.B[..., None])[..., 0])
        rss = np.maximum(yy - 2 * np.einsum("ckp,ckp->ck", self.B, r) + quad, 0.0)
        self.s2 = np.clip(1.0 / rng.gamma(a_s + 0.5 * counts, 1.0 / (b_s + 0.5 * rss)),
                          1e-10, 1e4)

    def update_scales(self) -> None:
        """1/tau^2 and 1/w^2 (inverse Gaussian), then the elastic-net choice c and omega."""
        rng = self.rng
        beta = self.B[:, :, 1:]
        l1 = self.lam1[self.c][:, :, None]
        self.inv_tau = _inv_gauss(rng, l1 / np.maximum(np.abs(beta), 1e-8), l1**2)
        if self.lam_f > 0 and beta.shape[2] > 1:
            d = np.abs(np.diff(beta, axis=2))
            self.inv_w = _inv_gauss(rng, self.lam_f / np.maximum(d, 1e-8),
                                    np.asarray(self.lam_f**2))
        M = len(self.lam1)
        if M > 1:  # exp(-lambda1 |b| - lambda2 b^2 / 2) is Li & Lin's form with l1 = 2 lambda1
            dens = log_en_density(beta[:, :, None, :], 1.0, 2 * self.lam1[:, None],
                                  self.lam2[:, None]).sum(axis=3)  # C×K×M
            logits = dens + np.log(self.omega)[:, None, :]
            self.c = np.argmax(logits - np.log(-np.log(rng.random(logits.shape))), axis=2)
            for ch in range(len(self.c)):
                self.omega[ch] = rng.dirichlet(1.0 + np.bincount(self.c[ch], minlength=M))

    def update_z(self) -> None:
        """Component of every group (a group's rows share it), given the coefficients."""
        mu = np.matmul(self.X1, np.swapaxes(self.B, 1, 2))  # C×n×K
        ll = -0.5 * (LOG2PI + np.log(self.s2))[:, None, :] - 0.5 * (
            self.y[None, :, None] - mu) ** 2 / self.s2[:, None, :]
        logits = np.add.reduceat(ll[:, self._order], self._starts, axis=1) + self.logpi[:, None]
        top = logits.max(axis=2, keepdims=True)
        self.loglik = (top[..., 0] + np.log(np.exp(logits - top).sum(axis=2))).sum(axis=1)
        resp = np.exp(logits - top)
        self.resp = resp / resp.sum(axis=2, keepdims=True)
        self.zg = np.argmax(logits - np.log(-np.log(self.rng.random(logits.shape))), axis=2)

    def update_sticks(self) -> None:
        C, K = self.logpi.shape
        if K == 1:
            return
        counts = self._onehot().sum(axis=2)  # groups per component
        after = counts[:, ::-1].cumsum(axis=1)[:, ::-1] - counts
        v = np.clip(self.rng.beta(1.0 + counts[:, :-1], self.alpha[:, None] + after[:, :-1]),
                    1e-12, 1 - 1e-12)
        log1m = np.log1p(-v)
        zero = np.zeros((C, 1))
        self.logpi = (np.concatenate([np.log(v), zero], axis=1)
                      + np.concatenate([zero, np.cumsum(log1m, axis=1)], axis=1))
        a0, b0 = self.h["alpha_prior"]
        self.alpha = self.rng.gamma(a0 + K - 1, 1.0 / (b0 - log1m.sum(axis=1)))

    def sweep(self) -> None:
        self.update_beta_sigma2()
        self.update_scales()
        self.update_z()
        self.update_sticks()

    def leaf_coef(self) -> np.ndarray:
        """``C×G×p``: each group's coefficients (intercept first), Rao-Blackwellised."""
        return np.einsum("cgk,ckp->cgp", self.resp, self.B)

    def readout(self, splits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Readout of one draw per chain, Rao-Blackwellised over the groups' components (their
        conditional probabilities ``r`` in the last z-update).

        Returns ``sum_k r_0k beta_k`` (the input's component, intercept first; ``C×p``), the
        effect of nullifying each feature alone (``C×F``) — ``mu_0(1) - mu_g(1 - e_j)`` with
        ``g`` the group the tree routes ``1 - e_j`` to (group ``l + 1`` for the feature of split
        ``l``, else 0) — and the share of the perturbations in the input's component (``C``).
        """
        r0 = self.resp[:, 0]  # C×K
        coef = np.einsum("ck,ckp->cp", r0, self.B)
        effect = coef[:, 1:].copy()
        full = self.B.sum(axis=2)  # every component's prediction at z = all ones, C×K
        mu0 = (r0 * full).sum(axis=1)
        for level, j in enumerate(splits):
            rg = self.resp[:, level + 1]
            effect[:, j] = mu0 - (rg * (full - self.B[:, :, 1 + j])).sum(axis=1)
        share = (self._onehot() @ self._g_n) / len(self.y)  # C×K
        return coef, effect, (r0 * share).sum(axis=1)


def route(Z: np.ndarray, splits: tuple[int, ...]) -> np.ndarray:
    """Group of each 0/1 row under the tree: ``l + 1`` for the first split ``l`` whose feature
    is off, 0 when every split feature is on."""
    out = np.zeros(len(Z), dtype=np.int64)
    for level, j in reversed(list(enumerate(splits))):
        out[Z[:, j] < 0.5] = level + 1
    return out


def split_effects(leaves: np.ndarray, splits: tuple[int, ...], Z: np.ndarray) -> dict[int, float]:
    """Effect of each split feature: the mean, over the perturbations it is off in, of the
    predicted log-odds with it switched on minus off (each prediction by the coefficients of
    the group the tree routes it to). Evaluated where the perturbations are, rather than
    extrapolated to the unperturbed input."""
    out = {}
    for j in splits:
        rows = Z[Z[:, j] < 0.5]
        if not len(rows):
            continue
        on = rows.copy()
        on[:, j] = 1.0
        mu_off = np.einsum("ip,ip->i", leaves[route(rows, splits)][:, 1:], rows)
        mu_on = np.einsum("ip,ip->i", leaves[route(on, splits)][:, 1:], on)
        mu_off += leaves[route(rows, splits), 0]
        mu_on += leaves[route(on, splits), 0]
        out[j] = float(np.mean(mu_on - mu_off))
    return out


def _ridge_sse(G: np.ndarray, r: np.ndarray, yy: np.ndarray, ridge: float) -> np.ndarray:
    """Residual sum of squares of ridge fits from their statistics (batched over axis 0)."""
    p = G.shape[-1]
    coef = np.linalg.solve(G + ridge * np.eye(p), r[..., None])[..., 0]
    return np.maximum(yy - np.einsum("...p,...p->...", coef, r), 0.0)


def split_partition(X1: np.ndarray, y: np.ndarray, *, depth: int = 2, min_leaf: int = 10,
                    ridge: float = 1.0, min_gain: float = 0.05,
                    shortlist: int = 8) -> tuple[np.ndarray, tuple[int, ...]]:
    """Warm start: a model-based regression tree grown along the input's own side.

    Level by level, the rows that share the input's leaf (label 0) are split on the feature
    whose on / off halves are best fitted by two ridge regressions (the "gate" a nullified
    feature opens or closes); the off half gets a new label. Stops after ``depth`` splits, or
    when a split lowers the residual sum of squares by less than ``min_gain`` times the total
    sum of squares of ``y`` (so that a leaf already fitted well is not split on noise). For
    speed, the two-regression fit is computed for a ``shortlist`` of features only: those whose
    on / off halves differ most in the mean residual of one ridge fit of the leaf.

    Returns
    -------
    labels : ndarray
        ``n`` labels, 0 = the leaf of the unperturbed input (all features on); split ``l``
        sends the rows with its feature off to label ``l + 1``.
    splits : tuple of int
        The feature of each split.
    """
    n, p = X1.shape
    labels = np.zeros(n, dtype=np.int64)
    splits: list[int] = []
    total = float(np.sum((y - y.mean()) ** 2))
    for level in range(depth):
        rows = np.flatnonzero(labels == 0)
        X, yr = X1[rows], y[rows]
        G, r, yy = X.T @ X, X.T @ yr, float(yr @ yr)
        n_on = X[:, 1:].sum(axis=0)
        ok = np.flatnonzero((n_on >= min_leaf) & (len(rows) - n_on >= min_leaf))
        if not ok.size:
            break
        resid = yr - X @ np.linalg.solve(G + ridge * np.eye(p), r)
        on_sum = resid @ X[:, 1 + ok]
        proxy = on_sum**2 / n_on[ok] + on_sum**2 / (len(rows) - n_on[ok])  # resid sums to ~0
        cand = ok[np.argsort(-proxy, kind="stable")[:shortlist]]
        on_rows = [X[:, 1 + j] > 0.5 for j in cand]
        G_on = np.stack([X[m].T @ X[m] for m in on_rows])
        r_on = np.stack([X[m].T @ yr[m] for m in on_rows])
        yy_on = np.array([float(yr[m] @ yr[m]) for m in on_rows])
        sse = (_ridge_sse(G_on, r_on, yy_on, ridge)
               + _ridge_sse(G[None] - G_on, r[None] - r_on, yy - yy_on, ridge))
        j = int(cand[np.argmin(sse)])
        sse_j = float(sse.min())
        base = float(_ridge_sse(G[None], r[None], np.array([yy]), ridge)[0])
        if total <= 0 or (base - sse_j) / total < min_gain:
            break
        labels[rows[X[:, 1 + j] == 0]] = level + 1
        splits.append(j)
    return labels, tuple(splits)


def _starts(n_groups: int, K: int, n_chains: int) -> np.ndarray:
    """Starting components of the groups, the same for every chain (they differ by their
    draws): one component per group — the tree's partition, the finest one; the sampler reaches
    every coarser partition by merging, and the chains' R-hat checks they agree."""
    return np.tile(np.minimum(np.arange(n_groups), K - 1), (n_chains, 1))


def run_local(
    Z: np.ndarray,
    y: np.ndarray,
    *,
    origin: int = 0,
    n_components: int = 4,
    priors: tuple[tuple[float, float], ...] = ((1.0, 1.0),),
    fused: float = 0.0,
    depth: int = 3,
    n_sweeps: int = 40,
    burn_in: int = 20,
    n_chains: int = 2,
    alpha_prior: tuple[float, float] = (1.0, 1.0),
    sigma2_prior: tuple[float, float] = (1.0, 1e-3),
    intercept_scale: float = 10.0,
    seed: int | np.random.SeedSequence = 0,
) -> LocalFit:
    """Sample the local mixture; see the module docstring.

    Parameters
    ----------
    Z : ndarray
        ``n×F`` 0/1 design (1 = feature kept).
    y : ndarray
        ``n`` log-odds of the explained class.
    origin : int
        Row of the unperturbed input.
    n_components : int
        Truncation level of the Dirichlet process.
    priors : tuple of (lambda1, lambda2)
        Candidate elastic nets (Kyung et al.'s parametrisation, on the standardised output).
    fused : float
        ``lambda_f`` of the fused-lasso term between neighbouring features (0 = off).
    depth : int
        Splits of :func:`split_partition`: the perturbations form at most ``depth + 1``
        groups; the mixture assigns groups (not single perturbations) to components.
    n_sweeps, burn_in, n_chains : int
        Sweeps per chain, discarded sweeps, and independent chains.
    seed : int or SeedSequence
        Seed of the chains (all drawn from one generator).
    """
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, F = Z.shape
    if not np.all(Z[origin] == 1):  # it is then in the tree's leaf 0, the group read out
        raise ValueError("the origin row must keep every feature (a row of ones in Z)")
    y_mean, y_sd = float(y.mean()), float(y.std())
    traces = np.full((n_chains, n_sweeps), np.nan)
    if y_sd < 1e-12:  # the black box ignores every perturbation: nothing to explain
        return LocalFit(np.zeros(F), np.zeros(F), y_mean, 1.0, 1.0, 1.0, 1.0, float(n_chains),
                        traces)
    ys = (y - y_mean) / y_sd
    X1 = np.hstack([np.ones((n, 1)), Z])
    lam1 = np.array([p[0] for p in priors], dtype=np.float64)
    lam2 = np.array([p[1] for p in priors], dtype=np.float64)
    hyper = {"alpha_prior": alpha_prior, "sigma2_prior": sigma2_prior,
             "intercept_scale": intercept_scale}
    rng = np.random.default_rng(seed)
    # the shortlist's exact fits cost n p^2 each: fewer candidates on wide inputs (images)
    groups, splits = split_partition(X1, ys, depth=depth, min_leaf=max(10, F // 4),
                                     shortlist=8 if F <= 64 else 3)
    n_groups = int(groups.max()) + 1
    chains = _Chains(X1, ys, n_components, lam1, lam2, float(fused), hyper, rng, groups,
                     _starts(n_groups, n_components, n_chains))
    coef = np.zeros((n_chains, F + 1))
    effect = np.zeros((n_chains, F))
    share = np.zeros(n_chains)
    used = np.zeros(n_chains)
    leaves = np.zeros((n_chains, n_groups, F + 1))
    for t in range(n_sweeps):
        chains.sweep()
        traces[:, t] = chains.loglik
        if t >= burn_in:
            b, e, s = chains.readout(splits)
            leaves += chains.leaf_coef()
            coef += b
            effect += e
            share += s
            sizes = chains._onehot() @ chains._g_n
            used += (sizes >= 0.05 * n).sum(axis=1)
    best = int(np.argmax(traces[:, burn_in:].mean(axis=1)))
    kept = n_sweeps - burn_in
    B = chains.B[best]
    fitted = np.einsum("ij,ij->i", X1, B[chains.zg[best][groups]])
    r2 = 1.0 - float(np.mean((ys - fitted) ** 2))
    coef, effect = coef[best] / kept, effect[best] / kept
    leaves = leaves[best] / kept * y_sd
    leaves[:, 0] += y_mean
    effect = effect * y_sd
    for j, value in split_effects(leaves, splits, Z).items():
        effect[j] = value
    share, used = float(share[best]) / kept, float(used[best]) / kept
    post = traces[:, burn_in:]
    return LocalFit(
        coef=coef[1:] * y_sd,
        effect=effect,
        intercept=y_mean + y_sd * coef[0],
        share=share,
        n_used=used,
        r2=r2,
        rhat=split_rhat(post),
        ess=float(sum(effective_sample_size(tr) for tr in post)),
        loglik_trace=traces,
        splits=splits,
        leaf_coef=leaves,
    )
