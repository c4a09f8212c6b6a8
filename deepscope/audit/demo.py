"""The demo's experiment: a healthy and a buggy MNIST model, and what the techniques see in them.

:func:`demo_experiment` trains a small model twice on the MODE protocol split — once on healthy
data and once on data with an injected under-fitting bug (one label starved of training
samples) — evaluates both, lets MODE diagnose and repair the bug, explains the buggy model's
decisions with DMM-MEN, LIME and KernelSHAP and (optionally) runs the detection experiment. It
returns a :class:`DemoExperiment`; ``report.demo`` renders it. No global random state is
touched: every step takes its own seed.

Example
-------
>>> from deepscope.audit.demo import DemoConfig, demo_experiment
>>> exp = demo_experiment(DemoConfig(epochs=2, repair=False, detection=False))  # doctest: +SKIP
>>> exp.buggy.per_label[exp.config.bug_label], exp.to_dict()["bug"]          # doctest: +SKIP
>>> exp.save("demo.npz"); DemoExperiment.load("demo.npz")                     # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch

from deepscope import data as ds_data
from deepscope import models
from deepscope._jsonable import to_jsonable
from deepscope._persist import subarrays
from deepscope.audit.demo_sequences import SequenceSettings, sequence_examples
from deepscope.audit.detection import DetectionExperiment, detection_experiment
from deepscope.audit.sequence_explain import SequenceExplanation
from deepscope.debug import StrategyComparison, compare_strategies
from deepscope.explain import compare
from deepscope.models import EpochStats, Evaluation
from deepscope.protocol import Persistent

__all__ = ["DemoConfig", "DemoExperiment", "demo_experiment"]

#: Misclassified test images of the buggy label kept for the report.
N_MISCLASSIFIED = 24


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo run (all have sensible, fast defaults)."""

    dataset: str = "mnist"
    arch: str = "mlp-100k"
    bug_label: int = 5
    bug_keep: float = 0.25
    epochs: int = 4
    seed: int = 0
    batch_size: int = 128
    explain_inputs: int = 30
    explain_k: int = 20
    repair: bool = True
    detection: bool = True
    detection_epochs: int | None = None  # None: face-cnn-26k's recommended settings
    sequences: bool = True  # a byte and a sentence explanation beside the image ones
    sequence_budget: int = 500

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class DemoExperiment(Persistent):
    """Everything the demo measured; ``report.demo.render_demo`` draws it.

    Attributes
    ----------
    config : DemoConfig
    classes : tuple of str
    n_images : int
        Images of the whole dataset (train + test) before the MODE split.
    split_sizes : dict
        ``{"train", "validation", "test", "pool"}`` → size.
    weights : int
        Parameters of the architecture.
    bug : dict
        The injected bug (:meth:`deepscope.models.bugs.InjectedBug.to_dict`).
    healthy, buggy : Evaluation
        Test-part evaluation of the healthy and the buggy model.
    buggy_train : Evaluation
        The buggy model on its own (buggy) training data.
    buggy_train_counts : ndarray
        Training samples per label after the bug was injected.
    misclassified : ndarray
        Up to 24 test images of the buggy label that the buggy model gets wrong, with
        ``misclassified_as`` (predicted labels); ``n_label`` test images of the label, of which
        ``n_wrong`` are wrong.
    history : dict
        ``{"healthy", "buggy"}`` → list of :class:`~deepscope.models.EpochStats`.
    mode : StrategyComparison or None
        MODE's diagnosis, analysis and repairs (``None`` when ``config.repair`` is off).
    explanations : Comparison or None
        DMM-MEN, LIME and KernelSHAP on correctly classified test images of the buggy label.
    sequence_explanations : tuple of SequenceExplanation
        A small byte tagger's function start and a small text model's sentence, explained
        (:mod:`deepscope.audit.demo_sequences`), with one caption each in
        ``sequence_captions``; ``sequence_notes`` says why one is missing.
    detection : DetectionExperiment or None
    seconds : dict
        Wall time of the steps.
    """

    _format: ClassVar[str] = "demo-experiment"

    config: DemoConfig
    classes: tuple[str, ...]
    n_images: int
    split_sizes: dict[str, int]
    weights: int
    bug: dict[str, Any]
    healthy: Evaluation
    buggy: Evaluation
    buggy_train: Evaluation
    buggy_train_counts: np.ndarray
    misclassified: np.ndarray
    misclassified_as: np.ndarray
    n_label: int
    n_wrong: int
    history: dict[str, list[EpochStats]]
    mode: StrategyComparison | None = None
    explanations: compare.Comparison | None = None
    detection: DetectionExperiment | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    sequence_explanations: tuple[SequenceExplanation, ...] = ()
    sequence_captions: tuple[str, ...] = ()
    sequence_notes: tuple[str, ...] = ()

    @property
    def label_name(self) -> str:
        """Name of the buggy label."""
        return self.classes[self.config.bug_label]

    def to_dict(self) -> dict[str, Any]:
        """The headline figures: accuracies, the bug, and each technique's summary."""
        label = self.config.bug_label
        out: dict[str, Any] = {
            "config": self.config.to_dict(), "bug": self.bug, "split_sizes": self.split_sizes,
            "healthy_accuracy": self.healthy.accuracy, "buggy_accuracy": self.buggy.accuracy,
            "bug_label": label,
            "healthy_label_accuracy": float(self.healthy.per_label[label]),
            "buggy_label_accuracy": float(self.buggy.per_label[label]),
            "buggy_train_label_accuracy": float(self.buggy_train.per_label[label]),
            "seconds": dict(self.seconds),
        }
        if self.mode is not None:
            out["mode"] = self.mode.to_dict()
        if self.explanations is not None:
            out["explanations"] = self.explanations.to_dict()
        if self.detection is not None:
            out["detection"] = self.detection.to_dict()
        if self.sequence_explanations or self.sequence_notes:
            out["sequence_explanations"] = [
                {"caption": c, **se.to_dict()}
                for se, c in zip(self.sequence_explanations, self.sequence_captions, strict=True)]
            out["sequence_notes"] = list(self.sequence_notes)
        return to_jsonable(out)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        meta: dict[str, Any] = {
            "config": self.config.to_dict(), "classes": list(self.classes),
            "n_images": self.n_images, "split_sizes": self.split_sizes, "weights": self.weights,
            "bug": self.bug, "n_label": self.n_label, "n_wrong": self.n_wrong,
            "history": {k: [s.to_dict() for s in v] for k, v in self.history.items()},
            "seconds": self.seconds, "evaluations": {}, "parts": {}}
        arrays: dict[str, Any] = {"buggy_train_counts": self.buggy_train_counts,
                                  "misclassified": self.misclassified,
                                  "misclassified_as": self.misclassified_as}
        for key in ("healthy", "buggy", "buggy_train"):
            ev: Evaluation = getattr(self, key)
            meta["evaluations"][key] = {"accuracy": ev.accuracy, "classes": list(ev.classes),
                                        "n": ev.n, "loss": ev.loss}
            arrays[f"eval/{key}/per_label"] = ev.per_label
            arrays[f"eval/{key}/confusion"] = ev.confusion
        for key in ("mode", "explanations", "detection"):
            part = getattr(self, key)
            if part is not None:
                p_meta, p_arrays = part._get_state()
                meta["parts"][key] = p_meta
                arrays.update({f"{key}/{k}": v for k, v in p_arrays.items()})
        meta["sequences"] = {"captions": list(self.sequence_captions),
                             "notes": list(self.sequence_notes), "parts": []}
        for i, se in enumerate(self.sequence_explanations):
            p_meta, p_arrays = se._get_state()
            meta["sequences"]["parts"].append(p_meta)
            arrays.update({f"sequence{i}/{k}": v for k, v in p_arrays.items()})
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    model: torch.nn.Module | None = None) -> DemoExperiment:
        """Rebuild; ``model`` (the buggy architecture) is needed only for a MODE part."""
        part = partial(subarrays, arrays)
        evals = {key: Evaluation(accuracy=float(e["accuracy"]),
                                 per_label=arrays[f"eval/{key}/per_label"],
                                 confusion=arrays[f"eval/{key}/confusion"],
                                 classes=tuple(e["classes"]), n=int(e["n"]), loss=float(e["loss"]))
                 for key, e in meta["evaluations"].items()}
        loaders: dict[str, Callable[..., Any]] = {
            "mode": lambda m, a: StrategyComparison._from_state(m, a, model),
            "explanations": compare.Comparison._from_state,
            "detection": DetectionExperiment._from_state}
        parts = {key: loaders[key](m, part(f"{key}/")) for key, m in meta["parts"].items()}
        seq = meta.get("sequences") or {"captions": [], "notes": [], "parts": []}
        parts["sequence_explanations"] = tuple(
            SequenceExplanation._from_state(m, part(f"sequence{i}/"))
            for i, m in enumerate(seq["parts"]))
        parts["sequence_captions"] = tuple(seq["captions"])
        parts["sequence_notes"] = tuple(seq["notes"])
        return cls(config=DemoConfig(**meta["config"]), classes=tuple(meta["classes"]),
                   n_images=int(meta["n_images"]), split_sizes=dict(meta["split_sizes"]),
                   weights=int(meta["weights"]), bug=dict(meta["bug"]),
                   buggy_train_counts=arrays["buggy_train_counts"],
                   misclassified=arrays["misclassified"],
                   misclassified_as=arrays["misclassified_as"], n_label=int(meta["n_label"]),
                   n_wrong=int(meta["n_wrong"]),
                   history={k: [EpochStats(**s) for s in v] for k, v in meta["history"].items()},
                   seconds=dict(meta["seconds"]), **evals, **parts)


