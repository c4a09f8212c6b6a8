"""MODE comparison runner: diagnose a model, analyse its bug once, repair it with several
strategies at the same budget. The result is a :class:`StrategyComparison` (``to_dict``,
``save`` / ``load``); :mod:`deepscope.report.mode_section` only renders it.

>>> from deepscope.debug import compare_strategies
>>> cmp = compare_strategies(model, split, strategies=("mode", "auto", "random"),
...                          budget=4000, seed=0)                      # doctest: +SKIP
>>> cmp.results["auto"].history[-1].test_label_acc                     # doctest: +SKIP

Every strategy spends the whole ``budget`` (``until_fixed=False``) so the curves are comparable,
and all of them reuse the one :class:`~deepscope.debug.analysis.PoolAnalysis` (whose feature
models, label heat maps and DHMs the comparison keeps). Nothing touches the global RNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from deepscope._jsonable import to_jsonable
from deepscope._persist import subarrays
from deepscope.data import Dataset, ModeSplit
from deepscope.debug import heatmaps
from deepscope.debug.analysis import PoolAnalysis
from deepscope.debug.diagnosis import Bug, Diagnosis, diagnose
from deepscope.debug.repair import repair
from deepscope.debug.repair_result import RepairResult
from deepscope.protocol import Persistent

__all__ = ["StrategyComparison", "compare_strategies"]


@dataclass(frozen=True, eq=False)
class StrategyComparison(Persistent):
    """A diagnosis, the analysis of the repaired bug and one repair per strategy.

    ``save(path)`` keeps everything, the repaired weights of every strategy included;
    ``StrategyComparison.load(path, model)`` needs a model of the same architecture.

    Attributes
    ----------
    diagnosis : Diagnosis
    bug : Bug or None
        The bug repaired (``None``: no bug found, nothing else is filled in).
    layer : str or None
        The analysed layer; ``shape`` its per-sample output shape.
    layer_accuracy : dict
        Feature-model accuracy per hidden layer.
    label_heatmaps : K×D array or None
    dhms : dict
        Name → :class:`~deepscope.debug.heatmaps.DHM` of the bug.
    analysis : dict
        The analysis summary (:meth:`PoolAnalysis.to_dict`).
    results : dict
        Strategy → :class:`~deepscope.debug.repair_result.RepairResult`.
    """

    _format = "mode-comparison"

    diagnosis: Diagnosis
    bug: Bug | None
    layer: str | None = None
    shape: tuple[int, ...] = ()
    layer_accuracy: dict[str, float] = field(default_factory=dict)
    label_heatmaps: np.ndarray | None = None
    dhms: dict[str, heatmaps.DHM] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)
    results: dict[str, RepairResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary: diagnosis, bug, analysis and per-strategy repair results."""
        if self.bug is None:
            return {"diagnosis": self.diagnosis.to_dict(), "bug": None}
        return to_jsonable({"diagnosis": self.diagnosis.to_dict(), "bug": self.bug.to_dict(),
                            "analysis": self.analysis,
                            "repair": {n: r.to_dict() for n, r in self.results.items()}})

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        d_meta, d_arrays = self.diagnosis._get_state()
        meta: dict[str, Any] = {"diagnosis": d_meta, "bug": self.bug and self.bug.to_dict(),
                                "layer": self.layer, "shape": list(self.shape),
                                "layer_accuracy": self.layer_accuracy,
                                "analysis": self.analysis, "results": {},
                                "dhms": {k: {"sign": d.sign, "subset_sizes": d.subset_sizes}
                                         for k, d in self.dhms.items()}}
        arrays: dict[str, Any] = {f"diagnosis/{k}": v for k, v in d_arrays.items()}
        if self.label_heatmaps is not None:
            arrays["label_heatmaps"] = self.label_heatmaps
        arrays.update({f"dhm/{k}": d.vector for k, d in self.dhms.items()})
        for name, res in self.results.items():
            r_meta, r_arrays = res._get_state()
            meta["results"][name] = r_meta
            arrays.update({f"result/{name}/{k}": v for k, v in r_arrays.items()})
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    model: nn.Module | None = None) -> StrategyComparison:
        part = partial(subarrays, arrays)
        results = {name: RepairResult._from_state(r_meta, part(f"result/{name}/"), model)
                   for name, r_meta in meta["results"].items()}
        dhms = {k: heatmaps.DHM(k, arrays[f"dhm/{k}"], float(d["sign"]), dict(d["subset_sizes"]))
                for k, d in meta["dhms"].items()}
        return cls(diagnosis=Diagnosis._from_state(meta["diagnosis"], part("diagnosis/")),
                   bug=Bug(**meta["bug"]) if meta["bug"] else None, layer=meta["layer"],
                   shape=tuple(meta["shape"]), layer_accuracy=dict(meta["layer_accuracy"]),
                   label_heatmaps=arrays.get("label_heatmaps"), dhms=dhms,
                   analysis=meta["analysis"], results=results)


def _concat(a: Dataset, b: Dataset) -> Dataset:
    return Dataset(x=torch.cat([a.x, b.x]), y=torch.cat([a.y, b.y]), classes=a.classes,
                   name=a.name, split="analysis")


def _choose_bug(diag: Diagnosis, bug: Bug | None, label: int | None, kind: str | None
                ) -> Bug | None:
    """The given bug, the diagnosed one on ``label``, a caller-chosen one, or the worst."""
    if bug is not None:
        return bug
    if label is None:
        return diag.bugs[0] if diag.bugs else None
    found = diag.bug_for(label)
    if found is not None and kind in (None, found.kind):
        return found
    return Bug(label, kind or "underfit", float(diag.train_per_label[label]),
               float(diag.test_per_label[label]), "chosen by the caller", 0.0)


def compare_strategies(model: nn.Module, split: ModeSplit, bug: Bug | None = None, *,
                       train: Dataset | None = None, label: int | None = None,
                       kind: str | None = None,
                       strategies: Sequence[str] = ("mode", "auto", "random"),
                       budget: int = 4000, batch: int = 2000, seed: int = 0,
                       progress: bool = False) -> StrategyComparison:
    """Diagnose ``model``, analyse its bug once and repair it with each of ``strategies``.

    Parameters
    ----------
    model : nn.Module
        The buggy model (never modified).
    split : ModeSplit
        Its MODE split: train (diagnosis, replay), validation, test, pool.
    bug : Bug, optional
        The bug to repair; default: the diagnosed one on ``label`` (of ``kind``), else the most
        severe diagnosed bug.
    train : Dataset, optional
        The data the model was trained on when it is not ``split.train`` (e.g. a buggy copy).
    strategies, budget, batch, seed, progress
        Repair settings shared by every strategy (``until_fixed=False``).

    Returns
    -------
    StrategyComparison
    """
    train = split.train if train is None else train
    diag = diagnose(model, train, split.test)
    chosen = _choose_bug(diag, bug, label, kind)
    if chosen is None:
        return StrategyComparison(diag, None)
    ctx = PoolAnalysis(model, chosen.label, chosen.kind, split.pool,
                       _concat(train, split.validation), seed=seed)
    ctx.dhm_scores()
    fm = ctx.features
    assert fm is not None
    results = {name: repair(model, chosen, split.pool, budget, strategy=name, seed=seed,
                            batch=batch, train=train, validation=split.validation,
                            test=split.test, until_fixed=False, progress=progress, context=ctx)
               for name in strategies}
    return StrategyComparison(diag, chosen, fm.layer_, tuple(fm.shape_), dict(fm.accuracy_),
                              ctx.label_heatmaps, dict(ctx.dhms), ctx.to_dict(), results)
