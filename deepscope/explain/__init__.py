"""Black-box explanations: DMM-MEN (Bayesian non-parametric mixture) and its baselines.

Every explainer follows ``fit(x, predict_proba, target=c)`` → ``explain(x)`` →
:class:`Explanation` (``top_features(k)``, ``feature_mask(k)``, ``to_dict()``,
``save(path)`` / ``Explanation.load(path)``), and perturbs inputs through one shared
:class:`FeatureSpace`. The black boxes get ``predict_proba`` in ``fit``; the white-box
:class:`IntegratedGradients` gets the torch model in its constructor. ``get(name, **params)``
builds one by its registry name (unknown parameters rejected): ``dmm-men``, ``lime``,
``kernel-shap``, ``random``, ``integrated-gradients``; ``get_params()`` lists an explainer's
parameters. Fidelity tests live in :mod:`deepscope.explain.fidelity`; several explainers on the
same inputs in :mod:`deepscope.explain.compare` (:func:`side_by_side` → :class:`Comparison`).
Token / byte sequences: :class:`SequenceSpace` (positions as features, int64 throughout) and
:mod:`deepscope.explain.sequence` (windows around a tagger's decision, ``tagger_proba``).
"""

from deepscope.explain import compare, fidelity, sequence
from deepscope.explain import dmm_men as _dmm_men  # noqa: F401  (registers "dmm-men" first)
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
from deepscope.explain.compare import Comparison, ExplainRun, side_by_side
from deepscope.explain.dmm_men import DMMMEN
from deepscope.explain.explanation import Explanation, load_npz, save_npz
from deepscope.explain.features import (
    BASELINES,
    FeatureSpace,
    GridSpace,
    PixelSpace,
    SequenceSpace,
    SuperpixelSpace,
    TabularSpace,
    fill_values,
)
from deepscope.explain.sequence import TaggerAt, tagger_proba, windows

__all__ = [
    "BASELINES",
    "DMMMEN",
    "EXPLAINERS",
    "BlackBox",
    "Comparison",
    "ExplainRun",
    "Explainer",
    "Explanation",
    "FeatureSpace",
    "GridSpace",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "PixelSpace",
    "RandomExplainer",
    "SequenceSpace",
    "SuperpixelSpace",
    "TabularSpace",
    "TaggerAt",
    "class_logit",
    "compare",
    "fidelity",
    "fill_values",
    "get",
    "load_npz",
    "model_proba",
    "names",
    "plot_overlay",
    "save_npz",
    "sequence",
    "side_by_side",
    "tagger_proba",
    "windows",
]
