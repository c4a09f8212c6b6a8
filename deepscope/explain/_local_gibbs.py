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


class _LocalChain:
    """State and one sweep of one chain (components batched: one Cholesky call per sweep)."""

    def __init__(self, X1, y, K, lam1, lam2, lam_f, hyper, rng, groups, zg0):
        self.X1, self.y, self.K, self.rng = X1, y, K, rng
        self.groups = groups
        self._order = np.argsort(groups, kind="stable")
        self._starts = np.searchsorted(groups[self._order], np.arange(int(groups.max()) + 1))
        z0 = np.asarray(zg0, dtype=np.int64)[groups]
        self.zg = np.asarray(zg0, dtype=np.int64).copy()
        self.lam1, self.lam2, self.lam_f, self.h = lam1, lam2, lam_f, hyper
        p = X1.shape[1]
        F = p - 1
        self.B = np.zeros((K, p))
        self.s2 = np.full(K, 1.0)
        self.c = np.zeros(K, dtype=np.int64)
        self.omega = np.full(len(lam1), 1.0 / len(lam1))
        self.inv_tau = np.ones((K, F))
        self.inv_w = np.ones((K, max(F - 1, 0)))
        self.alpha = 1.0
        self.logpi = np.full(K, -np.log(K))
        self.loglik = -np.inf
        self.z = np.zeros(len(y), dtype=np.int64)
        self.G = np.zeros((K, p, p))
        self.r = np.zeros((K, p))
        self.yy = np.zeros(K)
        self._move(np.arange(len(y)), None, np.asarray(z0, dtype=np.int64))
        self.z = np.asarray(z0, dtype=np.int64).copy()
        diag = np.arange(1, p)
        self._diag, self._off = diag, (diag[:-1], diag[1:])

    def _move(self, rows: np.ndarray, old: np.ndarray | None, new: np.ndarray) -> None:
        """Move ``rows`` between components in the sufficient statistics X'X, X'y, y'y."""
        X, y = self.X1[rows], self.y[rows]
        for k in range(self.K):
            for sign, lab in ((1.0, new), (-1.0, old)):
                if lab is None:
                    continue
                sel = lab == k
                if sel.any():
                    Xs, ys = X[sel], y[sel]
                    self.G[k] += sign * (Xs.T @ Xs)
                    self.r[k] += sign * (Xs.T @ ys)
                    self.yy[k] += sign * float(ys @ ys)

    def prior_precision(self) -> np.ndarray:
        """``K×p×p`` prior precisions of the coefficients; index 0 is the intercept."""
        K, p = self.B.shape
        P = np.zeros((K, p, p))
        P[:, 0, 0] = 1.0 / self.h["intercept_scale"] ** 2
        d = self._diag
        P[:, d, d] = self.inv_tau + self.lam2[self.c][:, None]
        if self.lam_f > 0 and p > 2:
            a, b = self._off
            w = self.inv_w
            P[:, a, a] += w
            P[:, b, b] += w
            P[:, a, b] -= w
            P[:, b, a] -= w
        return P

    def update_beta_sigma2(self) -> None:
        """beta_k | z, sigma2, tau, w then sigma2_k | beta_k (both exact), all k at once."""
        rng = self.rng
        K, p = self.B.shape
        a_s, b_s = self.h["sigma2_prior"]
        inv_s2 = (1.0 / self.s2)[:, None, None]
        P = self.prior_precision()
        A = self.G * inv_s2 + P
        # beta = A^-1 (r / s2 + L eps) with L L' = A has mean A^-1 r / s2 and covariance A^-1
        # (one Cholesky and one solve per component, batched)
        L = np.linalg.cholesky(A)
        b = self.r / self.s2[:, None] + np.matmul(L, rng.standard_normal((K, p, 1)))[:, :, 0]
        self.B = np.linalg.solve(A, b[:, :, None])[:, :, 0]
        GB = np.matmul(self.G, self.B[:, :, None])[:, :, 0]
        rss = np.maximum(self.yy - 2 * np.einsum("kp,kp->k", self.B, self.r)
                         + np.einsum("kp,kp->k", self.B, GB), 0.0)
        counts = np.bincount(self.z, minlength=K)
        self.s2 = np.clip(1.0 / rng.gamma(a_s + 0.5 * counts, 1.0 / (b_s + 0.5 * rss)),
                          1e-10, 1e4)

    def update_scales(self) -> None:
        """1/tau^2 and 1/w^2 (inverse Gaussian), then the elastic-net choice c and omega."""
        rng = self.rng
        beta = self.B[:, 1:]
        l1 = self.lam1[self.c][:, None]
        self.inv_tau = _inv_gauss(rng, l1 / np.maximum(np.abs(beta), 1e-8), l1**2)
        if self.lam_f > 0 and beta.shape[1] > 1:
            d = np.abs(np.diff(beta, axis=1))
            self.inv_w = _inv_gauss(rng, self.lam_f / np.maximum(d, 1e-8),
                                    np.asarray(self.lam_f**2))
        M = len(self.lam1)
        if M > 1:  # exp(-lambda1 |b| - lambda2 b^2 / 2) is Li & Lin's form with l1 = 2 lambda1
            dens = log_en_density(beta[:, None, :], 1.0, 2 * self.lam1[None, :, None],
                                  self.lam2[None, :, None])
            logits = dens.sum(axis=2) + np.log(self.omega)[None, :]
            self.c = np.argmax(logits - np.log(-np.log(rng.random(logits.shape))), axis=1)
            self.omega = rng.dirichlet(1.0 + np.bincount(self.c, minlength=M))

    def component_loglik(self, rows=slice(None)) -> np.ndarray:
        mu = self.X1[rows] @ self.B.T
        return -0.5 * (LOG2PI + np.log(self.s2)) - 0.5 * (self.y[rows, None] - mu) ** 2 / self.s2

    def update_z(self) -> None:
        """Component of every group (a group's rows share it), given the coefficients."""
        ll = self.component_loglik()
        logits = np.add.reduceat(ll[self._order], self._starts, axis=0) + self.logpi
        top = logits.max(axis=1, keepdims=True)
        self.loglik = float((top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))).sum())
        resp = np.exp(logits - top)
        self.resp = resp / resp.sum(axis=1, keepdims=True)
        self.zg = np.argmax(logits - np.log(-np.log(self.rng.random(logits.shape))), axis=1)
        z = self.zg[self.groups]
        moved = np.flatnonzero(z != self.z)
        if moved.size:
            self._move(moved, self.z[moved], z[moved])
        self.z = z

    def update_sticks(self) -> None:
        K = self.K
        if K == 1:
            self.logpi = np.zeros(1)
            return
        counts = np.bincount(self.zg, minlength=K).astype(np.float64)
        after = counts[::-1].cumsum()[::-1] - counts
        v = np.clip(self.rng.beta(1.0 + counts[:-1], self.alpha + after[:-1]), 1e-12, 1 - 1e-12)
        log1m = np.log1p(-v)
        self.logpi = np.append(np.log(v), 0.0) + np.append(0.0, np.cumsum(log1m))
        a0, b0 = self.h["alpha_prior"]
        self.alpha = float(self.rng.gamma(a0 + K - 1, 1.0 / (b0 - log1m.sum())))

    def sweep(self) -> None:
        self.update_beta_sigma2()
        self.update_scales()
        self.update_z()
        self.update_sticks()

    def origin_coef(self, splits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, float]:
        """Readout of one draw, Rao-Blackwellised over the components of the groups (their
        conditional probabilities ``r`` in the last z-update).

        Returns ``sum_k r_0k beta_k`` (the input's component, with intercept), the effect of
        nullifying each feature alone — ``mu_0(1) - mu_g(1 - e_j)`` with ``g`` the group the
        tree routes ``1 - e_j`` to (group ``l + 1`` for the feature of split ``l``, else 0) —
        and the share of the perturbations in the input's component.
        """
        share = np.bincount(self.z, minlength=self.K) / len(self.z)
        r0 = self.resp[0]
        coef = r0 @ self.B
        effect = coef[1:].copy()
        full = self.B.sum(axis=1)  # prediction of every component at z = all ones
        mu0 = float(r0 @ full)
        for level, j in enumerate(splits):
            rg = self.resp[level + 1]
            effect[j] = mu0 - float(rg @ (full - self.B[:, 1 + j]))
        return coef, effect, float(r0 @ share)


