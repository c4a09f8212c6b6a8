"""DMM-MEN's local mode: one mixture per explained input, fitted to its LEMNA perturbations.

For each explained input, ``n_samples`` black-box queries: the input itself and
``n_samples - 1`` perturbed copies, each with a random subset of ``m`` features nullified
(``m`` uniform in ``1..F-1``, LEMNA's "1–40 of 41 bytes"). The regression design is the 0/1
matrix of kept features, so a coefficient is the change of the log-odds when the feature keeps
its value instead of the fill. :func:`~deepscope.explain._local_gibbs.run_local` fits the
mixture. Attributions: ``"coef"`` — the coefficients of the component that holds the
unperturbed input (the rule of its regime; a feature whose nullification switches the regime,
a "gate", is constant there and gets ~0); ``"contribution"`` (default) — the change of the
log-odds the mixture predicts when the feature alone is nullified: the same coefficient for
ordinary features, and for a gate the drop from the input's regime to the regime it switches
to (the mixture's other component).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepscope.explain._local_gibbs import LocalFit, run_local
from deepscope.explain.base import class_logit, progress_range
from deepscope.explain.features import n_features


def lemna_masks(n: int, n_feat: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` keep-masks (``True`` = kept), each turning off ``m ~ U{1..F-1}`` random features
    (``m = 1`` when ``F = 1``)."""
    hi = max(n_feat - 1, 1)
    m = rng.integers(1, hi + 1, size=(n, 1))
    rank = np.argsort(rng.random((n, n_feat)), axis=1).argsort(axis=1)
    return rank >= m


def local_design(ex: Any, row: np.ndarray, fill_row: np.ndarray, n_feat: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The 0/1 design (row 0 = the input itself) and the queried inputs of one explanation."""
    keep = np.ones((ex.n_samples, n_feat), dtype=bool)
    keep[1:] = lemna_masks(ex.n_samples - 1, n_feat, rng)
    reps = np.broadcast_to(row, (ex.n_samples, *row.shape))
    inputs = ex.space_.nullify(reps, ~keep, np.broadcast_to(fill_row, reps.shape))
    return keep, inputs


def explain_local(ex: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Attributions (``N×F``), the fitted component index (always 0: the input's own) and the
    per-input diagnostics of a local-mode :class:`~deepscope.explain.dmm_men.DMMMEN`."""
    fills = ex._fill(x)
    width = n_features(ex.space_, x)
    out = np.full((len(x), width), np.nan)
    fits: list[LocalFit] = []
    for i in progress_range(len(x), "DMM-MEN local", ex.progress):
        d = n_features(ex.space_, x[i : i + 1])
        rng = np.random.default_rng(np.random.SeedSequence([ex.seed + i]))
        keep, inputs = local_design(ex, x[i], fills[i], d, rng)
        y = class_logit(ex.black_box_(inputs), ex.target_)
        fit = run_local(
            keep,
            y,
            origin=0,
            n_components=ex._K,
            priors=ex._priors,
            fused=ex.fused,
            depth=ex.depth,
            n_sweeps=ex._sweeps[0],
            burn_in=ex._sweeps[1],
            n_chains=ex._chains,
            alpha_prior=tuple(ex.alpha_prior),
            seed=np.random.SeedSequence([ex.seed + i, 1]),
        )
        out[i, :d] = {"coef": fit.coef, "contribution": fit.effect,
                      "path": fit.deletion_path()}[ex.attribution]
        fits.append(fit)
    rhat = np.array([f.rhat for f in fits])
    extras = {
        "mode": "local",
        "n_samples": ex.n_samples,
        "fit_r2": float(np.mean([f.r2 for f in fits])),
        # scalars: the median split R-hat and the mean ESS of the log-likelihood over inputs
        "rhat_loglik": float(np.nanmedian(rhat)) if np.isfinite(rhat).any() else float("nan"),
        "ess_loglik": float(np.mean([f.ess for f in fits])),
        "rhat_loglik_per_input": [round(f.rhat, 4) for f in fits],
        "ess_loglik_per_input": [round(f.ess, 2) for f in fits],
        "kept_draws_per_chain": ex._sweeps[0] - ex._sweeps[1],
        "share_of_own_component": [round(f.share, 4) for f in fits],
        "components_used": [round(f.n_used, 2) for f in fits],
        "tree_splits": [list(f.splits) for f in fits],
    }
    return out, np.zeros(len(x), dtype=np.int64), extras
