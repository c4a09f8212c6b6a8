"""MODE: diagnose per-label under/over-fitting bugs and repair them by input selection.

>>> from deepscope.debug import diagnose, repair, RepairConfig
>>> diag = diagnose(model, train, test)                                  # doctest: +SKIP
>>> result = repair(model, diag.bugs[0], pool, budget=20000, strategy="auto")  # doctest: +SKIP
>>> result = repair(model, diag.bugs[0], pool, config=RepairConfig(seed=1))    # doctest: +SKIP
>>> cmp = compare_strategies(model, split, diag.bugs[0], budget=4000)    # doctest: +SKIP
>>> res = patching_experiment(tagger, pool, replay, test, explain_fn)     # doctest: +SKIP
"""

from deepscope.debug import heatmaps, selection
from deepscope.debug.analysis import PoolAnalysis, PoolContext
from deepscope.debug.compare import StrategyComparison, compare_strategies
from deepscope.debug.diagnosis import Bug, Diagnosis, diagnose, given_bug
from deepscope.debug.feature_models import FeatureModels, extract, fit_softmax
from deepscope.debug.heldout import HeldOut, heldout_split
from deepscope.debug.patching import PatchSettings, patching_experiment
from deepscope.debug.patching_result import PatchingResult
from deepscope.debug.repair import RepairResult, RepairRound, repair
from deepscope.debug.repair_config import RepairConfig
from deepscope.debug.selection import STRATEGIES, SelectionContext, select

__all__ = [
    "STRATEGIES",
    "Bug",
    "Diagnosis",
    "FeatureModels",
    "HeldOut",
    "PatchSettings",
    "PatchingResult",
    "PoolAnalysis",
    "PoolContext",
    "RepairConfig",
    "RepairResult",
    "RepairRound",
    "SelectionContext",
    "StrategyComparison",
    "compare_strategies",
    "diagnose",
    "extract",
    "fit_softmax",
    "given_bug",
    "heatmaps",
    "heldout_split",
    "patching_experiment",
    "repair",
    "select",
    "selection",
]
