"""DMM-MEN vs LIME vs KernelSHAP (+ K=1 ablation, random features, Integrated Gradients).

Seed setting: an MLP on MNIST and a CNN on Fashion-MNIST (zoo models from :mod:`bench.zoo`).
For each setting and each explained class, one run measures the three fidelity tests (deduction
with zero / mean / blur nullification, augmentation, synthetic) at k in {5, 10, 20, 40}, the
seconds and the black-box queries per explained sample, plus the ground-truth test on a
piecewise-linear black box. Output: ``bench/results/explain.json`` (the run), rendered into
``bench/results/explain.md`` and the PNGs under ``bench/results/explain/``.

    nohup .venv/bin/python -m bench.explain_table > bench/results/explain.log 2>&1 &
    .venv/bin/python -m bench.explain_table --report-only     # markdown + PNGs from the JSON

Protocol (all explainers share one 2×2-cell feature space, 196 features on 28×28, and the zero
fill for their own perturbations):
- classes: the ``--classes`` classes with the lowest *noise base rate* (share of uniform-noise
  images the model already assigns to the class), so that the synthetic test means something;
- positives: the first ``--n-explain`` test images the model assigns to the class. DMM-MEN fits
  once on all of them (with its local perturbations) and explains all of them: its cost per
  sample is (fit + explain) / n-explain. LIME / KernelSHAP / IG explain the first ``--n-eval``;
- fidelity is measured on the same first ``--n-eval`` positives for every explainer;
  augmentation uses 300 test images assigned to other classes (5 per positive), synthetic uses
  5 uniform-noise images (pixels in [0, 0.5]) per positive; the "mean" baseline is the mean of
  2,000 training images (all classes).
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import RESULTS, command, logger, require_data, set_threads, write_text
from bench.zoo import get_trained
from deepscope import data as ds_data
from deepscope import models
from deepscope.explain import (
    DMMMEN,
    Explanation,
    GridSpace,
    IntegratedGradients,
    KernelShap,
    Lime,
    RandomExplainer,
    fidelity,
    model_proba,
    plot_overlay,
)
from deepscope.explain.groundtruth import piecewise_linear, precision_recall

KS = (5, 10, 20, 40)
TESTS = ("deduction-zero", "deduction-mean", "deduction-blur", "augmentation", "synthetic")
SETTINGS = (("mnist", "mlp-100k"), ("fashion-mnist", "cnn-100k"))
NOISE = (0.0, 0.5)  # uniform noise of the synthetic test (and of the base rate)
PICTURE_K = 20
OUT = RESULTS
JSON_PATH = OUT / "explain.json"
Log = Callable[[str], None]


# -- run -------------------------------------------------------------------------------------
def _fidelity_row(proba, xe, e, c, neg, ref) -> dict:
    row = {}
    for k in KS:
        vals = {}
        for b in ("zero", "mean", "blur"):
            vals[f"deduction-{b}"] = fidelity.deduction(
                proba, xe, e, k, target=c, baseline=b, reference=ref
            )
        vals["augmentation"] = fidelity.augmentation(
            proba, xe, e, k, target=c, negatives=neg, n_pairs=5, seed=0
        )
        vals["synthetic"] = fidelity.synthetic(
            proba, xe, e, k, target=c, n_noise=5, noise_range=NOISE, seed=0
        )
        row[k] = vals
    return row


def _pack(images: np.ndarray) -> dict:
    """Images in [0, 1] as 8-bit grey levels, base64-encoded (what the pictures show)."""
    arr = np.clip(np.round(np.asarray(images, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return {"shape": list(arr.shape), "uint8_b64": base64.b64encode(arr.tobytes()).decode()}


def _unpack(packed: dict) -> np.ndarray:
    raw = base64.b64decode(packed["uint8_b64"])
    return np.frombuffer(raw, dtype=np.uint8).reshape(packed["shape"]).astype(np.float32) / 255


def _picture_data(x, exps, proba, c, neg) -> dict:
    """What the two pictures of a setting show: inputs, top features, generated inputs."""
    n = min(4, len(x))
    methods = [m for m in ("dmm-men", "lime", "kernel-shap") if m in exps]
    e = exps["dmm-men"]
    gens = [
        fidelity.generate("deduction", proba, x, e, PICTURE_K, c),
        fidelity.generate("augmentation", proba, x, e, PICTURE_K, c, negatives=neg, n_pairs=1),
        fidelity.generate("synthetic", proba, x, e, PICTURE_K, c, n_noise=1, noise_range=NOISE),
    ]
    return {
        "x": _pack(x[:n]),
        "segments": e.segments.tolist(),
        "input_shape": list(e.input_shape),
        "target": int(c),
        "top": {m: exps[m][:n].top_features(PICTURE_K).tolist() for m in methods},
        "generated": [{"test": g.test, "images": _pack(g.generated[:6]),
                       "success": [bool(s) for s in g.success[:6]]} for g in gens],
    }


def _model_stats(model, dataset: str, args, log: Log) -> dict:
    """Test predictions, accuracy, noise base rate and the explained classes."""
    test = ds_data.load(dataset, "test")
    train = ds_data.load(dataset, "train")
    x_test = np.asarray(test.x, dtype=np.float32)
    pred = models.predict_logits(model, torch.as_tensor(x_test)).argmax(dim=1).numpy()
    acc = float((pred == np.asarray(test.y)).mean())
    noise = np.random.default_rng(0).uniform(*NOISE, size=(1000, *x_test.shape[1:]))
    noise_pred = models.predict_logits(model, torch.as_tensor(noise.astype(np.float32)))
    base_rate = np.bincount(noise_pred.argmax(dim=1).numpy(), minlength=10) / 1000
    classes = [int(c) for c in np.argsort(base_rate, kind="stable")[: args.classes]]
    log(f"[{dataset}] test acc {acc:.4f}; noise base rate {base_rate.round(3).tolist()}; "
        f"classes {classes}")
    return {"x_test": x_test, "pred": pred, "acc": acc, "base_rate": base_rate,
            "classes": classes, "ref": np.asarray(train.x[:2000], dtype=np.float32)}


def _explainers(model, space) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("dmm-men", lambda: DMMMEN(space, seed=0, progress=False)),
        ("dmm-men K=1", lambda: DMMMEN(space, n_components=1, seed=0, progress=False)),
        ("lime", lambda: Lime(space, seed=0, progress=False)),
        ("kernel-shap", lambda: KernelShap(space, seed=0, progress=False)),
        ("random", lambda: RandomExplainer(space, seed=0)),
        ("integrated-gradients", lambda: IntegratedGradients(model, space)),
    ]


def _dmm_diagnostics(ex: DMMMEN) -> dict:
    d = ex.diagnostics()
    return {
        "ess_loglik": d["ess_loglik"], "mh_accept_rate": d["mh_accept_rate"],
        "seconds_per_sweep": d["seconds_per_sweep"], "fit_r2": d["fit_r2"],
        "components_used": int(np.sum(d["weights"] > 0.05)),
        "weights": np.round(d["weights"], 3).tolist(),
        "loglik_trace_best": d["loglik_trace"][d["best_chain"]][::10].round(1).tolist(),
    }


def _explain_class(model, proba, space, pos, xe, c, tag: str, log: Log) -> tuple[dict, ...]:
    """Fit and explain with every explainer; return (explanations, cost, diagnostics)."""
    exps, cost, diag = {}, {}, {}
    for name, make in _explainers(model, space):
        dmm = name.startswith("dmm")
        xs = pos if dmm else xe
        ex = make()
        start = time.perf_counter()
        ex.fit(pos if dmm else xe, proba, target=c)
        e = ex.explain(xs)
        secs = time.perf_counter() - start
        queries = ex.black_box_.queries - 1  # minus the target check probe
        if name == "integrated-gradients":
            queries = e.extras["model_evaluations"]
        cost[name] = {"seconds_per_sample": secs / len(xs), "queries_per_sample":
                      queries / len(xs), "n_explained": len(xs)}
        exps[name] = e[: len(xe)]
        if dmm:
            diag[name] = _dmm_diagnostics(ex)
        log(f"[{tag} c={c}] {name}: {secs / len(xs):.3f} s/sample, "
            f"{queries / len(xs):.0f} queries/sample")
    return exps, cost, diag


def run_setting(dataset: str, arch: str, args, log: Log) -> dict:
    """One (dataset, architecture) setting: every class, every explainer, every test."""
    t0 = time.perf_counter()
    tag = f"{dataset}/{arch}"
    model = get_trained(arch, dataset, seed=0)
    log(f"[{tag}] model ready in {time.perf_counter() - t0:.0f}s")
    proba = model_proba(model)
    st = _model_stats(model, dataset, args, log)
    x_test, pred, classes = st["x_test"], st["pred"], st["classes"]
    space = GridSpace(2).fit(x_test[:1])
    out = {"dataset": dataset, "arch": arch, "test_accuracy": st["acc"], "classes": {},
           "noise_base_rate": st["base_rate"].tolist()}
    for c in classes:
        pos = x_test[pred == c][: args.n_explain]
        neg = x_test[pred != c][:300]
        xe = pos[: args.n_eval]
        exps, cost, diag = _explain_class(model, proba, space, pos, xe, c, tag, log)
        fid = {name: _fidelity_row(proba, xe, e, c, neg, st["ref"]) for name, e in exps.items()}
        out["classes"][c] = {"cost": cost, "fidelity": fid, "dmm": diag,
                             "n_explain": len(pos), "n_eval": len(xe)}
        if c == classes[0]:
            out["picture_tag"] = tag_c = f"{dataset}_{arch}_class{c}"
            out["pictures"] = [f"{tag_c}_overlays.png", f"{tag_c}_dmm_generated_k{PICTURE_K}.png"]
            out["picture_data"] = _picture_data(xe, exps, proba, c, neg)
        for name in fid:
            log(f"   {name:22s} " + " | ".join(
                " ".join(f"{fid[name][k][t]:.2f}" for t in TESTS) for k in KS))
    out["threads"] = _thread_timing(x_test[pred == classes[0]][:100], proba, space, classes[0])
    log(f"[{tag}] DMM-MEN seconds per sweep by BLAS threads: {out['threads']}")
    return out


def _thread_timing(pos, proba, space, c) -> dict:
    """The same short DMM-MEN fit (100 inputs, one 40-sweep chain) with 1 and 2 BLAS threads
    (2 threads can be tens of times slower on a busy 2-core machine)."""
    timing = {}
    for n in (1, 2):
        ex = DMMMEN(space, seed=0, n_threads=n, n_sweeps=40, burn_in=20, n_chains=1,
                    progress=False).fit(pos, proba, target=c)
        timing[n] = ex.diagnostics()["seconds_per_sweep"]
    return timing


def run_groundtruth(log: Log, n_samples: int) -> dict:
    """Precision / recall of the relevant features of a piecewise-linear black box."""
    bb = piecewise_linear(20, 3, 3, seed=0)
    x = bb.sample(1500, seed=1)
    xe = x[:n_samples]
    truth = bb.relevant(xe)
    res = {}
    runs = [
        ("dmm-men", DMMMEN(n_components=8, n_local=0, attribution="coef", progress=False), x),
        ("dmm-men K=1", DMMMEN(n_components=1, n_local=0, attribution="coef", progress=False), x),
        ("lime", Lime(seed=0, progress=False), x),
        ("kernel-shap", KernelShap(seed=0, progress=False), x),
        ("random", RandomExplainer(seed=0), x),
    ]
    for name, ex, xfit in runs:
        start = time.perf_counter()
        ex.fit(xfit, bb.predict_proba, target=1)
        e = ex.explain(xe)
        p, r = precision_recall(e, truth)
        p5, r5 = precision_recall(e, truth, k=5)
        res[name] = {"precision@3": p, "recall@3": r, "precision@5": p5, "recall@5": r5,
                     "seconds": time.perf_counter() - start}
        log(f"[ground truth] {name}: P@3 {p:.3f}  P@5 {p5:.3f} R@5 {r5:.3f}")
    return res


def run(args, log: Log) -> dict:
    """Every measurement; the returned dict is what ``explain.json`` holds."""
    start = time.perf_counter()
    results: dict[str, Any] = {"settings": {}, "args": {k: v for k, v in vars(args).items()
                                                        if k != "report_only"}}
    results["command"] = command()
    results["groundtruth"] = run_groundtruth(log, args.gt_samples)
    for item in args.settings.split(","):
        dataset, arch = item.split(":")
        results["settings"][f"{dataset} / {arch}"] = run_setting(dataset, arch, args, log)
    results["seconds"] = time.perf_counter() - start
    return results


# -- render ----------------------------------------------------------------------------------
def _overlay_figure(pd: dict):
    from matplotlib.figure import Figure

    x = _unpack(pd["x"])
    methods = list(pd["top"])
    n = len(x)
    fig = Figure(figsize=(1.8 * (len(methods) + 1), 1.9 * n))
    for i in range(n):
        ax = fig.add_subplot(n, len(methods) + 1, i * (len(methods) + 1) + 1)
        ax.imshow(x[i, 0], cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        for j, m in enumerate(methods):
            ax = fig.add_subplot(n, len(methods) + 1, i * (len(methods) + 1) + j + 2)
            plot_overlay(x, _top_explanation(pd, m), PICTURE_K, ax=ax, index=i,
                         title=m if i == 0 else "")
    fig.tight_layout()
    return fig


def _top_explanation(pd: dict, method: str) -> Explanation:
    """An explanation whose top-``PICTURE_K`` features are the recorded ones."""
    top = np.asarray(pd["top"][method], dtype=np.int64)
    segments = np.asarray(pd["segments"], dtype=np.int64)
    attributions = np.zeros((len(top), int(segments.max()) + 1))
    np.put_along_axis(attributions, top, np.arange(top.shape[1], 0, -1, dtype=float), axis=1)
    return Explanation(method, pd["target"], attributions, segments, tuple(pd["input_shape"]))


def _generated_figure(pd: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.6 * 6, 1.8 * 3))
    for r, g in enumerate(pd["generated"]):
        images = _unpack(g["images"])
        for j in range(6):
            ax = fig.add_subplot(3, 6, r * 6 + j + 1)
            if j < len(images):
                ax.imshow(images[j, 0], cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"{g['test'][:5]} {'ok' if g['success'][j] else 'no'}", fontsize=7)
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def save_pictures(setting: dict, outdir: Path) -> list[str]:
    """Write a setting's overlay and generated-inputs PNGs; return their file names."""
    if "picture_data" not in setting:
        return list(setting.get("pictures", []))
    outdir.mkdir(parents=True, exist_ok=True)
    tag = setting["picture_tag"]
    names = [f"{tag}_overlays.png", f"{tag}_dmm_generated_k{PICTURE_K}.png"]
    for name, make in zip(names, (_overlay_figure, _generated_figure), strict=True):
        make(setting["picture_data"]).savefig(outdir / name, dpi=90)
    return names


