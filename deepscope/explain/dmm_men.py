"""DMM-MEN: a Dirichlet-process mixture of regressions with multiple elastic nets (black box).

One fit serves many samples: DMM-MEN queries the black box on a set of inputs (and, LEMNA-style,
on perturbed copies of them), fits the Bayesian mixture of linear regressions of the explained
class's log-odds on the feature values with :func:`deepscope.explain._gibbs.run_gibbs`, and
explains a sample with the coefficients of its most probable component.
"""

from __future__ import annotations

import hashlib

import numpy as np
from threadpoolctl import threadpool_limits

from deepscope._validate import check_bool, check_choice, check_int
from deepscope.errors import InputError
from deepscope.explain.base import EXPLAINERS, Explainer, class_logit
from deepscope.explain.features import FeatureSpace
from deepscope.explain.sampling import local_samples, random_coalitions
from deepscope.protocol import check_fitted

ATTRIBUTIONS = ("contribution", "coef")


def _row_keys(x: np.ndarray) -> list[bytes]:
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


@EXPLAINERS.register("dmm-men")
class DMMMEN(Explainer):
    """Bayesian non-parametric black-box explainer (Guo et al., NeurIPS 2018).

    Parameters
    ----------
    space : FeatureSpace, optional
        A *shared* feature space (default: 2×2 grid cells for images, columns for rows).
    n_components : int
        Truncation level of the Dirichlet process (1 = a single global regression, the
        ablation).
    priors : tuple of (lambda1, lambda2)
        The elastic-net priors the components choose from (L1 weight, L2 weight).
    alpha_prior : (float, float)
        Gamma(shape, rate) prior of the Dirichlet-process concentration; a larger mean
        (shape / rate) spreads the inputs over more components.
    n_local : int
        Perturbed copies queried per fitting input (0 = fit on the inputs alone).
    group_local : bool
        True (default): an input and its perturbed copies share one mixture component, so the
        Dirichlet process clusters *inputs* by their local behaviour. False: every queried
        point is assigned on its own.
    off_fraction : (float, float)
        Range of the share of features nullified in a perturbed copy.
    fill : {"zero", "mean", "blur"} or tuple of them
        How perturbed features are nullified; the (first) fill is also the reference of the
        attributions. With several, each perturbed copy uses one drawn at random.
    reference : ndarray, optional
        Inputs whose mean is the ``"mean"`` fill (default: the fitting inputs).
    attribution : {"contribution", "coef"}
        ``"contribution"`` (default): ``beta_j * (x_j - fill_j)``, the change of the log-odds
        the component predicts when feature ``j`` is nullified. ``"coef"``: ``beta_j`` alone.
    n_sweeps, burn_in, thin, n_chains : int
        Gibbs sampler settings (several short chains; the best log-likelihood is kept).
    standardize : bool
        Scale features to unit variance before sampling (the priors then shrink every
        feature alike). False: only centre them, so rarely varying features are shrunk more.
    n_threads : int
        BLAS threads during the sampler (threadpoolctl); 1 is fastest on a busy 2-core box.
    batch_size : int
        Inputs per black-box call.
    seed : int
        Seed of the perturbations and the chains.
    progress : bool
        Show a progress bar while sampling.
    """

    name = "dmm-men"

    def __init__(
        self,
        space: FeatureSpace | None = None,
        *,
        n_components: int = 8,
        priors: tuple[tuple[float, float], ...] = ((10.0, 1.0), (3.0, 3.0), (1.0, 10.0)),
        alpha_prior: tuple[float, float] = (1.0, 1.0),
        n_local: int = 40,
        group_local: bool = True,
        off_fraction: tuple[float, float] = (0.02, 0.5),
        fill: str | tuple[str, ...] = "zero",
        reference: np.ndarray | None = None,
        attribution: str = "contribution",
        n_sweeps: int = 200,
        burn_in: int = 100,
        thin: int = 2,
        n_chains: int = 3,
        standardize: bool = True,
        n_threads: int = 1,
        batch_size: int = 512,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self._store(locals())
        self._validate()

    def _validate(self) -> None:
        """Check the parameters that a fit would otherwise trip over half-way."""
        check_int("n_components", self.n_components, low=1)
        check_int("n_local", self.n_local, low=0)
        check_int("burn_in", self.burn_in, low=0)
        if check_int("n_sweeps", self.n_sweeps) <= self.burn_in:
            raise InputError(f"DMMMEN: n_sweeps ({self.n_sweeps}) must exceed burn_in "
                             f"({self.burn_in})")
        check_int("thin", self.thin, low=1)
        check_int("n_chains", self.n_chains, low=1)
        check_choice("attribution", self.attribution, ATTRIBUTIONS)
        check_bool("group_local", self.group_local)
        check_bool("standardize", self.standardize)
        if len(self.priors) < 1 or not all(a > 0 and b > 0 for a, b in self.priors):
            raise InputError("DMMMEN: priors must be (lambda1, lambda2) pairs, both > 0, "
                             f"got {self.priors!r}")

    @property
    def _fills(self) -> tuple[str, ...]:
        return (self.fill,) if isinstance(self.fill, str) else tuple(self.fill)

    def _fill(self, x: np.ndarray, how: str | None = None) -> np.ndarray:
        how = self._fills[0] if how is None else how
        ref = self.reference_ if how == "mean" else None
        return np.ascontiguousarray(self.space_.baseline(x, how, reference=ref))

    def _fit(self, x: np.ndarray) -> None:
        self._validate()  # again: parameters may have been set after construction
        space = self.space_
        if not space.shared:
            raise InputError(
                "DMM-MEN fits one model for all samples and needs a shared feature space; "
                "use SuperpixelSpace(per_sample=False), GridSpace, PixelSpace or TabularSpace"
            )
        from deepscope.explain._gibbs import run_gibbs

        rng = np.random.default_rng(self.seed)
        self.reference_ = x if self.reference is None else np.asarray(self.reference)
        self.reference_ = self.reference_.mean(axis=0, keepdims=True)
        if len(self._fills) == 1:
            local, source = local_samples(
                space, x, self._fill(x), self.n_local, rng, tuple(self.off_fraction)
            )
        else:  # each perturbed copy uses one of the fills, drawn at random
            fills = np.stack([self._fill(x, how) for how in self._fills])
            keep = random_coalitions(
                len(x) * self.n_local, space.n_features_, rng, tuple(self.off_fraction)
            )
            source = np.repeat(np.arange(len(x)), self.n_local)
            which = rng.integers(0, len(fills), len(source))
            local = space.nullify(x[source], ~keep, fills[which, source])
        inputs = np.concatenate([x, local]) if len(local) else x
        anchor = np.concatenate([np.arange(len(x)), source])
        y = class_logit(self.black_box_(inputs), self.target_)
        F = space.transform(inputs)
        sd = F.std(axis=0)
        active = sd > 1e-8
        if not active.any():
            raise InputError("all feature values are constant over the fitting inputs")
        self.active_ = active
        self.x_mean_ = F.mean(axis=0)
        self.x_scale_ = np.where(active, sd, 1.0) if self.standardize else np.ones_like(sd)
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0
        Xs = (F[:, active] - self.x_mean_[active]) / self.x_scale_[active]
        ys = (y - self.y_mean_) / self.y_scale_
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            res = run_gibbs(
                Xs,
                ys,
                n_components=self.n_components,
                priors=tuple(self.priors),
                alpha_prior=tuple(self.alpha_prior),
                n_sweeps=self.n_sweeps,
                burn_in=self.burn_in,
                thin=self.thin,
                n_chains=self.n_chains,
                groups=anchor if self.group_local else None,
                seed=self.seed,
                progress=self.progress,
            )
        self.result_ = res
        # coefficients back on the original feature / log-odds scale
        K, D = self.n_components, F.shape[1]
        coef = np.zeros((K, D))
        coef[:, active] = res.coef[:, 1:] / self.x_scale_[active] * self.y_scale_
        self.coef_ = coef
        self.intercept_ = self.y_mean_ + self.y_scale_ * res.coef[:, 0] - coef @ self.x_mean_
        self.sigma2_ = res.sigma2 * self.y_scale_**2
        self.weights_ = res.weights
        # each fitting input takes the component most of its local cloud belongs to
        votes = np.zeros((len(x), K))
        np.add.at(votes, anchor, res.z_prob)
        self.anchor_component_ = dict(zip(_row_keys(x), votes.argmax(axis=1), strict=True))
        self.fit_r2_ = float(1 - np.mean((ys - self._predict_std(Xs, res)) ** 2))

    @staticmethod
    def _predict_std(Xs: np.ndarray, res) -> np.ndarray:
        comp = res.z
        return res.coef[comp, 0] + np.einsum("ij,ij->i", Xs, res.coef[comp, 1:])

    def components(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Component of each row: from the fit for fitting inputs, else by the model's output.

        Returns
        -------
        component : ndarray
            ``N`` ints.
        queries : int
            Black-box queries spent (one per row that was not a fitting input).
        """
        keys = _row_keys(x)
        comp = np.array([self.anchor_component_.get(k, -1) for k in keys], dtype=np.int64)
        new = np.flatnonzero(comp < 0)
        if new.size:
            F = self.space_.transform(x[new])
            y = class_logit(self.black_box_(x[new]), self.target_)
            mu = F @ self.coef_.T + self.intercept_
            logp = (
                np.log(np.maximum(self.weights_, 1e-300))
                - 0.5 * np.log(self.sigma2_)
                - 0.5 * (y[:, None] - mu) ** 2 / self.sigma2_
            )
            comp[new] = logp.argmax(axis=1)
        return comp, int(new.size)

    def _explain(self, x: np.ndarray):
        comp, _ = self.components(x)
        beta = self.coef_[comp]
        if self.attribution == "coef":
            attr = beta
        else:
            F = self.space_.transform(x)
            F0 = self.space_.transform(self._fill(x))
            attr = beta * (F - F0)
        res = self.result_
        extras = {
            "n_components": self.n_components,
            "weights": self.weights_.round(6).tolist(),
            "fit_r2": self.fit_r2_,
            "ess_loglik": res.ess,
            "mh_accept_rate": res.accept_rate,
            "seconds_per_sweep": res.seconds_per_sweep,
            "loglik_trace": res.loglik_trace[res.best_chain].tolist(),
        }
        return attr, comp, extras

    def diagnostics(self) -> dict:
        """Sampler diagnostics: traces of every chain, ESS, MH acceptance, timing."""
        check_fitted(self, "result_", hint="call .fit(x, predict_proba, target=c)")
        res = self.result_
        return {
            "loglik_trace": res.loglik_trace,
            "best_chain": res.best_chain,
            "ess_loglik": res.ess,
            "mh_accept_rate": res.accept_rate,
            "seconds_per_sweep": res.seconds_per_sweep,
            "n_kept": res.n_kept,
            "weights": self.weights_,
            "fit_r2": self.fit_r2_,
        }