def _ridge_sse(G: np.ndarray, r: np.ndarray, yy: np.ndarray, ridge: float) -> np.ndarray:
    """Residual sum of squares of ridge fits from their statistics (batched over axis 0)."""
    p = G.shape[-1]
    coef = np.linalg.solve(G + ridge * np.eye(p), r[..., None])[..., 0]
    return np.maximum(yy - np.einsum("...p,...p->...", coef, r), 0.0)


def split_partition(X1: np.ndarray, y: np.ndarray, *, depth: int = 2, min_leaf: int = 10,
                    ridge: float = 1.0, min_gain: float = 0.02,
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


def _starts(n_groups: int, K: int, n_chains: int) -> list[np.ndarray]:
    """Starting components of the groups, the same for every chain (they differ by seed): one
    component per group (the tree's partition, the finest one). The sampler reaches every
    coarser partition by merging groups, and the chains' R-hat checks they agree."""
    return [np.minimum(np.arange(n_groups), K - 1) for _ in range(n_chains)]


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
        Seed of the chains.
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
    seeds = np.random.SeedSequence(seed) if isinstance(seed, int) else seed
    rngs = [np.random.default_rng(s) for s in seeds.spawn(n_chains + 1)]
    groups, splits = split_partition(X1, ys, depth=depth, min_leaf=max(10, F // 4))
    n_groups = int(groups.max()) + 1
    starts = _starts(n_groups, n_components, n_chains)
    best = None
    for c in range(n_chains):
        chain = _LocalChain(X1, ys, n_components, lam1, lam2, float(fused), hyper, rngs[c],
                            groups, starts[c])
        coef = np.zeros(F + 1)
        effect = np.zeros(F)
        share = used = 0.0
        for t in range(n_sweeps):
            chain.sweep()
            traces[c, t] = chain.loglik
            if t >= burn_in:
                b, e, s = chain.origin_coef(splits)
                coef += b
                effect += e
                share += s
                used += float((np.bincount(chain.z, minlength=n_components) >= 0.05 * n).sum())
        score = float(np.mean(traces[c, burn_in:]))
        if best is None or score > best[0]:
            fitted = np.einsum("ij,ij->i", X1, chain.B[chain.z])
            r2 = 1.0 - float(np.mean((ys - fitted) ** 2))
            best = (score, coef, effect, share, used, r2)
    _, coef, effect, share, used, r2 = best
    kept = n_sweeps - burn_in
    coef /= kept
    effect /= kept
    post = traces[:, burn_in:]
    return LocalFit(
        coef=coef[1:] * y_sd,
        effect=effect * y_sd,
        intercept=y_mean + y_sd * coef[0],
        share=share / kept,
        n_used=used / kept,
        r2=r2,
        rhat=split_rhat(post),
        ess=float(sum(effective_sample_size(tr) for tr in post)),
        loglik_trace=traces,
        splits=splits,
    )
