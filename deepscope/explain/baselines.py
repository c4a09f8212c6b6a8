"""Baseline explainers, one adapter module per peer (this module keeps the old import path).

* :class:`~deepscope.explain.lime_adapter.Lime` — the real ``lime`` package;
* :class:`~deepscope.explain.shap_adapter.KernelShap` — the real ``shap`` package;
* :class:`~deepscope.explain.random_features.RandomExplainer` — random attributions;
* :class:`~deepscope.explain.gradients.IntegratedGradients` — captum, white-box reference.

All of them perturb inputs through the same :class:`~deepscope.explain.features.FeatureSpace`
and the same fills as DMM-MEN, so their feature ids and "nullify" mean the same thing.
"""

# import order = registration order = the order of explain.names()
# isort: off
from deepscope.explain.lime_adapter import Lime
from deepscope.explain.shap_adapter import KernelShap
from deepscope.explain.random_features import RandomExplainer
from deepscope.explain.gradients import IntegratedGradients

# isort: on

__all__ = ["IntegratedGradients", "KernelShap", "Lime", "RandomExplainer"]
