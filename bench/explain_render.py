"""``explain.md`` from the benchmark's JSON (tables, verdicts, targets; pictures by file name)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench import explain_groundtruth
from bench.explain_pictures import disassemble

VERDICT_MARK = {"win": "**win**", "tie": "tie", "loss": "*loss*"}


def _cell(v: list[float]) -> str:
    return f"{v[0]:.3f} [{v[1]:.2f}, {v[2]:.2f}]"


def _cost_lines(st: dict) -> list[str]:
    lines = ["| explainer | budget | parameters | seconds / explanation | queries / explanation |",
             "| --- | --- | --- | ---: | ---: |"]
    for name, c in st["cost"].items():
        params = ", ".join(f"{k}={v}" for k, v in c["params"].items() if k != "seed")
        lines.append(f"| {name} | {c['budget']} | {params} | "
                     f"{c['seconds_per_explanation']:.3f} | {c['queries_per_explanation']:.0f} |")
    for name, c in st["cost"].items():
        if c.get("diagnostics"):
            lines.append(f"{name} diagnostics (mean over groups): " + ", ".join(
                f"{k} {v:.3g}" for k, v in c["diagnostics"].items()))
    return [*lines, ""]


def _test_lines(st: dict, test: str) -> list[str]:
    cells, paired = st["cells"][test], st["paired"].get(test, {})
    ks = list(cells)
    better = "lower" if st["lower_is_better"][test] else "higher"
    lines = [f"**{test}** ({better} is better; share of explained inputs, 95 % bootstrap CI)",
             "", "| explainer | " + " | ".join(f"k={k}" for k in ks) + " |",
             "| --- |" + " ---: |" * len(ks)]
    for name in cells[ks[0]]:
        lines.append(f"| {name} | " + " | ".join(_cell(cells[k][name]) for k in ks) + " |")
    shares = {cells[k][name][0] for k in ks for name in cells[k] if name != "random"}
    if len(shares) == 1:
        lines[0] += (f" — saturated: every explainer scores {shares.pop():.0f} at every k, so "
                     "this test does not separate them at these k")
    if paired:
        lines.append("| DMM-MEN − best of LIME/SHAP (paired) | " + " | ".join(
            f"{paired[k]['diff'][0]:+.3f} [{paired[k]['diff'][1]:+.2f}, "
            f"{paired[k]['diff'][2]:+.2f}] {VERDICT_MARK[paired[k]['verdict']]} "
            f"({paired[k]['best']})" for k in ks) + " |")
    return [*lines, ""]


def tally(st: dict) -> dict[str, int]:
    """Wins / ties / losses of DMM-MEN over the cells of a setting."""
    out = {"win": 0, "tie": 0, "loss": 0}
    for per_k in st["paired"].values():
        for cell in per_k.values():
            out[cell["verdict"]] += 1
    return out


def mean_advantage(st: dict) -> float:
    """DMM-MEN's mean advantage over the better baseline (sign: positive = DMM-MEN better)."""
    vals = [(-1 if st["lower_is_better"][t] else 1) * c["diff"][0]
            for t, per_k in st["paired"].items() for c in per_k.values()]
    return float(np.mean(vals)) if vals else float("nan")


