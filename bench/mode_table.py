"""MODE Table 1 on MNIST and Fashion-MNIST: repair injected bugs with six selection strategies.

Protocol (see bench/results/mode.md for the full text):

* split: :func:`deepscope.data.mode_split` of the whole dataset (70,000 images) with the run's
  seed: 30 % train, 10 % validation, 10 % test, 50 % bug-fixing pool;
* bug: injected into the 30 % train part with :mod:`deepscope.models.bugs` (parameters per cell
  below, calibrated on seed 0 so that the label's test accuracy lands in 70-80 %); the model is
  trained from scratch on it (``bench/mode_cells.py``);
* repair: :func:`deepscope.debug.repair` with each strategy, batch 2,000 ("500+1500"), the whole
  budget spent (``until_fixed=False``) so every round is on the accuracy-vs-samples curve; the
  Table-1 columns use the *stopping* protocol derived from that history: the first round whose
  validation label accuracy reaches the target (else the last round);
* every (cell, seed, strategy) result is stored in bench/results/mode.json as soon as it
  finishes; reruns skip finished results; the tables and plots are regenerated from the JSON.

    python -m bench.mode_table                       # everything (resumable)
    python -m bench.mode_table --models mlp-100k --datasets mnist --seeds 0,1
    python -m bench.mode_table --report-only         # tables + plots from the JSON
    python -m bench.mode_table --results /tmp/m.json ...   # another store (+ its .md, plots)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CACHE, RESULTS, set_threads, write_text
from bench.mode_cells import Cell, buggy_model, buggy_train, split_of
from deepscope import debug, models
from deepscope.data import stratified_split

JSON_PATH = RESULTS / "mode.json"
LOCK = CACHE / "mode" / "mode_json.lock"  # git-ignored


def _md_path() -> Path:
    return JSON_PATH.with_suffix(".md")


def _plots() -> Path:
    return JSON_PATH.parent / JSON_PATH.stem
STRATEGIES = ("random", "random-label", "failing", "deepgini", "mode", "auto")
BASELINES = ("random", "random-label", "failing", "deepgini")
LABEL = {"mnist": 5, "fashion-mnist": 7}  # digit 5 as in the seed; sneaker for Fashion
# bug parameters per (dataset, arch, kind), calibrated on seed 0 (python -m bench.mode_calibrate)
PARAMS: dict[tuple[str, str, str], tuple[tuple[str, Any], ...]] = {
    ("mnist", "mlp-100k", "underfit"): (("keep", 0.1),),
    ("mnist", "mlp-100k", "overfit"): (("keep", 0.6), ("narrow", "prototype")),
    ("mnist", "mlp-270k", "underfit"): (("keep", 0.1),),
    ("mnist", "mlp-270k", "overfit"): (("keep", 0.6), ("narrow", "prototype")),
    ("mnist", "cnn-8k", "underfit"): (("keep", 0.05),),
    ("mnist", "cnn-8k", "overfit"): (("keep", 0.25), ("narrow", "prototype")),
    ("mnist", "cnn-100k", "underfit"): (("keep", 0.05),),
    ("mnist", "cnn-100k", "overfit"): (("keep", 0.25), ("narrow", "prototype")),
    ("fashion-mnist", "mlp-100k", "underfit"): (("keep", 0.15),),
    ("fashion-mnist", "mlp-100k", "overfit"): (("keep", 0.6), ("narrow", "prototype")),
    ("fashion-mnist", "mlp-270k", "underfit"): (("keep", 0.15),),
    ("fashion-mnist", "mlp-270k", "overfit"): (("keep", 0.6), ("narrow", "prototype")),
    ("fashion-mnist", "cnn-8k", "underfit"): (("keep", 0.2),),
    ("fashion-mnist", "cnn-8k", "overfit"): (("keep", 0.45), ("narrow", "prototype")),
}
BUDGET = {"mlp-100k": 20000, "mlp-270k": 20000, "cnn-8k": 10000, "cnn-100k": 10000}
MODELS = ("mlp-100k", "mlp-270k", "cnn-8k", "cnn-100k")  # MLP cells first, CNNs last
DATASETS = ("mnist", "fashion-mnist")


def cells(models_: list[str], datasets: list[str], kinds: list[str]) -> list[Cell]:
    out = []
    for arch in models_:
        for ds in datasets:
            for kind in kinds:
                if (ds, arch, kind) in PARAMS:
                    out.append(Cell(ds, arch, kind, LABEL[ds], PARAMS[(ds, arch, kind)]))
    return out


def run_key(cell: Cell, seed: int, strategy: str) -> str:
    return f"{cell.key}/s{seed}/{strategy}"


@contextmanager
def locked_store():
    """Exclusive access to mode.json (several bench processes may share it)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            store = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {"runs": {}}
            yield store
            write_text(JSON_PATH, json.dumps(store, indent=1))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_store() -> dict[str, Any]:
    return json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {"runs": {}}


