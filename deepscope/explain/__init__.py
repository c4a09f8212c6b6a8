"""Black-box explanations: DMM-MEN (Bayesian non-parametric mixture) and its baselines.

Every explainer follows ``fit(x, predict_proba, target=c)`` → ``explain(x)`` →
:class:`Explanation` (``top_features(k)``, ``feature_mask(k)``, ``to_dict()``), and perturbs
inputs through one shared :class:`FeatureSpace`. ``get(name, **params)`` builds one by its
registry name: ``dmm-men``, ``lime``, ``kernel-shap``, ``random``, ``integrated-gradients``.
Fidelity tests live in :mod:`deepscope.explain.fidelity`.
"""

from deepscope.explain import dmm_men as _dmm_men  # noqa: F401  (registers "dmm-men" first)
from deepscope.explain import fidelity
from deepscope.explain._overlay import plot_overlay
from deepscope.explain.base import (
    EXPLAINERS,
    BlackBox,
    Explainer,
    class_logit,
    get,
    model_proba,
    names,
)
from deepscope.explain.baselines import IntegratedGradients, KernelShap, Lime, RandomExplainer
from deepscope.explain.dmm_men import DMMMEN
from deepscope.explain.explanation import Explanation, load_npz, save_npz
from deepscope.explain.features import (
    BASELINES,
    FeatureSpace,
    GridSpace,
    PixelSpace,
    SuperpixelSpace,
    TabularSpace,
    fill_values,
)

__all__ = [
    "BASELINES",
    "DMMMEN",
    "EXPLAINERS",
    "BlackBox",
    "Explainer",
    "Explanation",
    "FeatureSpace",
    "GridSpace",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "PixelSpace",
    "RandomExplainer",
    "SuperpixelSpace",
    "TabularSpace",
    "class_logit",
    "fidelity",
    "fill_values",
    "get",
    "load_npz",
    "model_proba",
    "names",
    "plot_overlay",
    "save_npz",
]
