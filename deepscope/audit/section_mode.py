"""Audit sections ``diagnosis`` and ``repair``: MODE on the user's model.

``diagnosis`` compares per-label accuracy on train-like data and on the held-out test role
(:func:`deepscope.debug.diagnose`), fits feature models per layer and draws the label heat maps
and the differential heat maps (DHMs) of the worst bug — or, when no label is buggy, of the
weakest label (said so in the summary). ``repair`` previews MODE's repair at a small budget:
``auto`` vs ``random`` selection from the pool role, label and model accuracy (test role) per
round. The repaired model is written only when ``AuditConfig.write_repaired`` names a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope.audit.inputs import AuditInputs
from deepscope.audit.result import SectionResult
from deepscope.audit.spec import AuditConfig, Costs, register_section
from deepscope.data import Dataset
from deepscope.debug import Bug, FeatureModels, PoolAnalysis, diagnose, given_bug, repair
from deepscope.errors import InputError
from deepscope.models import zoo

__all__ = ["diagnosis_section", "repair_section"]

#: Repair strategies compared in the preview, and its rounds.
STRATEGIES = ("auto", "random")
ROUNDS = 4
#: Largest repair budget of the preview (pool samples added), before scaling.
BUDGET = 2000
#: Analysis samples per feature-model fit, before scaling.
ANALYSIS_SAMPLES = 2000


def _concat(a: Dataset, b: Dataset) -> Dataset:
    return Dataset(x=torch.cat([a.x, b.x]), y=torch.cat([a.y, b.y]), classes=a.classes,
                   name=a.name, split="analysis")


def _needs_train(inputs: AuditInputs) -> str | None:
    if inputs.train is None:
        return "no train-like data (pass --train-data)"
    if inputs.data.num_classes < 2:
        return "the data has a single class"
    return None


def _chosen(inputs: AuditInputs, memo: dict[str, Any]) -> tuple[Any, Bug, bool]:
    """The diagnosis, the bug to analyse (or the weakest label) and whether it is a real bug."""
    if "diagnosis" not in memo:
        assert inputs.train is not None
        diag = diagnose(inputs.model, inputs.train, inputs.test)
        if diag.bugs:
            memo["bug"], memo["real_bug"] = diag.bugs[0], True
        else:
            label = int(np.nanargmin(diag.test_per_label))
            memo["bug"] = given_bug(inputs.model, inputs.train, inputs.test, label, "underfit",
                                    evidence="weakest label (no bug diagnosed)")
            memo["real_bug"] = False
        memo["diagnosis"] = diag
    return memo["diagnosis"], memo["bug"], memo["real_bug"]


def candidate_layers(model: torch.nn.Module) -> list[str]:
    """Hidden layers to fit feature models on: a zoo model's own list, else the top-level
    children that hold parameters, the last one (the output layer) left out."""
    if zoo.arch_of(model) is not None:
        return zoo.hidden_layers(model)
    named = [name for name, child in model.named_children()
             if any(True for _ in child.parameters())]
    return named[:-1]


def _analysis(inputs: AuditInputs, config: AuditConfig, memo: dict[str, Any], bug: Bug
              ) -> tuple[PoolAnalysis, dict[str, float]]:
    """The pool analysis of ``bug`` and the feature-model accuracy of every hidden layer."""
    if "analysis" not in memo:
        assert inputs.train is not None
        layers = candidate_layers(inputs.model)
        if not layers:
            raise InputError("the model has no hidden layer with parameters to analyse")
        analysis = _concat(inputs.train, inputs.validation)
        samples = config.count(ANALYSIS_SAMPLES, low=300)
        fm = FeatureModels(inputs.model, layers, seed=config.seed, max_samples=samples
                           ).fit(analysis)
        ctx = PoolAnalysis(inputs.model, bug.label, bug.kind, inputs.pool, analysis,
                           layer=fm.layer_, seed=config.seed, max_samples=samples)
        ctx.dhm_scores()
        memo["analysis"] = (ctx, dict(fm.accuracy_))
    return memo["analysis"]


def _estimate_diagnosis(inputs: AuditInputs, config: AuditConfig, costs: Costs) -> float:
    n_train = 0 if inputs.train is None else len(inputs.train)
    fits = 4 * config.count(ANALYSIS_SAMPLES, low=300) * costs.forward * 3
    return (n_train + len(inputs.test) + len(inputs.pool)) * costs.forward * 2 + fits + 2.0


def _bug_finding(bug: Bug, diag: Any, classes: tuple[str, ...], n_test: int) -> str:
    mean = float(np.nanmean(diag.test_per_label))
    name = classes[bug.label]
    if bug.kind == "underfit":
        return (f"Label {name!r} is under-fitted: {bug.test_acc:.0%} test accuracy "
                f"(n = {n_test:,} test samples in all) vs {mean:.0%} mean, and "
                f"{bug.train_acc:.0%} on train-like data.")
    return (f"Label {name!r} is over-fitted: {bug.train_acc:.0%} on train-like data vs "
            f"{bug.test_acc:.0%} test accuracy (n = {n_test:,} test samples in all).")


@register_section("diagnosis", "Diagnosis (MODE)", applies=_needs_train,
                  estimate=_estimate_diagnosis)
def diagnosis_section(inputs: AuditInputs, config: AuditConfig, memo: dict[str, Any]
                      ) -> SectionResult:
    """Per-label under/over-fitting bugs, feature-model accuracy per layer, heat maps, DHMs."""
    diag, bug, real = _chosen(inputs, memo)
    classes = inputs.classes
    summary: dict[str, Any] = {
        "bugs": [{**b.to_dict(), "name": classes[b.label]} for b in diag.bugs],
        "n_train": len(inputs.train) if inputs.train is not None else 0,
        "n_test": len(inputs.test), "train_source": inputs.train_source,
        "warning": inputs.warning, "analysed_label": bug.label,
        "analysed_name": classes[bug.label], "analysed_kind": bug.kind,
        "analysed_is_bug": real}
    arrays: dict[str, np.ndarray] = {"train_per_label": np.asarray(diag.train_per_label),
                                     "test_per_label": np.asarray(diag.test_per_label)}
    try:
        ctx, layer_accuracy = _analysis(inputs, config, memo, bug)
    except (RuntimeError, ValueError, NotImplementedError, InputError) as exc:
        # e.g. a compiled model whose layers cannot be hooked: the table still stands
        summary["analysis_error"] = (f"the feature models could not be fitted on this model "
                                     f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
    else:
        fm = ctx.features
        assert fm is not None
        summary.update(layer=fm.layer_, shape=list(fm.shape_),
                       analysis_samples=config.count(ANALYSIS_SAMPLES, low=300),
                       layer_accuracy=layer_accuracy,
                       dhm_subsets={k: d.subset_sizes for k, d in ctx.dhms.items()})
        if ctx.label_heatmaps is not None:
            arrays["label_heatmaps"] = np.asarray(ctx.label_heatmaps)
        arrays.update({f"dhm/{k}": np.asarray(d.vector) for k, d in ctx.dhms.items()})
    if real:
        finding = _bug_finding(bug, diag, classes, len(inputs.test))
        if len(diag.bugs) > 1:
            finding = finding[:-1] + f"; {len(diag.bugs) - 1} more bug(s) in the table."
    else:
        finding = (f"No label is under- or over-fitted by MODE's rule; the weakest label, "
                   f"{classes[bug.label]!r}, reaches {bug.test_acc:.0%} on the test role "
                   f"(n = {len(inputs.test):,} in all).")
    return SectionResult("diagnosis", "ok", finding, summary=summary, arrays=arrays)


def _budget(inputs: AuditInputs, config: AuditConfig) -> int:
    return min(config.count(BUDGET, low=ROUNDS * 10), len(inputs.pool))


def _estimate_repair(inputs: AuditInputs, config: AuditConfig, costs: Costs) -> float:
    budget = _budget(inputs, config)
    per_round = (2 * budget / ROUNDS) * costs.gradient + (len(inputs.validation)
                                                          + len(inputs.test)) * costs.forward
    return len(STRATEGIES) * ROUNDS * per_round + len(inputs.pool) * costs.forward * 2


def _applies_repair(inputs: AuditInputs) -> str | None:
    reason = _needs_train(inputs)
    if reason:
        return reason
    if len(inputs.pool) < ROUNDS * 10:
        return (f"the pool role has {len(inputs.pool)} samples; repair needs at least "
                f"{ROUNDS * 10}")
    return None


@register_section("repair", "Repair preview (MODE)", applies=_applies_repair,
                  estimate=_estimate_repair)
def repair_section(inputs: AuditInputs, config: AuditConfig, memo: dict[str, Any]
                   ) -> SectionResult:
    """``auto`` vs ``random`` repair of the diagnosed bug at a small budget, per round."""
    _, bug, real = _chosen(inputs, memo)
    if not real:
        return SectionResult.skipped("repair", "no bug was diagnosed, so there is nothing to "
                                               "repair")
    ctx, _ = _analysis(inputs, config, memo, bug)
    budget = _budget(inputs, config)
    batch = max(budget // ROUNDS, 1)
    results = {name: repair(inputs.model, bug, inputs.pool, budget, strategy=name,
                            seed=config.seed, batch=batch, train=inputs.train,
                            validation=inputs.validation, test=inputs.test, until_fixed=True,
                            progress=config.progress, context=ctx)
               for name in STRATEGIES}
    arrays: dict[str, np.ndarray] = {}
    rows = {}
    for name, res in results.items():
        hist = res.history
        arrays[f"{name}/samples"] = np.array([r.samples_used for r in hist])
        arrays[f"{name}/label_acc"] = np.array([r.test_label_acc for r in hist], dtype=float)
        arrays[f"{name}/model_acc"] = np.array([r.test_model_acc for r in hist], dtype=float)
        rows[name] = {"samples": res.samples_used, "label_before": hist[0].test_label_acc,
                      "label_after": hist[-1].test_label_acc,
                      "model_before": hist[0].test_model_acc,
                      "model_after": hist[-1].test_model_acc, "fixed": res.fixed,
                      "samples_to_fix": res.samples_to_fix,
                      "seconds": res.analysis_seconds + res.selection_seconds
                      + res.train_seconds}
    best = min(results, key=lambda k: _rank(rows[k]))
    summary: dict[str, Any] = {"label": bug.label, "name": inputs.classes[bug.label],
                               "kind": bug.kind, "budget": budget, "rounds": ROUNDS,
                               "n_test": len(inputs.test), "n_pool": len(inputs.pool),
                               "strategies": rows, "best": best}
    if config.write_repaired:
        summary["written"] = str(write_repaired(results[best].model, inputs,
                                                Path(config.write_repaired)))
    r = rows[best]
    others = "; ".join(f"{name}: {rows[name]['label_after']:.0%} with "
                       f"{rows[name]['samples']:,}" for name in rows if name != best)
    verb = "fixes" if r["fixed"] else "lifts"
    finding = (f"{best} repair {verb} label {inputs.classes[bug.label]!r}: "
               f"{r['label_before']:.0%} → {r['label_after']:.0%} test accuracy with "
               f"{r['samples']:,} pool samples (model {r['model_before']:.1%} → "
               f"{r['model_after']:.1%}; {others}; n = {len(inputs.test):,} test samples).")
    return SectionResult("repair", "ok", finding, summary=summary, arrays=arrays)


def _rank(row: dict[str, Any]) -> tuple[float, float]:
    """Order strategies as MODE does: fixed with the fewest samples first, then by the label
    accuracy they reached (repair stops once the label is fixed)."""
    if row["fixed"]:
        return (0.0, float(row["samples"]))
    return (1.0, -float(row["label_after"]))


def write_repaired(model: torch.nn.Module, inputs: AuditInputs, path: Path) -> Path:
    """Write the repaired model in the kind it came in (deepscope checkpoint, TorchScript, or
    a plain state dict), atomically; an existing file is refused."""
    from deepscope._atomic import atomic_write
    from deepscope.models import save_checkpoint

    if path.exists():
        raise InputError(f"{path} already exists; --write-repaired does not overwrite files")
    loaded = inputs.loaded
    ckpt = getattr(loaded, "checkpoint", None)
    if ckpt is not None:
        return save_checkpoint(path, model, arch=ckpt.arch, classes=ckpt.classes,
                               config=ckpt.config, metadata={"repaired_by": "deepscope audit"})
    with atomic_write(path) as fh:
        if getattr(loaded, "kind", None) == "torchscript":
            scripted = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.script(
                model)
            torch.jit.save(scripted, fh)
        else:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, fh)
    return path
