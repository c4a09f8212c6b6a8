"""Rendering of ``deepscope audit``: ``DIR/index.html`` and ``DIR/summary.json``.

:func:`render_audit` draws an :class:`~deepscope.audit.result.AuditResult` (computed by
:class:`deepscope.audit.run.Audit`) as one self-contained page: every figure is an embedded
base64 PNG, no script, no external request; tables scroll inside their own box so the page
reads at 1280 px and on a narrow phone screen. Each section opens with its one-sentence finding;
a skipped section says why. Nothing here computes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from deepscope._atomic import atomic_write
from deepscope.report import audit_plots as ap
from deepscope.report import plots
from deepscope.report.html import HtmlReport, Section
from deepscope.report.mode_section import plot_dhms, plot_heatmaps
from deepscope.report.tables import html_table

if TYPE_CHECKING:  # report/ renders what audit/ computes, without importing it
    from deepscope.audit.result import AuditResult, SectionResult

__all__ = ["render_audit", "write_summary"]

TITLES = {"model": "Model card", "diagnosis": "Diagnosis (MODE)",
          "repair": "Repair preview (MODE)", "robustness": "Robustness to adversarial inputs",
          "detection": "Adversarial detection", "explanations": "Explanations (DMM-MEN vs LIME)"}


def _table(rows: list[dict[str, Any]], **kwargs: Any) -> str:
    return f'<div class="tbl">{html_table(rows, **kwargs)}</div>'


def _pct(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.1%}"


def _finding(sec: Section, res: SectionResult) -> None:
    css = "finding" if res.ok else "finding skipped"
    sec.add_html(f'<p class="{css}">{html.escape(res.finding)}</p>')


def _model(sec: Section, res: SectionResult, classes: list[str]) -> None:
    s = res.summary
    shape = "×".join(map(str, s.get("input_shape", [])))
    sec.add_html(_table([
        {"item": "file", "value": f"{s.get('path', '')} ({s.get('kind', '')})"},
        {"item": "architecture", "value": str(s.get("architecture"))},
        {"item": "parameters", "value": f"{s.get('parameters', 0):,}"},
        {"item": "input", "value": shape},
        {"item": "classes", "value": f"{len(classes)}: " + ", ".join(classes[:20])
         + (" …" if len(classes) > 20 else "")},
        {"item": "accuracy", "value": f"{s['accuracy']:.1%} (n = {s['n']:,} held-out samples)"},
    ]))
    per = s["per_label"]
    sec.add_html(_table([{"label": k, "accuracy": _pct(v["accuracy"]), "n": v["n"]}
                         for k, v in per.items()]))
    sec.add_figure(plots.per_label_accuracy(
        res.arrays["per_label"], classes,
        title=f"Per-label accuracy (n = {s['n']:,} held-out samples)"),
        "Accuracy of each true label on all held-out data.")
    sec.add_figure(plots.confusion_matrix(res.arrays["confusion"], classes),
                   "Rows: true label; columns: predicted label (% of the row).")
    if s.get("layers"):
        sec.add_html("<details><summary>Layers</summary>" + _table(s["layers"]) + "</details>")


def _diagnosis(sec: Section, res: SectionResult, classes: list[str]) -> None:
    s, a = res.summary, res.arrays
    bugs = {b["label"]: b["kind"] for b in s["bugs"]}
    rows = [{"label": c, "train-like acc": _pct(float(tr)), "test acc": _pct(float(te)),
             "bug": bugs.get(i, "")}
            for i, (c, tr, te) in enumerate(zip(classes, a["train_per_label"],
                                                a["test_per_label"], strict=True))]
    sec.add_text(f"Train-like data: {s['train_source']} (n = {s['n_train']:,}); test role "
                 f"n = {s['n_test']:,}.")
    sec.add_html(_table(rows, highlight={i: "bug" for i in bugs}))
    sec.add_figure(plots.per_label_accuracy(
        a["test_per_label"], classes, compare=a["train_per_label"],
        labels=("test role", "train-like"), highlight=list(bugs),
        title=f"Per-label accuracy: test (n = {s['n_test']:,}) vs train-like "
              f"(n = {s['n_train']:,})"),
        "Under-fitting: low on both; over-fitting: high on train-like data, low on test.")
    for b in s["bugs"]:
        sec.add_html(f'<p class="callout">Label <b>{html.escape(b["name"])}</b> — '
                     f'{html.escape(b["kind"])}: {html.escape(b["evidence"])}</p>')
    if "analysis_error" in s:
        sec.add_text("Heat maps not drawn: " + s["analysis_error"] + ".")
        return
    what = "bug" if s["analysed_is_bug"] else "weakest label (no bug)"
    sec.add_figure(ap.layer_accuracy(s["layer_accuracy"], s["layer"],
                                     n=s.get("analysis_samples", s["n_train"])),
                   f"The analysed layer ({s['layer']}) is where feature-model accuracy stops "
                   "improving.")
    shape = tuple(s["shape"])
    if "label_heatmaps" in a:
        fig = plot_heatmaps(a["label_heatmaps"], shape, classes,
                            highlight=s["analysed_label"])
        fig.suptitle(f"Label heat maps at {s['layer']}", fontsize=10)
        sec.add_figure(fig, "Feature-model weights per label (red +, blue −); ▶ marks the "
                            f"analysed {what}.")
    dhms = {k[4:]: SimpleNamespace(vector=v) for k, v in a.items() if k.startswith("dhm/")}
    if dhms:
        fig = plot_dhms(dhms, shape)
        fig.suptitle(f"Differential heat maps of label {s['analysed_name']} "
                     f"({s['analysed_kind']})", fontsize=10, y=1.06)
        sizes = "; ".join(f"{k.upper()}: " + (", ".join(f"{n} {name.replace('_', ' ')}"
                                                         for name, n in v.items())
                                              if v else "from the label heat maps")
                          for k, v in s.get("dhm_subsets", {}).items())
        sec.add_figure(fig, f"Features that separate the {what} from its look-alikes. "
                            f"Subsets: {sizes or 'label heat maps'}.")


def _repair(sec: Section, res: SectionResult, classes: list[str]) -> None:
    s, a = res.summary, res.arrays
    series = {name: {"samples": a[f"{name}/samples"], "label_acc": a[f"{name}/label_acc"],
                     "model_acc": a[f"{name}/model_acc"]} for name in s["strategies"]}
    sec.add_figure(ap.repair_rounds(series, s["name"], n_test=s["n_test"]),
                   f"{s['rounds']} rounds of {s['budget'] // s['rounds']:,} pool samples "
                   f"(pool n = {s['n_pool']:,}); fine-tuned copies, the model is not changed.")
    sec.add_html(_table([{"strategy": k, "samples": v["samples"],
                          "label acc before → after": f"{_pct(v['label_before'])} → "
                                                      f"{_pct(v['label_after'])}",
                          "model acc before → after": f"{_pct(v['model_before'])} → "
                                                      f"{_pct(v['model_after'])}",
                          "seconds": round(v["seconds"], 1)}
                         for k, v in s["strategies"].items()]))
    if s.get("written"):
        sec.add_text(f"Repaired model ({s['best']}) written to {s['written']}.")
    else:
        sec.add_text("No repaired model was written (pass --write-repaired FILE).")


def _robustness(sec: Section, res: SectionResult, classes: list[str]) -> None:
    s, a = res.summary, res.arrays
    curves = {"FGSM": a["fgsm"], f"BIM ({s['bim_steps']} steps)": a["bim"]}
    sec.add_figure(ap.accuracy_vs_eps(a["epsilons"], curves, n=s["n"]),
                   "Accuracy on the same test inputs as the L∞ budget grows (ε = 0: clean).")
    cw = s["cw_l2"]
    sec.add_figure(ap.cw_distances(a["cw_l2"], a["cw_success"]),
                   f"C&W L2 ({cw['settings']['steps']} steps × "
                   f"{cw['settings']['binary_search_steps']} searches, c₀ = "
                   f"{cw['settings']['initial_const']:g}, lr {cw['settings'].get('lr', 0.01):g}) on {cw['n']} correctly "
                   f"classified inputs: success {cw['success']}/{cw['n']}.")
    sec.add_html(_table([{"ε": f"{e:g}", "FGSM acc": _pct(float(f)), "BIM acc": _pct(float(b)),
                          "n": s["n"]}
                         for e, f, b in zip(a["epsilons"], a["fgsm"], a["bim"], strict=True)]))


def _detection(sec: Section, res: SectionResult, classes: list[str]) -> None:
    s = res.summary
    keys = ["fp", *s["attacks"]]
    rows = []
    for det, cells in s["counts"].items():
        row = {"detector": det}
        for k in keys:
            c = cells.get(k)
            name = "FP (correct benign)" if k == "fp" else k
            row[name] = "no successful attack" if not c else (
                f"{c['flagged'] / max(c['n'], 1):.0%} ({c['flagged']}/{c['n']})")
        rows.append(row)
    sec.add_html(_table(rows))
    if s["attacks"]:
        sec.add_figure(ap.detection_rates(s["counts"], keys),
                       "Share flagged: false positives on correctly classified benign test "
                       "inputs, detection on successful attacks only.")
    for why in (s.get("no_attacks_reason"), s.get("ami_reason")):
        if why:
            sec.add_text(f"Not measured: {why}.")


def _explanations(sec: Section, res: SectionResult, classes: list[str]) -> None:
    s, a = res.summary, res.arrays
    titles = [f"{'correct' if int(t) == int(p) else 'wrong'}: true {classes[int(t)]}"
              for t, p in zip(a["y"], a["pred"], strict=True)]
    masks = {k[5:]: v for k, v in a.items() if k.startswith("mask/")}
    sec.add_figure(ap.mask_grid(a["x"], masks, titles, k=s["k"]),
                   f"Inputs the model assigns to {s['name']}: {s['n_correct']} correct, "
                   f"{s['n_wrong']} wrong. Features are {s['cell']}×{s['cell']}-pixel cells; "
                   f"DMM-MEN is fitted on n = {s['n_fit']} inputs.")
    sec.add_html(_table([{"method": m, "seconds": round(v["seconds"], 2),
                          "queries": v["queries"] if v["queries"] is not None else "—"}
                         for m, v in s["methods"].items()]))


RENDERERS = {"model": _model, "diagnosis": _diagnosis, "repair": _repair,
             "robustness": _robustness, "detection": _detection,
             "explanations": _explanations}


def _overview(report: HtmlReport, result: AuditResult) -> None:
    sec = report.section("At a glance")
    warning = result.data.get("warning")
    if warning:
        sec.add_html(f'<p class="callout">About the data: {html.escape(warning)}.</p>')
    roles = result.data["roles"]
    sec.add_html(_table([{"section": TITLES.get(n, n), "finding": r.finding,
                          "time": f"{r.seconds:.0f} s (est. {r.estimate:.0f} s)" if r.ok
                          else "—"} for n, r in result.sections.items()]))
    sec.add_text(f"Data: n = {result.data['n']:,} held-out samples → test {roles['test']:,}, "
                 f"validation {roles['validation']:,}, repair pool {roles['pool']:,}; "
                 f"train-like: {result.data['train_source']} (n = {roles['train-like']:,}).")


def render_audit(result: AuditResult, out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/summary.json`` (atomically) for ``result``.

    Returns
    -------
    pathlib.Path
        The written ``index.html``.
    """
    out = Path(out_dir)
    classes = [str(c) for c in result.model.get("classes", [])]
    report = HtmlReport("deepscope audit",
                        subtitle=f"{result.model.get('path', '')} — "
                                 f"{result.model.get('architecture', '')}, "
                                 f"{result.model.get('parameters', 0):,} parameters")
    _overview(report, result)
    for name, res in result.sections.items():
        sec = report.section(TITLES.get(name, name))
        _finding(sec, res)
        if res.ok and name in RENDERERS:
            RENDERERS[name](sec, res, classes)
    path = report.write(out / "index.html")
    write_summary(result, out / "summary.json")
    return path


def write_summary(result: AuditResult, path: str | Path) -> Path:
    """``summary.json``: the machine-readable summary (:meth:`AuditResult.summary`)."""
    path = Path(path)
    with atomic_write(path, binary=False) as fh:
        fh.write(json.dumps(result.summary(), indent=2))
    return path