def _mean_over_classes(setting: dict) -> tuple[dict, dict]:
    classes = list(setting["classes"].values())
    names = list(classes[0]["fidelity"])
    fid = {n: {k: {t: float(np.mean([c["fidelity"][n][str(k)][t] for c in classes]))
                   for t in TESTS} for k in KS} for n in names}
    cost = {n: {q: float(np.mean([c["cost"][n][q] for c in classes]))
                for q in ("seconds_per_sample", "queries_per_sample")} for n in names}
    return fid, cost


def _cost_lines(key: str, cost: dict, missed: list[str]) -> list[str]:
    lines = ["| explainer | seconds / sample | queries / sample | cost vs KernelSHAP (s, q) |",
             "| --- | ---: | ---: | ---: |"]
    ks_s = cost["kernel-shap"]["seconds_per_sample"]
    ks_q = cost["kernel-shap"]["queries_per_sample"]
    for n, cst in cost.items():
        lines.append(f"| {n} | {cst['seconds_per_sample']:.3f} | "
                     f"{cst['queries_per_sample']:.0f} | "
                     f"{cst['seconds_per_sample'] / ks_s:.3f}, "
                     f"{cst['queries_per_sample'] / ks_q:.3f} |")
    dmm_ratio = cost["dmm-men"]["seconds_per_sample"] / ks_s
    if dmm_ratio > 0.1:
        missed.append(f"{key}: DMM-MEN seconds per sample = {dmm_ratio:.3f}× KernelSHAP "
                      "(target ≤ 0.1×)")
    lines.append("")
    return lines


