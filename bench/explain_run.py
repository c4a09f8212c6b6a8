"""Run every explainer of the benchmark on one setting and score it (no rendering here).

Explainers come from the registry (``explain.get``), each as a :class:`Row` of :func:`rows`:
at the *same query budget per explained input* (:data:`BUDGET`: 500 for sequences as LEMNA,
1,000 for images), plus LIME and KernelSHAP at their own defaults (5,000 samples for LIME on
sequences — its text default; 1,000 on images, the budget itself, so no second row —, shap's
``"auto"`` = 2F + 2048 coalitions), random features and a white-box reference (Integrated
Gradients; over the embedding for ids). DMM-MEN's configuration is the one table
:data:`DMM_MEN`.

Scores: sequences — LEMNA's tests (:func:`deepscope.explain.fidelity.sequence_test`, k in
5..25); images — the image tests (deduction to zero / mean / blur, augmentation, synthetic; k
in 5..40), each sample's success averaged over its generated inputs. Every cell is a share of
explained inputs with a bootstrap 95 % CI; DMM-MEN minus the better of LIME / KernelSHAP at
the same budget is a paired difference with its CI and a win / tie / loss verdict (a tie when
the CI contains 0).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.explain_settings import NOISE, Setting
from deepscope import explain
from deepscope.explain import DMMMEN, fidelity

BUDGET = {"bytes": 500, "text": 500, "image": 1000}
SEQUENCE_KS = fidelity.KS
IMAGE_KS = (5, 10, 20, 40)
IMAGE_TESTS = ("deduction-zero", "deduction-mean", "deduction-blur", "augmentation",
               "synthetic")
BASELINES = ("lime", "kernel-shap")  # the peers DMM-MEN has to beat, at the same budget
#: numeric extras of an explanation recorded (mean over the groups) beside the cost
DIAGNOSTICS = ("ess_loglik", "mh_accept_rate", "fit_r2", "seconds_per_sweep")
Log = Callable[[str], None]


def _dmm_local(budget: int) -> dict[str, Any]:
    return {"mode": "local", "n_samples": budget}


def _dmm_global(budget: int) -> dict[str, Any]:
    # NeurIPS'18: one mixture over the group's inputs and their perturbed copies; every input
    # costs its own query plus n_local perturbations = the budget
    return {"mode": "global", "n_local": budget - 1}


#: DMM-MEN's configuration at a budget — the one place to adjust it.
DMM_MEN: dict[str, Callable[[int], dict[str, Any]]] = {"local": _dmm_local,
                                                        "global": _dmm_global}


def default_dmm_mode() -> str:
    """``"local"`` when this DMM-MEN has a ``mode`` parameter, else ``"global"``."""
    return "local" if "mode" in inspect.signature(DMMMEN.__init__).parameters else "global"


@dataclass(frozen=True)
class Row:
    """One explainer row: registry name, parameters, budget kind."""

    name: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    budget: str = "equal"  # "equal", "default", "none" or "white box"


def rows(modality: str, dmm_mode: str) -> list[Row]:
    """The explainer rows of a setting (see the module docstring)."""
    budget = BUDGET[modality]
    quiet = {"progress": False, "seed": 0}
    out = [
        Row("dmm-men", "dmm-men", {**DMM_MEN[dmm_mode](budget), **quiet}),
        Row("lime", "lime", {"num_samples": budget, **quiet}),
        Row("kernel-shap", "kernel-shap", {"nsamples": budget, **quiet}),
        Row("random", "random", {"seed": 0}, "none"),
        Row("integrated-gradients", "integrated-gradients", {"n_steps": 50}, "white box"),
    ]
    if modality != "image":  # LIME's image default is the budget itself
        out.append(Row("lime (default)", "lime", quiet, "default"))
    out.append(Row("kernel-shap (default)", "kernel-shap", {"nsamples": "auto", **quiet},
                   "default"))
    return out


def explain_all(setting: Setting, row: Row, log: Log) -> tuple[list[explain.Explanation],
                                                                dict]:
    """Explain every group of ``setting`` with ``row``; return explanations and cost."""
    out, seconds, queries = [], 0.0, 0
    for g in setting.groups:
        params = dict(row.params)
        if row.budget == "white box":
            params["model"] = setting.model
        ex = explain.get(row.method, space=g.space(), **params)
        start = time.perf_counter()
        ex.fit(g.x, setting.proba, target=g.target)
        e = ex.explain(g.x)
        seconds += time.perf_counter() - start
        if row.budget == "white box":
            queries += int(e.extras["model_evaluations"])
        else:
            queries += ex.black_box_.queries - 1  # minus the target check
        out.append(e)
    n = setting.n_explained
    cost = {"seconds_per_explanation": seconds / n, "queries_per_explanation": queries / n,
            "budget": row.budget, "method": row.method,
            "params": {k: v for k, v in row.params.items() if k not in ("progress",)}}
    diag = {key: float(np.mean([e.extras[key] for e in out]))
            for key in DIAGNOSTICS if all(isinstance(e.extras.get(key), (int, float))
                                          for e in out)}
    if diag:
        cost["diagnostics"] = diag
    log(f"[{setting.key}] {row.name}: {seconds / n:.3f} s and {queries / n:.0f} queries "
        "per explanation")
    return out, cost


def _in_order(setting: Setting, parts: list[np.ndarray]) -> np.ndarray:
    values = np.zeros(setting.n_explained)
    for g, v in zip(setting.groups, parts, strict=True):
        values[g.index] = v
    return values


def sequence_scores(setting: Setting, exps: list[explain.Explanation]
                    ) -> dict[str, dict[int, np.ndarray]]:
    """Per LEMNA test and k: 1/0 per explained input (in the setting's order)."""
    out: dict[str, dict[int, np.ndarray]] = {}
    for test in fidelity.SEQUENCE_TESTS:
        out[test] = {}
        for k in SEQUENCE_KS:
            parts = [fidelity.sequence_test(test, setting.proba, g.x, e, k, target=g.target,
                                            negatives=g.negatives, seed=j).positive
                     for j, (g, e) in enumerate(zip(setting.groups, exps, strict=True))]
            out[test][k] = _in_order(setting, parts)
    return out


def _image_test(setting: Setting, g, e, test: str, k: int, seed: int) -> np.ndarray:
    kind, _, baseline = test.partition("-")
    kw: dict[str, Any] = {"seed": seed}
    if kind == "deduction":
        kw.update(baseline=baseline, reference=setting.reference)
    elif kind == "augmentation":
        kw.update(negatives=g.negatives, n_pairs=5)
    else:
        kw.update(n_noise=5, noise_range=NOISE)
    res = fidelity.generate(kind, setting.proba, g.x, e, k, g.target, **kw)
    hits = np.bincount(res.source, weights=res.success, minlength=len(g.x))
    return hits / np.maximum(np.bincount(res.source, minlength=len(g.x)), 1)


def image_scores(setting: Setting, exps: list[explain.Explanation]
                 ) -> dict[str, dict[int, np.ndarray]]:
    """Per image test and k: each input's share of successful generated inputs."""
    return {test: {k: _in_order(setting, [_image_test(setting, g, e, test, k, j)
                                          for j, (g, e) in enumerate(zip(setting.groups, exps,
                                                                         strict=True))])
                   for k in IMAGE_KS} for test in IMAGE_TESTS}


def lower_is_better(modality: str, test: str) -> bool:
    """Deduction in LEMNA's form (share still positive) is the one lower-is-better score."""
    return modality != "image" and fidelity.LOWER_IS_BETTER[test]


def _verdict(d: tuple[float, float, float], lower: bool) -> str:
    _, lo, hi = d
    if lower:
        lo, hi = -hi, -lo
    return "win" if lo > 0 else "loss" if hi < 0 else "tie"


def summarise(setting: Setting, scores: dict[str, dict[str, dict[int, np.ndarray]]]) -> dict:
    """Shares with CIs per cell, DMM-MEN minus the better baseline, verdicts."""
    cells: dict[str, dict[str, dict[str, list[float]]]] = {}
    paired: dict[str, dict[str, dict[str, Any]]] = {}
    first = next(iter(scores.values()))
    for test in first:
        lower = lower_is_better(setting.modality, test)
        cells[test], paired[test] = {}, {}
        for k in first[test]:
            cells[test][str(k)] = {name: list(fidelity.share_interval(s[test][k]))
                                   for name, s in scores.items()}
            if "dmm-men" not in scores or not all(b in scores for b in BASELINES):
                continue
            pick = min if lower else max
            best = pick(BASELINES, key=lambda b, t=test, kk=k: scores[b][t][kk].mean())
            d = fidelity.paired_difference(scores["dmm-men"][test][k], scores[best][test][k])
            paired[test][str(k)] = {"best": best, "diff": list(d),
                                    "verdict": _verdict(d, lower)}
    return {"cells": cells, "paired": paired,
            "lower_is_better": {t: lower_is_better(setting.modality, t) for t in first}}
