"""The demo job behind ``deepscope demo`` / ``make demo``.

It trains a small MNIST model twice on the MODE protocol split — once on healthy data and once on
data with an injected under-fitting bug (one label starved of training samples) — and writes a
self-contained HTML report that shows what the bug does to the model. Technique sections (MODE,
AmI, DMM-MEN) follow: MODE diagnoses and repairs the bug, DMM-MEN/LIME/KernelSHAP explain the buggy
model, and AmI vs feature squeezing detect adversarial faces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscope import data as ds_data
from deepscope._atomic import atomic_write
from deepscope import models
from deepscope.report import plots
from deepscope.report.html import HtmlReport
from deepscope.report.tables import html_table


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: the report path and the headline figures."""

    report: Path
    healthy_accuracy: float
    buggy_accuracy: float
    bug_label: int
    healthy_label_accuracy: float
    buggy_label_accuracy: float
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["report"] = str(self.report)
        return d


def _train(arch: str, train: ds_data.Dataset, val: ds_data.Dataset, cfg: DemoConfig,
           progress: bool) -> tuple[torch.nn.Module, list, float]:
    model = models.zoo.build(arch, num_classes=train.num_classes, seed=cfg.seed)
    history: list = []
    start = time.perf_counter()
    models.fit(model, train, epochs=cfg.epochs, seed=cfg.seed, val=val,
               batch_size=cfg.batch_size, history=history, progress=progress)
    return model, history, time.perf_counter() - start