def run_cell_seed(cell: Cell, seed: int, strategies: list[str], done: set[str]) -> None:
    todo = [s for s in strategies if run_key(cell, seed, s) not in done]
    if not todo:
        return
    split = split_of(cell.dataset, seed)
    train, recipe = buggy_train(cell, seed)
    model, train_seconds = buggy_model(cell, seed)
    # half of the validation part decides "fixed"; the whole test part is reported
    val, _ = stratified_split(split.validation, [0.5, 0.5], seed=seed)
    ev_tr, ev_te = models.evaluate(model, train), models.evaluate(model, split.test)
    diag = debug.diagnose(model, train, split.test)
    found = diag.bug_for(cell.label)
    bug = debug.Bug(cell.label, cell.kind, float(ev_tr.per_label[cell.label]),
                    float(ev_te.per_label[cell.label]), "injected", 0.0)
    for strategy in todo:
        start = time.perf_counter()
        res = debug.repair(model, bug, split.pool, BUDGET[cell.arch], strategy=strategy,
                           seed=seed, train=train, validation=val, test=split.test,
                           until_fixed=False, progress=False)
        record = {
            "cell": cell.key, "dataset": cell.dataset, "arch": cell.arch, "kind": cell.kind,
            "label": cell.label, "params": dict(cell.params), "seed": seed,
            "strategy": strategy, "recipe": recipe.description,
            "weights": models.zoo.count_parameters(model),
            "buggy_train_seconds": train_seconds,
            "before": {"model_acc": ev_te.accuracy, "label_acc": float(ev_te.per_label[
                cell.label]), "label_train_acc": float(ev_tr.per_label[cell.label])},
            "diagnosed": None if found is None else found.kind,
            "seconds": time.perf_counter() - start, **res.to_dict(),
        }
        with locked_store() as store:
            store["runs"][run_key(cell, seed, strategy)] = record
        h = res.history
        print(f"{run_key(cell, seed, strategy)}: label {h[0].test_label_acc:.3f} → "
              f"{' '.join(f'{r.test_label_acc:.3f}' for r in h[1:])}; "
              f"{record['seconds']:.0f}s, cost ratio {res.cost_ratio:.3f}", flush=True)


# ---------------------------------------------------------------------------------------------
# report


def stop_round(rec: dict[str, Any]) -> dict[str, Any]:
    """The round where repair with until_fixed=True would have stopped."""
    for r in rec["history"]:
        if r["label_acc"] >= rec["target"]:
            return r
    return rec["history"][-1]


def at_samples(rec: dict[str, Any], n: int) -> dict[str, Any] | None:
    return next((r for r in rec["history"] if r["samples_used"] == n), None)


def ms(values: list[float], pct: bool = True, digits: int = 1) -> str:
    if not values:
        return "—"
    a = np.asarray(values, dtype=float) * (100 if pct else 1)
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    return f"{a.mean():.{digits}f} ± {sd:.{digits}f}"


def paired(rows: dict[int, float], base: dict[int, float]) -> tuple[float, float, int] | None:
    seeds = sorted(set(rows) & set(base))
    if not seeds:
        return None
    d = np.array([rows[s] - base[s] for s in seeds]) * 100
    return float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0, len(d)


def fmt_pair(p: tuple[float, float, int] | None) -> str:
    if p is None:
        return "—"
    mean, sd, n = p
    se = sd / math.sqrt(n) if n > 1 else float("nan")
    flag = " *" if n > 1 and abs(mean) > 2 * se else ""
    return f"{mean:+.1f} ± {sd:.1f}{flag}"