def _train(cfg: DemoConfig, train: ds_data.Dataset, val: ds_data.Dataset, progress: bool
           ) -> tuple[torch.nn.Module, list[EpochStats], float]:
    model = models.zoo.build(cfg.arch, num_classes=train.num_classes, seed=cfg.seed)
    history: list[EpochStats] = []
    start = time.perf_counter()
    models.fit(model, train, epochs=cfg.epochs, seed=cfg.seed, val=val,
               batch_size=cfg.batch_size, history=history, progress=progress)
    return model, history, time.perf_counter() - start


def _misclassified(model: torch.nn.Module, test: ds_data.Dataset, label: int
                   ) -> tuple[np.ndarray, np.ndarray, int, int]:
    idx = torch.nonzero(test.y == label).flatten()
    pred = models.predict_logits(model, test.x[idx]).argmax(1)
    wrong = pred != label
    shown = idx[wrong][:N_MISCLASSIFIED]
    return (test.x[shown].numpy(), pred[wrong][:N_MISCLASSIFIED].numpy(), len(idx),
            int(wrong.sum()))


def _explain(model: torch.nn.Module, test: ds_data.Dataset, cfg: DemoConfig, progress: bool
             ) -> compare.Comparison:
    """DMM-MEN, LIME and KernelSHAP on test images the model assigns to the buggy label."""
    idx = compare.positives(model, test.x, test.y, cfg.bug_label, cfg.explain_inputs)
    return compare.side_by_side(model, test.x[idx], cfg.bug_label, seed=cfg.seed,
                                progress=progress)