def _picture_lines(st: dict, pictures: list[str]) -> list[str]:
    lines = [f"![{p}](explain/{p})" for p in pictures]
    record = st.get("picture_data", {})
    if record.get("modality") == "bytes":
        lines += ["", "Disassembly from each explained byte (x86-64, capstone):", ""]
        for i, it in enumerate(record["items"]):
            lines += [f"window {i}:", "```", *disassemble(it["x"], len(it["x"]) // 2), "```"]
    return [*lines, ""]


def _setting_lines(st: dict, pictures: list[str], missed: list[str]) -> list[str]:
    info = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in st["info"].items()
                     if k not in ("texts", "explained_at"))
    t = tally(st)
    lines = [f"## {st['key']}", "",
             f"{st['n_explained']} explained inputs; budget {st['budget']} queries per "
             f"explained input. {info}.", "",
             f"DMM-MEN vs the better of LIME / KernelSHAP at the same budget: {t['win']} wins, "
             f"{t['tie']} ties, {t['loss']} losses; mean advantage "
             f"{mean_advantage(st):+.3f} (positive = DMM-MEN more faithful).", ""]
    lines += _cost_lines(st)
    for test in st["cells"]:
        lines += _test_lines(st, test)
        for k, cell in st["paired"].get(test, {}).items():
            if cell["verdict"] == "loss":
                missed.append(f"{st['key']} {test} k={k}: DMM-MEN − {cell['best']} = "
                              f"{cell['diff'][0]:+.3f} [{cell['diff'][1]:+.2f}, "
                              f"{cell['diff'][2]:+.2f}]")
    return lines + _picture_lines(st, pictures)


def target_lines(results: dict[str, Any]) -> list[str]:
    """The issue's targets, each marked met / missed from the recorded numbers."""
    out = []
    for st in results["settings"].values():
        t, cost = tally(st), st["cost"]
        out.append(f"- {st['key']}: no loss at equal budget — "
                   f"{'met' if t['loss'] == 0 else 'missed'} ({t['loss']} losses)")
        if st["modality"] == "bytes":
            adv = mean_advantage(st)
            out.append(f"- {st['key']}: mean advantage over the better baseline >= 0.05 — "
                       f"{'met' if adv >= 0.05 else 'missed'} ({adv:+.3f})")
        if "dmm-men" not in cost:
            continue
        dmm = cost["dmm-men"]["seconds_per_explanation"]
        if "lime" in cost:
            lime = cost["lime"]["seconds_per_explanation"]
            out.append(f"- {st['key']}: DMM-MEN seconds <= LIME's at the same budget — "
                       f"{'met' if dmm <= lime else 'missed'} ({dmm:.3f} vs {lime:.3f} s)")
        if "kernel-shap (default)" in cost:
            ks = cost["kernel-shap (default)"]["seconds_per_explanation"]
            out.append(f"- {st['key']}: DMM-MEN seconds <= 0.1 × KernelSHAP at its default — "
                       f"{'met' if dmm <= 0.1 * ks else 'missed'} ({dmm / ks:.2f}×)")
    return out


def _groundtruth_lines(gt: dict) -> list[str]:
    lines = ["## Ground truth: piecewise-linear black box", "",
             "20 features in [0, 1], 3 regions chosen by feature 0, 3 relevant features per "
             "region (positive weights); ranking by |attribution|.", "",
             "| explainer | precision@3 | precision@5 | recall@5 | seconds |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for n, r in gt.items():
        lines.append(f"| {n} | {r['precision@3']:.3f} | {r['precision@5']:.3f} | "
                     f"{r['recall@5']:.3f} | {r['seconds']:.1f} |")
    return [*lines, ""]


def render(results: dict[str, Any], pictures: dict[str, list[str]]) -> str:
    """The whole ``explain.md``."""
    budgets = results["budgets"]
    lines = [
        "# Explanation fidelity and cost: DMM-MEN vs LIME vs KernelSHAP on bytes, text, images",
        "",
        f"Produced by `{results['command']}` in {results['seconds'] / 60:.1f} min. "
        f"{results['machine_note']}",
        "",
        f"DMM-MEN configuration: **{results['dmm_mode']}** mode ({results['dmm_note']}). Same "
        f"query budget per explained input for DMM-MEN, LIME and KernelSHAP: {budgets['bytes']} "
        f"for byte windows and sentences (LEMNA's 500), {budgets['image']} for images; LIME and "
        "KernelSHAP also at their own defaults (LIME: 5,000 samples for sequences, its image "
        "default is the 1,000 budget; shap `auto` = 2F + 2048). `random` = random features "
        "drawn among the same features; `integrated-gradients` is a white-box reference (for "
        "ids: over the embedding). Sequence tests are LEMNA's (deduction: top-k set to 0, share "
        "still positive, lower is better; augmentation: top-k copied into a negative, share "
        "turned positive; synthetic: all-zero input plus the top-k, share positive); image "
        "tests as before (all higher is better). Verdicts: paired bootstrap 95 % CI of DMM-MEN "
        "minus the better baseline of the cell; a tie when it contains 0.",
        "",
    ]
    missed: list[str] = []
    overall = {"win": 0, "tie": 0, "loss": 0}
    for key, st in results["settings"].items():
        lines += _setting_lines(st, pictures.get(key, []), missed)
        for v, c in tally(st).items():
            overall[v] += c
    gt = results.get("groundtruth")
    if gt is not None:
        lines += (explain_groundtruth.lines(gt) if "tables" in gt else _groundtruth_lines(gt))
    lines += ["## Summary and targets", "",
              f"Over all cells: {overall['win']} wins, {overall['tie']} ties, "
              f"{overall['loss']} losses of DMM-MEN against the better of LIME / KernelSHAP at "
              "equal budget.", "", "Targets of the issue (timings from a shared machine):", "",
              *target_lines(results),
              *(explain_groundtruth.target_lines(gt) if gt and "tables" in gt else []),
              "", "Losses (target: none):", ""]
    lines += [f"- {m}" for m in missed] or ["- none"]
    return "\n".join([*lines, ""])
