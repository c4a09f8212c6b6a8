"""Random features: the floor every fidelity test should beat."""

from __future__ import annotations

import numpy as np

from deepscope.explain.base import EXPLAINERS, Explainer
from deepscope.explain.features import FeatureSpace, n_features


@EXPLAINERS.register("random")
class RandomExplainer(Explainer):
    """Random features: i.i.d. standard normal attributions (a floor for every fidelity test).

    A black box like the others (``fit(x, predict_proba, target=c)``), although it only asks
    the black box for the target check.

    Parameters
    ----------
    space : FeatureSpace, optional
        Feature space (default 2×2 grid cells for images, columns for rows).
    seed : int
        Same seed, same attributions.
    """

    name = "random"

    def __init__(self, space: FeatureSpace | None = None, *, seed: int = 0) -> None:
        self._store(locals())

    def _explain(self, x: np.ndarray) -> tuple[np.ndarray, None, dict]:
        width = n_features(self.space_, x)
        rng = np.random.default_rng(self.seed)
        attr = rng.standard_normal((len(x), width))
        if not self.space_.shared:
            counts = self.space_.segments(x).reshape(len(x), -1).max(axis=1) + 1
            attr[np.arange(width)[None, :] >= counts[:, None]] = np.nan
        return attr, None, {}