def plot_cell(key: str, recs: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for strategy in STRATEGIES:
        runs = [r for r in recs if r["strategy"] == strategy]
        if not runs:
            continue
        n = min(len(r["history"]) for r in runs)
        xs = [r["samples_used"] for r in runs[0]["history"][:n]]
        ys = np.array([[h["test_label_acc"] for h in r["history"][:n]] for r in runs]) * 100
        m, s = ys.mean(0), ys.std(0)
        ax.plot(xs, m, marker="o", ms=3, label=f"{strategy} (n={len(runs)})",
                lw=2.5 if strategy in ("mode", "auto") else 1.2)
        ax.fill_between(xs, m - s, m + s, alpha=0.12)
    ax.set_xlabel("pool samples added")
    ax.set_ylabel("buggy label test accuracy (%)")
    ax.set_title(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _plots().mkdir(parents=True, exist_ok=True)
    path = _plots() / (key.replace("/", "_") + ".png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def diagnosed(recs: list[dict[str, Any]]) -> str:
    """How many seeds' buggy models ``diagnose`` flagged with the injected bug kind."""
    per_seed = {r["seed"]: r["diagnosed"] == r["kind"] for r in recs}
    return f"{sum(per_seed.values())}/{len(per_seed)}"


def target_rows(agg, noise, macc, ratios, reach90) -> list[dict[str, str]]:
    """The issue's targets, evaluated on whatever results exist (never assumed)."""
    rows = []
    v = reach90.get("auto", [])
    if v:
        rows.append({"target": "auto lifts the label to >= 90 % within the budget",
                     "measured": f"{sum(v)}/{len(v)} runs", "met": str(all(v))})
    for metric in ("@2k", "mean"):
        for base in BASELINES:
            d = agg.get(("auto", f"{base} {metric}"))
            if not d:
                continue
            se = float(np.nanmean(noise[("auto", f"{base} {metric}")]))
            ok = np.mean(d) >= 2 and np.mean(d) > 2 * se
            rows.append({"target": f"auto beats {base} by >= 2 points ({metric}), beyond noise",
                         "measured": f"{np.mean(d):+.1f} points over {len(d)} cells "
                                     f"(seed s.e. {se:.1f})", "met": str(bool(ok))})
    for point in ("@2k", "end"):
        if ("auto", point) not in macc:
            continue
        best = max((float(np.mean(macc[(b, point)])), b) for b in BASELINES
                   if (b, point) in macc)
        mine = float(np.mean(macc[("auto", point)]))
        rows.append({"target": f"auto model accuracy >= best baseline's ({point})",
                     "measured": f"{100 * mine:.2f} % vs {best[1]} {100 * best[0]:.2f} %",
                     "met": str(mine >= best[0])})
    for strategy in ("auto", "mode"):
        if strategy in ratios:
            r = float(np.mean(ratios[strategy]))
            rows.append({"target": f"{strategy}: analysis + selection <= 10 % of fine-tuning",
                         "measured": f"{100 * r:.1f} % (mean over runs)", "met": str(r <= 0.1)})
    return rows


def report() -> str:
    from deepscope.report import markdown_table

    store = load_store()
    runs = list(store["runs"].values())
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_cell.setdefault(r["cell"], []).append(r)
    order = [c.key for c in cells(list(MODELS), list(DATASETS), ["underfit", "overfit"])]
    keys = [k for k in order if k in by_cell]
    table1, eq_rows, pair_rows, cost_rows = [], [], [], []
    agg: dict[tuple[str, str], list[float]] = {}
    noise: dict[tuple[str, str], list[float]] = {}
    macc: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {}
    reach90: dict[str, list[bool]] = {s: [] for s in STRATEGIES}
    plots = []
    for key in keys:
        recs = by_cell[key]
        first = recs[0]
        seeds = sorted({r["seed"] for r in recs})
        before = {r["seed"]: r["before"] for r in recs}
        row = {"dataset": first["dataset"], "model": first["arch"],
               "weights": f"{first['weights']:,}", "bug": first["kind"],
               "seeds": len(seeds),
               "MAcc before": ms([b["model_acc"] for b in before.values()]),
               "LAcc before": ms([b["label_acc"] for b in before.values()]),
               "diagnosed": diagnosed(recs)}
        eq = dict(row)
        budget = first["budget"]
        label_first: dict[str, dict[int, float]] = {}
        label_final: dict[str, dict[int, float]] = {}
        label_auc: dict[str, dict[int, float]] = {}
        model_final: dict[str, dict[int, float]] = {}
        for strategy in STRATEGIES:
            rs = [r for r in recs if r["strategy"] == strategy]
            if not rs:
                continue
            stops = [stop_round(r) for r in rs]
            fixed = sum(r["label_acc"] >= rec["target"] for r, rec in zip(stops, rs, strict=True))
            samples = [s["samples_used"] for s in stops]
            secs = [sum(h["seconds"] for h in rec["history"][: s["round"] + 1])
                    for s, rec in zip(stops, rs, strict=True)]
            row[f"{strategy} #samples"] = f"{np.median(samples):,.0f} ({fixed}/{len(rs)} fixed)"
            row[f"{strategy} time s"] = f"{np.mean(secs):.0f}"
            row[f"{strategy} MAcc"] = ms([s["test_model_acc"] for s in stops])
            row[f"{strategy} LAcc"] = ms([s["test_label_acc"] for s in stops])
            label_first[strategy] = {r["seed"]: r["history"][1]["test_label_acc"] for r in rs}
            label_final[strategy] = {r["seed"]: r["history"][-1]["test_label_acc"] for r in rs}
            label_auc[strategy] = {r["seed"]: float(np.mean([h["test_label_acc"]
                                                             for h in r["history"][1:]]))
                                   for r in rs}
            model_final[strategy] = {r["seed"]: r["history"][-1]["test_model_acc"] for r in rs}
            for point, rnd in (("@2k", 1), ("end", -1)):
                macc.setdefault((strategy, point), []).append(
                    float(np.mean([r["history"][rnd]["test_model_acc"] for r in rs])))
            ratios.setdefault(strategy, []).extend(r["cost_ratio"] for r in rs)
            eq[f"{strategy} @2k"] = ms(list(label_first[strategy].values()))
            eq[f"{strategy} mean"] = ms(list(label_auc[strategy].values()))
            eq[f"{strategy} @{budget // 1000}k"] = ms(list(label_final[strategy].values()))
            eq[f"{strategy} MAcc @{budget // 1000}k"] = ms(list(model_final[strategy].values()))
            reach90[strategy].extend(max(h["test_label_acc"] for h in r["history"]) >= 0.9
                                     for r in rs)
            cost_rows.append({"cell": key, "strategy": strategy,
                              "analysis s": f"{np.mean([r['analysis_seconds'] for r in rs]):.2f}",
                              "selection s": f"{np.mean([r['selection_seconds'] for r in rs]):.2f}",
                              "fine-tune s": f"{np.mean([r['train_seconds'] for r in rs]):.1f}",
                              "ratio": f"{np.mean([r['cost_ratio'] for r in rs]):.3f}"}
                             if strategy in ("mode", "auto") else None)
        cost_rows = [c for c in cost_rows if c]
        table1.append(row)
        eq_rows.append(eq)
        for strategy in STRATEGIES:
            if strategy not in label_first:
                continue
            pr = {"cell": key, "strategy": strategy}
            bases = BASELINES if strategy == "auto" else ("random", "random-label")
            for base in bases:
                if base == strategy or base not in label_first:
                    continue
                for metric, table in (("@2k", label_first), ("mean", label_auc)):
                    p = paired(table[strategy], table[base])
                    pr[f"vs {base} {metric}"] = fmt_pair(p)
                    if p:
                        agg.setdefault((strategy, f"{base} {metric}"), []).append(p[0])
                        noise.setdefault((strategy, f"{base} {metric}"), []).append(
                            p[1] / math.sqrt(p[2]) if p[2] > 1 else float("nan"))
            pair_rows.append(pr)
        plots.append(plot_cell(key, recs))
    agg_rows = [{"strategy": s, "vs": b, "cells": len(v), "mean paired diff (points)":
                 f"{np.mean(v):+.1f}", "mean seed noise (s.e.)":
                 f"{np.nanmean(noise[(s, b)]):.1f}", "min": f"{np.min(v):+.1f}",
                 "max": f"{np.max(v):+.1f}"}
                for (s, b), v in sorted(agg.items())]
    targets = target_rows(agg, noise, macc, ratios, reach90)
    reach_rows = [{"strategy": s, "runs reaching >= 90% label test acc": f"{sum(v)}/{len(v)}"}
                  for s, v in reach90.items() if v]
    text = [
        "# MODE Table 1 (deepscope reproduction)\n",
        "Produced by `python -m bench.mode_table` (resumable; results in "
        "`bench/results/mode.json`, regenerate with `--report-only`).\n",
        PROTOCOL,
        "## Table 1 — stopping protocol\n",
        "Per strategy: pool samples used until the validation label accuracy first reached "
        "the target (median over seeds; `k/n fixed` = seeds that reached it within the budget, "
        "otherwise the whole budget counts), wall time to that round (s), and the model and "
        "label **test** accuracy at that round (mean ± std over seeds, %).\n",
        markdown_table(table1),
        "\n## Equal budget — buggy-label test accuracy (%)\n",
        "`@2k`: after the first round (2,000 samples = 500 selected + 1,500 random); `mean`: "
        "mean over all rounds (area under the accuracy-vs-samples curve); last column: the "
        "whole budget. MAcc: model test accuracy at the whole budget.\n",
        markdown_table(eq_rows),
        "\n## Paired differences (points of label test accuracy, mean ± std over seeds)\n",
        "Paired by seed (same split, same buggy model). `*`: |mean| > 2 standard errors.\n",
        markdown_table(pair_rows),
        "\n### Averaged over cells\n",
        markdown_table(agg_rows),
        "\n" + markdown_table(reach_rows),
        "\n## Targets of the issue, as measured\n",
        markdown_table(targets),
        "\n## Cost: analysis + selection vs fine-tuning (mean seconds per repair)\n",
        markdown_table(cost_rows),
        "\n## Accuracy-vs-samples plots\n",
        "\n".join(f"- `{_shown(p)}`" for p in plots),
        "",
    ]
    out = "\n".join(text)
    write_text(_md_path(), out)
    return out


def _shown(path: Path) -> Path:
    try:
        return path.relative_to(RESULTS.parent)
    except ValueError:
        return path


PROTOCOL = """## Protocol
- Data: MODE split of the whole dataset (official train + test, 70,000 images) per seed:
  30 % train / 10 % validation / 10 % test / 50 % pool (`deepscope.data.mode_split`).
- Bugs (label 5 on MNIST, label 7 "sneaker" on Fashion-MNIST), injected into the train part:
  under-fitting = keep a random share of the label's samples (`bugs.underfit`); over-fitting =
  keep only the share nearest one prototype / anchor (`bugs.overfit`). Shares per cell were
  calibrated on seed 0 (`python -m bench.mode_calibrate`) so that the label's test accuracy lands in
  70–80 %; the "before" columns show where each cell really landed over the seeds.
- Buggy model: the zoo architecture trained from scratch on the buggy train part (Adam,
  lr 2e-3, cosine, early stopping on validation; `bench/mode_cells.py`).
- Repair (`deepscope.debug.repair`): rounds of 2,000 pool samples (500 chosen by the strategy +
  1,500 uniformly random: the seed's "500+1500"), each followed by one epoch of fine-tuning
  (Adam, lr 5e-4) on the new samples plus an equal-size replay from train ∪ earlier picks.
  Budget 20,000 samples for the MLPs, 10,000 for the CNNs (CPU time). The target ("fixed") is
  the mean validation accuracy of the other labels before repair minus 3 points; it is judged
  on half of the validation part, never on the test part.
- Strategies: see `deepscope/debug/selection.py`. `mode` is the seed's method, unmodified:
  `score = V · DHM` over the whole pool (UF: z-scored UF(1) + UF(2) with its sign flipped;
  OF: the OF DHM) at the automatically chosen layer.
- Why `auto` is what it is (`python -m bench.mode_ablation underfit 0,1`, MNIST mlp-100k, 2 seeds,
  label test accuracy after the first round / mean over the 10 rounds / cost ratio):
  random-label 94.4 / 93.8 / 0.002; A = unsure-about-L under the original model + cluster
  round-robin 97.0 / 92.9 / 0.173; **B = the same, recomputed under the model being repaired
  each round (adopted)** 97.0 / 93.1 / 0.092; C = B for half, uniform-over-L for the other
  half 96.7 / 93.0 / 0.075; D = B on a 3x candidate subset 96.4 / 93.2 / 0.039. B is the best
  first round at a lower cost than A; none of the variants beats random-label on the mean
  over all rounds (see the findings below).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--kinds", default="underfit,overfit")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--results", type=Path, default=None,
                        help="the JSON store (default bench/results/mode.json; its .md and "
                             "plot folder go next to it)")
    args = parser.parse_args()
    global JSON_PATH
    if args.results is not None:
        JSON_PATH = args.results.resolve()
    set_threads()
    if not args.report_only:
        seeds = [int(s) for s in args.seeds.split(",")]
        todo = cells(args.models.split(","), args.datasets.split(","), args.kinds.split(","))
        for cell in todo:
            for seed in seeds:
                done = set(load_store()["runs"])
                run_cell_seed(cell, seed, args.strategies.split(","), done)
            report()
    print(report())


if __name__ == "__main__":
    main()
