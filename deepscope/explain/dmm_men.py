"""DMM-MEN: a Dirichlet-process mixture of regressions with multiple elastic nets (black box).

Two modes. ``mode="global"`` (Guo et al., NeurIPS 2018): one fit serves many samples — DMM-MEN
queries the black box on a set of inputs (and, LEMNA-style, on perturbed copies of them), fits
the Bayesian mixture of linear regressions of the explained class's log-odds on the feature
values with :func:`deepscope.explain._gibbs.run_gibbs`, and explains a sample with the
coefficients of its most probable component. ``mode="local"`` (LEMNA's setting): every explained
input gets its own mixture, fitted to ``n_samples`` queries around it (random subsets of its
features nullified), optionally with LEMNA's fused-lasso term between neighbouring features
(:mod:`deepscope.explain._dmm_local`, :mod:`deepscope.explain._local_gibbs`); the explanation is
the component that holds the unperturbed input.
"""

from __future__ import annotations

import hashlib

import numpy as np
from threadpoolctl import threadpool_limits

from deepscope._validate import check_bool, check_choice, check_int, check_number
from deepscope.errors import InputError
from deepscope.explain.base import EXPLAINERS, Explainer, class_logit
from deepscope.explain.features import FeatureSpace
from deepscope.explain.sampling import local_samples, random_coalitions
from deepscope.protocol import check_fitted

ATTRIBUTIONS = ("contribution", "coef", "path")
MODES = ("global", "local")
#: per mode: truncation K, elastic-net priors, (sweeps, burn-in), chains
MODE_DEFAULTS = {
    "global": (8, ((10.0, 1.0), (3.0, 3.0), (1.0, 10.0)), (200, 100), 3),
    "local": (4, ((1.0, 1.0), (5.0, 1.0), (1.0, 10.0)), (16, 8), 2),
}


def _row_keys(x: np.ndarray) -> list[bytes]:
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