def demo_experiment(config: DemoConfig | None = None, *, progress: bool = True,
                    log: Callable[[str], None] = print,
                    on_buggy: Callable[[torch.nn.Module, ds_data.Dataset, ds_data.ModeSplit],
                                       None] | None = None) -> DemoExperiment:
    """Run the demo's experiment (nothing is written).

    Parameters
    ----------
    config : DemoConfig, optional
        Dataset, architecture, bug and training settings; which sections to compute.
    progress : bool
        Show progress bars.
    log : callable
        Receives one-line messages, one per step.
    on_buggy : callable, optional
        ``on_buggy(model, buggy_train, split)`` once the buggy model is trained (e.g. to export
        it with :func:`deepscope.audit.demo_export.export_demo_model` for ``deepscope audit``).

    Returns
    -------
    DemoExperiment
    """
    cfg = config or DemoConfig()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    log(f"loading {cfg.dataset} and splitting it by the MODE protocol (30/10/10/50)")
    full = ds_data.load(cfg.dataset, "all", progress=progress)
    split = ds_data.mode_split(full, seed=cfg.seed)
    buggy_train, recipe = models.bugs.underfit(split.train, cfg.bug_label, keep=cfg.bug_keep,
                                               seed=cfg.seed)

    log(f"training {cfg.arch} on healthy data ({len(split.train)} samples)")
    healthy, healthy_hist, seconds["train_healthy"] = _train(cfg, split.train, split.validation,
                                                             progress)
    log(f"training {cfg.arch} with the injected bug: {recipe.description}")
    buggy, buggy_hist, seconds["train_buggy"] = _train(cfg, buggy_train, split.validation,
                                                       progress)
    mis, mis_as, n_label, n_wrong = _misclassified(buggy, split.test, cfg.bug_label)
    if on_buggy is not None:
        on_buggy(buggy, buggy_train, split)

    mode = None
    if cfg.repair:
        log("MODE: diagnosing the buggy model, drawing heat maps and repairing it "
            "(MODE vs auto vs random)")
        start = time.perf_counter()
        mode = compare_strategies(buggy, split, train=buggy_train, seed=cfg.seed,
                                  progress=progress)
        seconds["mode"] = time.perf_counter() - start

    label_name = full.classes[cfg.bug_label]
    log(f"explaining the buggy model's label-{label_name} decisions with DMM-MEN, LIME and "
        f"KernelSHAP")
    start = time.perf_counter()
    explanations = _explain(buggy, split.test, cfg, progress)
    seconds["explain"] = time.perf_counter() - start
    examples: list[tuple[SequenceExplanation, str]] = []
    notes: list[str] = []
    if cfg.sequences:
        start = time.perf_counter()
        examples, notes = sequence_examples(
            SequenceSettings(budget=cfg.sequence_budget, seed=cfg.seed), progress=progress,
            log=log)
        seconds["explain_sequences"] = time.perf_counter() - start

    detection = None
    if cfg.detection:
        log("detecting adversarial faces: AmI vs feature squeezing on AT&T faces")
        start = time.perf_counter()
        detection = detection_experiment(seed=cfg.seed, progress=progress, log=log,
                                         epochs=cfg.detection_epochs)
        seconds["detection"] = time.perf_counter() - start
    seconds["total"] = time.perf_counter() - t0

    return DemoExperiment(
        config=cfg, classes=tuple(full.classes), n_images=len(full),
        split_sizes={"train": len(split.train), "validation": len(split.validation),
                     "test": len(split.test), "pool": len(split.pool)},
        weights=models.zoo.count_parameters(healthy), bug=recipe.to_dict(),
        healthy=models.evaluate(healthy, split.test), buggy=models.evaluate(buggy, split.test),
        buggy_train=models.evaluate(buggy, buggy_train),
        buggy_train_counts=buggy_train.class_counts(),
        misclassified=mis, misclassified_as=mis_as, n_label=n_label, n_wrong=n_wrong,
        history={"healthy": healthy_hist, "buggy": buggy_hist}, mode=mode,
        explanations=explanations, detection=detection, seconds=seconds,
        sequence_explanations=tuple(se for se, _ in examples),
        sequence_captions=tuple(c for _, c in examples), sequence_notes=tuple(notes))