def run_demo(out_dir: str | Path = "report", config: DemoConfig | None = None, *,
             progress: bool = True, log=print,
             detection_experiment: Callable[..., Any] | None = None) -> DemoResult:
    """Run the demo and write ``out_dir/index.html`` (+ ``summary.json``).

    ``detection_experiment`` computes the detection section (the CLI passes
    :func:`deepscope.audit.detection.detection_experiment`; ``report`` does not import
    ``audit``, its sibling layer); without it the section is left out.

    Parameters
    ----------
    out_dir : path
        Folder for the report; created if needed. An existing report there is replaced.
    config : DemoConfig, optional
        Dataset, architecture, bug and training settings.
    progress : bool
        Show progress bars.
    log : callable
        Receives one-line progress messages.

    Returns
    -------
    DemoResult
    """
    cfg = config or DemoConfig()
    out = Path(out_dir)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)

    log(f"loading {cfg.dataset} and splitting it by the MODE protocol (30/10/10/50)")
    full = ds_data.load(cfg.dataset, "all", progress=progress)
    split = ds_data.mode_split(full, seed=cfg.seed)
    buggy_train, recipe = models.bugs.underfit(split.train, cfg.bug_label, keep=cfg.bug_keep,
                                               seed=cfg.seed)
    label_name = full.classes[cfg.bug_label]

    log(f"training {cfg.arch} on healthy data ({len(split.train)} samples)")
    healthy, healthy_hist, healthy_s = _train(cfg.arch, split.train, split.validation, cfg,
                                              progress)
    log(f"training {cfg.arch} with the injected bug: {recipe.description}")
    buggy, buggy_hist, buggy_s = _train(cfg.arch, buggy_train, split.validation, cfg, progress)

    ev_h = models.evaluate(healthy, split.test)
    ev_b = models.evaluate(buggy, split.test)
    tr_b = models.evaluate(buggy, buggy_train)

    report = HtmlReport(
        "deepscope demo",
        subtitle=(f"{cfg.arch} on {cfg.dataset}: what an under-fitting bug on label "
                  f"{label_name!r} looks like from the outside"),
    )
    weights = models.zoo.count_parameters(healthy)
    setup = report.section("Setup", "The data, the model and the injected bug.")
    setup.add_html(html_table([
        {"item": "dataset", "value": f"{cfg.dataset} (train+test, {len(full)} images)"},
        {"item": f"split (MODE protocol, seed {cfg.seed})",
         "value": f"train {len(split.train)} / validation {len(split.validation)} / test "
                  f"{len(split.test)} / bug-fixing pool {len(split.pool)}"},
        {"item": "architecture", "value": f"{cfg.arch} ({weights:,} weights)"},
        {"item": "injected bug", "value": recipe.description},
        {"item": "training", "value": f"up to {cfg.epochs} epochs, early stopping on validation; "
                                      f"healthy {healthy_s:.0f} s, buggy {buggy_s:.0f} s"},
    ], floatfmt=".3g"))

    acc = report.section(
        "Per-label accuracy",
        "Test accuracy of each label for the healthy and the buggy model. The starved label "
        "(red) has a low accuracy on both its training and test data: an under-fitting bug.",
    )
    counts = buggy_train.class_counts()
    rows = []
    for i, name in enumerate(full.classes):
        rows.append({
            "label": name,
            "train samples (buggy)": int(counts[i]),
            "healthy test acc": f"{ev_h.per_label[i]:.1%}",
            "buggy train acc": f"{tr_b.per_label[i]:.1%}",
            "buggy test acc": f"{ev_b.per_label[i]:.1%}",
        })
    rows.append({"label": "all", "train samples (buggy)": int(counts.sum()),
                 "healthy test acc": f"{ev_h.accuracy:.1%}",
                 "buggy train acc": f"{tr_b.accuracy:.1%}",
                 "buggy test acc": f"{ev_b.accuracy:.1%}"})
    acc.add_html(html_table(rows, highlight={cfg.bug_label: "bug"}))
    acc.add_figure(
        plots.per_label_accuracy(ev_b.per_label, ev_b.classes, compare=ev_h.per_label,
                                 labels=("buggy model", "healthy model"),
                                 highlight=[cfg.bug_label]),
        "Per-label test accuracy: buggy model (blue, bug in red) beside the healthy model (grey).",
    )

    conf = report.section("Confusion matrices",
                          "Where each true label's test images go (rows sum to 100%).")
    conf.add_figure(plots.confusion_matrix(ev_b.confusion, ev_b.classes),
                    f"Buggy model: label {label_name} leaks into its look-alikes.")
    conf.add_figure(plots.confusion_matrix(ev_h.confusion, ev_h.classes), "Healthy model.")

    mis = report.section("Misclassified test images of the buggy label",
                         "What the buggy model gets wrong, with its predicted label.")
    idx = torch.nonzero(split.test.y == cfg.bug_label).flatten()
    pred = models.predict_logits(buggy, split.test.x[idx]).argmax(1)
    wrong = idx[pred != cfg.bug_label][:24]
    wrong_pred = pred[pred != cfg.bug_label][:24]
    if len(wrong):
        mis.add_figure(
            plots.image_grid(split.test.x[wrong].numpy(),
                             titles=[f"→ {full.classes[int(p)]}" for p in wrong_pred]),
            f"{int((pred != cfg.bug_label).sum())} of {len(idx)} test images of label "
            f"{label_name} are misclassified; the first {len(wrong)} are shown.",
        )
    else:
        mis.add_text("The buggy model classifies every test image of this label correctly.")

    extra: dict[str, Any] = {}
    if cfg.repair:
        from deepscope.debug import compare_strategies
        from deepscope.report.mode_section import add_mode_section

        log("MODE: diagnosing the buggy model, drawing heat maps and repairing it "
            "(MODE vs auto vs random)")
        comparison = compare_strategies(buggy, split, train=buggy_train, seed=cfg.seed,
                                        progress=progress)
        extra["mode"] = add_mode_section(report, comparison)

    log(f"explaining the buggy model's label-{label_name} decisions with DMM-MEN, LIME and "
        f"KernelSHAP")
    _explanation_section(report, buggy, split.test, cfg, label_name)

    if cfg.detection and detection_experiment is not None:
        from deepscope.report.detect_section import render_detect_section

        log("detecting adversarial faces: AmI vs feature squeezing on AT&T faces")
        detection = detection_experiment(seed=cfg.seed, progress=progress, log=log,
                                         epochs=cfg.detection_epochs)
        render_detect_section(report, detection)
        extra["detection"] = detection.to_dict()

    curves = report.section("Training", "Loss and validation accuracy per epoch.")
    curves.add_figure(plots.training_curve(buggy_hist), "Buggy model.")
    curves.add_figure(plots.training_curve(healthy_hist), "Healthy model.")

    existed = (out / "index.html").exists()
    path = report.write(out / "index.html")
    seconds = time.perf_counter() - t0
    result = DemoResult(
        report=path,
        healthy_accuracy=ev_h.accuracy,
        buggy_accuracy=ev_b.accuracy,
        bug_label=cfg.bug_label,
        healthy_label_accuracy=float(ev_h.per_label[cfg.bug_label]),
        buggy_label_accuracy=float(ev_b.per_label[cfg.bug_label]),
        seconds=seconds,
        extra={"config": cfg.to_dict(), "bug": recipe.to_dict(),
               "buggy_train_label_accuracy": float(tr_b.per_label[cfg.bug_label]),
               **extra},
    )
    with atomic_write(out / "summary.json", binary=False) as fh:
        fh.write(json.dumps(result.to_dict(), indent=2, default=_json_default))
    log(("replaced" if existed else "wrote") + f" {path} in {seconds:.0f} s")
    return result


def _explanation_section(report: HtmlReport, model: torch.nn.Module, test: ds_data.Dataset,
                         cfg: DemoConfig, label_name: str) -> None:
    """DMM-MEN, LIME and KernelSHAP overlays side by side for inputs of the buggy label."""
    from deepscope.explain import compare
    from deepscope.report import explanations as rx

    idx = compare.positives(model, test.x, test.y, cfg.bug_label, cfg.explain_inputs)
    x = test.x[idx]
    runs = compare.side_by_side(model, x, cfg.bug_label, seed=cfg.seed)
    sec = report.section(
        f"Why the buggy model says {label_name}",
        f"Black-box explanations of {len(x)} test images the buggy model correctly assigns to "
        f"label {label_name}: the top-{cfg.explain_k} 2×2-pixel cells (red) that push its "
        f"probability up. DMM-MEN fits one Bayesian mixture of elastic-net regressions on all "
        f"{len(x)} images; LIME and KernelSHAP fit a local model per image.",
    )
    sec.add_html(html_table(rx.top_feature_table(runs, cfg.explain_k)))
    sec.add_figure(rx.overlay_grid(runs, cfg.explain_k, n_show=4),
                   "Rows: inputs. Columns: the input, then each explainer's top cells.")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