@EXPLAINERS.register("dmm-men")
class DMMMEN(Explainer):
    """Bayesian non-parametric black-box explainer (Guo et al., NeurIPS 2018).

    Parameters
    ----------
    space : FeatureSpace, optional
        Feature space (default: 2×2 grid cells for images, columns for rows); global mode
        needs a *shared* one.
    mode : {"global", "local"}
        ``"global"``: one mixture over all fitting inputs and their perturbed copies (the
        NeurIPS'18 method). ``"local"``: one mixture per explained input, fitted to
        ``n_samples`` queries around it (LEMNA's setting); ``fit`` then only prepares, the
        queries are spent in ``explain``.
    n_samples : int
        Local mode: black-box queries per explained input (the input itself plus
        ``n_samples - 1`` perturbations, each nullifying ``m ~ U{1..F-1}`` random features).
    fused : float
        Local mode: weight ``lambda_f`` of the fused-lasso term ``lambda_f sum_j |beta_j -
        beta_{j-1}|`` tying neighbouring features (ordered features such as bytes); 0 = off.
        Enters as a Laplace prior on the differences (Kyung et al. 2010's hierarchical
        Bayesian fused lasso) inside the Gibbs sampler.
    depth : int
        Local mode: the perturbations are first grouped by a model-based regression tree with
        at most ``depth`` splits along the input's side (the features whose nullification
        switches the black box to another linear regime); the Dirichlet-process mixture then
        assigns these groups to components (0 = no tree: one group, a single regression).
    n_components : int, optional
        Truncation level of the Dirichlet process (1 = a single regression, the ablation).
        Default 8 (global) / 4 (local).
    priors : tuple of (lambda1, lambda2), optional
        The elastic-net priors the components choose from (L1 weight, L2 weight). Default
        ``((10, 1), (3, 3), (1, 10))`` (global, Li & Lin's parametrisation) /
        ``((1, 1), (5, 1), (1, 10))`` (local, Kyung et al.'s, on the standardised log-odds).
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
    attribution : {"contribution", "coef", "path"}
        ``"contribution"`` (default): the change of the log-odds the model predicts when
        feature ``j`` alone is nullified — global: ``beta_j * (x_j - fill_j)`` of the sample's
        component; local: the input's component's coefficient, and for a feature that switches
        the regime (a split of the grouping tree) the mean switch between the two regimes'
        predictions over the perturbations it is off in. ``"coef"``: ``beta_j`` alone (local:
        the input's regime's rule; a regime switch gets ~0). ``"path"`` (local only): the
        mixture's greedy deletion path (:meth:`~deepscope.explain._local_gibbs.LocalFit.
        deletion_path`; measured worse than ``"contribution"`` on augmentation / synthetic).
    n_sweeps, burn_in, n_chains : int, optional
        Gibbs sampler settings. Global: 200 / 100 / 3 (several chains; the best
        log-likelihood is kept). Local: 16 / 8 / 2 per explained input (all chains' kept
        draws are averaged; their split R-hat and ESS are reported).
    thin : int
        Global mode: keep every ``thin``-th draw.
    standardize : bool
        Scale features to unit variance before sampling (the priors then shrink every
        feature alike). False: only centre them, so rarely varying features are shrunk more.
    n_threads : int
        BLAS threads during the sampler (threadpoolctl); 1 is fastest on a busy 2-core box.
    batch_size : int
        Inputs per black-box call.
    seed : int
        Seed of the perturbations and the chains; in local mode input ``i`` of an ``explain``
        call uses ``seed + i`` (as LIME and KernelSHAP do), so explaining a slice that starts
        at ``start`` with ``seed + start`` gives the same attributions.
    progress : bool
        Show a progress bar while sampling.
    """

    name = "dmm-men"

    def __init__(
        self,
        space: FeatureSpace | None = None,
        *,
        mode: str = "local",
        n_samples: int = 500,
        fused: float = 0.0,
        depth: int = 3,
        n_components: int | None = None,
        priors: tuple[tuple[float, float], ...] | None = None,
        alpha_prior: tuple[float, float] = (1.0, 1.0),
        n_local: int = 40,
        group_local: bool = True,
        off_fraction: tuple[float, float] = (0.02, 0.5),
        fill: str | tuple[str, ...] = "zero",
        reference: np.ndarray | None = None,
        attribution: str = "contribution",
        n_sweeps: int | None = None,
        burn_in: int | None = None,
        thin: int = 2,
        n_chains: int | None = None,
        standardize: bool = True,
        n_threads: int = 1,
        batch_size: int = 512,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self._store(locals())
        self._validate()

    # -- parameters resolved per mode --------------------------------------------------------
    @property
    def _K(self) -> int:
        return MODE_DEFAULTS[self.mode][0] if self.n_components is None else self.n_components

    @property
    def _priors(self) -> tuple[tuple[float, float], ...]:
        return MODE_DEFAULTS[self.mode][1] if self.priors is None else tuple(self.priors)

    @property
    def _sweeps(self) -> tuple[int, int]:
        sweeps, burn = MODE_DEFAULTS[self.mode][2]
        if self.n_sweeps is None and self.burn_in is not None:
            sweeps = max(sweeps, self.burn_in + 1)  # only burn_in given: keep sweeps > burn_in
        return (sweeps if self.n_sweeps is None else self.n_sweeps,
                burn if self.burn_in is None else self.burn_in)

    @property
    def _chains(self) -> int:
        return MODE_DEFAULTS[self.mode][3] if self.n_chains is None else self.n_chains

    def _validate(self) -> None:
        """Check the parameters that a fit would otherwise trip over half-way."""
        check_choice("mode", self.mode, MODES)
        check_int("n_components", self._K, low=1)
        check_int("n_local", self.n_local, low=0)
        check_int("n_samples", self.n_samples, low=3)
        check_number("fused", self.fused, low=0.0)
        check_int("depth", self.depth, low=0)
        sweeps, burn = self._sweeps
        check_int("burn_in", burn, low=0)
        if check_int("n_sweeps", sweeps) <= burn:
            raise InputError(f"DMMMEN: n_sweeps ({sweeps}) must exceed burn_in ({burn})")
        check_int("thin", self.thin, low=1)
        check_int("n_chains", self._chains, low=1)
        check_choice("attribution", self.attribution, ATTRIBUTIONS)
        if self.attribution == "path" and self.mode != "local":
            raise InputError("attribution='path' needs mode='local' (the global mode has no "
                             "per-input regimes); use 'contribution' or 'coef'")
        check_bool("group_local", self.group_local)
        check_bool("standardize", self.standardize)
        priors = self._priors
        if len(priors) < 1 or not all(a > 0 and b > 0 for a, b in priors):
            raise InputError("DMMMEN: priors must be (lambda1, lambda2) pairs, both > 0, "
                             f"got {priors!r}")

    @property
    def _fills(self) -> tuple[str, ...]:
        return (self.fill,) if isinstance(self.fill, str) else tuple(self.fill)

    def _fill(self, x: np.ndarray, how: str | None = None) -> np.ndarray:
        how = self._fills[0] if how is None else how
        ref = self.reference_ if how == "mean" else None
        return np.ascontiguousarray(self.space_.baseline(x, how, reference=ref))

    def _fit(self, x: np.ndarray) -> None:
        self._validate()  # again: parameters may have been set after construction
        if self.mode == "local":  # the queries are spent per explained input, in explain()
            ref = x if self.reference is None else np.asarray(self.reference)
            self.reference_ = ref.mean(axis=0, keepdims=True)
            return
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
                n_components=self._K,
                priors=self._priors,
                alpha_prior=tuple(self.alpha_prior),
                n_sweeps=self._sweeps[0],
                burn_in=self._sweeps[1],
                thin=self.thin,
                n_chains=self._chains,
                groups=anchor if self.group_local else None,
                seed=self.seed,
                progress=self.progress,
            )
        self.result_ = res
        # coefficients back on the original feature / log-odds scale
        K, D = self._K, F.shape[1]
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
        if self.mode == "local":
            from deepscope.explain._dmm_local import explain_local

            attr, comp, extras = explain_local(self, x)
            self.local_diagnostics_ = extras
            return attr, comp, extras
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
            "mode": "global",
            "n_components": self._K,
            "weights": self.weights_.round(6).tolist(),
            "fit_r2": self.fit_r2_,
            "ess_loglik": res.ess,
            "mh_accept_rate": res.accept_rate,
            "seconds_per_sweep": res.seconds_per_sweep,
            "loglik_trace": res.loglik_trace[res.best_chain].tolist(),
        }
        return attr, comp, extras

    def diagnostics(self) -> dict:
        """Sampler diagnostics. Global: traces of every chain, ESS, MH acceptance, timing.
        Local: per explained input (of the last ``explain``) the split R-hat and ESS of the
        log-likelihood, the share of the input's own component, the components used, fit R^2."""
        if self.mode == "local":
            check_fitted(self, "local_diagnostics_", hint="call .fit(...) then .explain(x)")
            return dict(self.local_diagnostics_)
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