def _fidelity_lines(key: str, fid: dict, missed: list[str]) -> list[str]:
    lines = []
    for t in TESTS:
        lines += [f"**{t}**", "", "| explainer | " + " | ".join(f"k={k}" for k in KS) + " |",
                  "| --- |" + " ---: |" * len(KS)]
        for n in fid:
            lines.append(f"| {n} | " + " | ".join(f"{fid[n][k][t]:.3f}" for k in KS) + " |")
        lines.append("")
        for k in KS:
            best = max(fid["lime"][k][t], fid["kernel-shap"][k][t])
            if fid["dmm-men"][k][t] < best:
                missed.append(f"{key} {t} k={k}: DMM-MEN {fid['dmm-men'][k][t]:.3f} < "
                              f"best of LIME/KernelSHAP {best:.3f}")
    return lines


def _setting_lines(key: str, st: dict, pictures: list[str], missed: list[str]) -> list[str]:
    fid, cost = _mean_over_classes(st)
    lines = [f"## {key} (test accuracy {st['test_accuracy']:.4f}, classes "
             f"{[int(c) for c in st['classes']]})", ""]
    lines += _cost_lines(key, cost, missed)
    lines += _fidelity_lines(key, fid, missed)
    lines += ["DMM-MEN sampler diagnostics per class (ESS of the kept log-likelihood, MH "
              "acceptance of σ², seconds per sweep, components with weight > 0.05, fit R²):",
              ""]
    for c, cl in st["classes"].items():
        for n, d in cl["dmm"].items():
            lines.append(f"- class {c}, {n}: ESS {d['ess_loglik']:.1f}, accept "
                         f"{d['mh_accept_rate']:.2f}, {d['seconds_per_sweep'] * 1000:.1f} "
                         f"ms/sweep, {d['components_used']} components, R² "
                         f"{d['fit_r2']:.3f}")
    lines += ["", "BLAS threads (Gibbs sweep of the same DMM-MEN fit on 100 inputs): "
              + ", ".join(f"{n} thread(s) {s * 1000:.1f} ms/sweep"
                          for n, s in st["threads"].items()), ""]
    lines += [f"![{pic}](explain/{pic})" for pic in pictures]
    lines.append("")
    return lines


