"""MODE: diagnose per-label under/over-fitting bugs and repair them by input selection.

>>> from deepscope.debug import diagnose, repair
>>> diag = diagnose(model, train, test)                                  # doctest: +SKIP
>>> result = repair(model, diag.bugs[0], pool, budget=20000, strategy="auto")  # doctest: +SKIP
"""

from deepscope.debug import heatmaps, selection
from deepscope.debug.diagnosis import Bug, Diagnosis, diagnose
from deepscope.debug.feature_models import FeatureModels, extract, fit_softmax
from deepscope.debug.repair import RepairResult, RepairRound, repair
from deepscope.debug.selection import STRATEGIES, PoolContext, select

__all__ = [
    "STRATEGIES",
    "Bug",
    "Diagnosis",
    "FeatureModels",
    "PoolContext",
    "RepairResult",
    "RepairRound",
    "diagnose",
    "extract",
    "fit_softmax",
    "heatmaps",
    "repair",
    "select",
    "selection",
]