def render(results: dict, pictures: dict[str, list[str]]) -> str:
    """``explain.md`` from the JSON results (and the picture file names per setting)."""
    args = results["args"]
    seconds = results["seconds"]
    lines = [
        "# Explanation fidelity and cost: DMM-MEN vs LIME vs KernelSHAP",
        "",
        f"Produced by `{results.get('command', 'python -m bench.explain_table')}` "
        f"in {seconds / 60:.1f} min on this machine (2 shared CPU cores, other jobs running).",
        "",
        f"Per setting: {args['classes']} classes (lowest noise base rate), {args['n_explain']} "
        f"positives per class fitted and explained by DMM-MEN, fidelity on the first "
        f"{args['n_eval']} of them for every explainer (cells are means over the classes). "
        f"Features: 2×2-pixel cells (196). Synthetic noise: uniform pixels in [{NOISE[0]}, "
        f"{NOISE[1]}]. Augmentation: 5 negatives per positive. Deduction-mean: mean of 2,000 "
        "training images. Higher is better everywhere. `dmm-men K=1` is the single-regression "
        "ablation; `integrated-gradients` is a white-box reference (needs the gradients).",
        "",
    ]
    missed: list[str] = []
    for key, st in results["settings"].items():
        lines += _setting_lines(key, st, pictures.get(key, []), missed)
    lines += ["## Ground truth: piecewise-linear black box",
              "",
              "20 features in [0, 1], 3 regions chosen by feature 0, 3 relevant features per "
              f"region (positive weights); {args['gt_samples']} explained samples; ranking by "
              "|attribution| (DMM-MEN: the component's coefficients; fit on 1,500 samples, "
              "no local samples; LIME tabular explainer, 5,000 samples; KernelSHAP with the "
              "mean row as background).",
              "",
              "| explainer | precision@3 (= recall@3) | precision@5 | recall@5 | seconds |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for n, r in results["groundtruth"].items():
        lines.append(f"| {n} | {r['precision@3']:.3f} | {r['precision@5']:.3f} | "
                     f"{r['recall@5']:.3f} | {r['seconds']:.1f} |")
    lines += ["", "## Targets missed", ""]
    lines += [f"- {m}" for m in missed] or ["- none"]
    lines.append("")
    return "\n".join(lines)


def report(results: dict | None = None) -> Path:
    """Render ``explain.md`` and the PNGs from ``explain.json`` (or ``results``)."""
    if results is None:
        results = json.loads(JSON_PATH.read_text())
    pictures = {key: save_pictures(st, OUT / "explain")
                for key, st in results["settings"].items()}
    return write_text(OUT / "explain.md", render(results, pictures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--n-explain", type=int, default=200)
    parser.add_argument("--n-eval", type=int, default=30)
    parser.add_argument("--gt-samples", type=int, default=40)
    parser.add_argument("--settings", default=",".join(f"{d}:{a}" for d, a in SETTINGS))
    parser.add_argument("--report-only", action="store_true",
                        help="re-render explain.md and the PNGs from explain.json")
    args = parser.parse_args()
    log = logger()
    if not args.report_only:
        require_data()
        set_threads(1)
        results = run(args, log)
        # a JSON round trip first, so that the run and --report-only render the same thing
        results = json.loads(json.dumps(results, default=str))
        write_text(JSON_PATH, json.dumps(results, indent=1))
    report()
    log("wrote bench/results/explain.md")


if __name__ == "__main__":
    main()
