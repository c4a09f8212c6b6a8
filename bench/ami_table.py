"""AmI benchmark: the seed's adversarial-detection table on the AT&T face model.

Model: the cached ``face-vgg-1.2m`` trained on the AT&T faces (:mod:`bench.zoo`); its
held-out accuracy is reported first.

Protocol
--------
- **Fit** (witness extraction) on the 320 training faces with their landmark boxes; donors of
  substitutions/preservations come from other people.
- **Calibration and evaluation, cross-fitted on the 80 test faces.** Fold A = the first test
  image of every person, fold B = the second. Every detector is calibrated (steering grid and
  threshold, or threshold) on the correctly classified benign faces of one fold, then
  evaluated on the benign faces of the other fold (false positives) and on the adversarial
  versions of the other fold's faces (detection); then the folds swap and the counts add up.
  So no face is both calibrated on and evaluated.
- **Adversarial sets** come from :mod:`bench.ami_attacks` (cached in ``bench/.cache/ami``);
  detection counts successful attacks only; false positives count correctly classified
  benign faces only. All detectors are calibrated to the same target false-positive rate.

Usage::

    python -m bench.ami_attacks                # once: the adversarial sets (slow, cached)
    python -m bench.ami_table                  # run: bench/results/ami.json (+ ami.md, figures)
    python -m bench.ami_table --report-only    # render: ami.json -> ami.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench.ami_attacks import (
    AMI_CACHE,
    ARCH,
    CELLS,
    DATASET,
    bench_model,
    cache_dir,
    cell_indices,
    eligible_order,
    load_cell,
)
from bench.ami_render import TABLE_LAYERS, render
from bench.common import RESULTS, machine, require_data, set_threads, write_text
from deepscope.audit.detector_fit import fit_detector
from deepscope.data import load
from deepscope.detect import AmIDetector, AttributeSet, JointDetector, attribute_probe
from deepscope.detect.ami.detector import default_layers
from deepscope.detect.ami.witnesses import extract_witness_variants
from deepscope.models import evaluate, inference, load_checkpoint, predict_logits, zoo

COLUMNS = [  # (column title, cell key)
    ("Patch first", "patch-first"), ("Patch next", "patch-next"),
    ("Glasses first", "glasses-first"), ("Glasses next", "glasses-next"),
    ("C&W L0 first", "cw-l0-first"), ("C&W L0 next", "cw-l0-next"),
    ("C&W L2 first", "cw-l2-first"), ("C&W L2 next", "cw-l2-next"),
    ("C&W L∞ first", "cw-linf-first"), ("C&W L∞ next", "cw-linf-next"),
    ("FGSM", "fgsm"), ("BIM", "bim"),
    ("C&W L2 κ=5 (next)", "cw-l2-k5"), ("C&W L2 κ=20 (next)", "cw-l2-k20"),
]
FS_5BIT = "Feature squeezing (5-bit, 2×2 median)"
JOINTS = {"Joint (AmI ∪ FS 5-bit+median)": ("AmI", FS_5BIT),
          "Joint (AmI ∪ FS 7-bit)": ("AmI", "Feature squeezing (7-bit only)")}
VARIANTS = [("normalized", "both", None), ("normalized", "substitution", None),
            ("normalized", "preservation", None), ("literal", "both", None)]


def detector_rows(alphas=None, epsilons=None, stn_epsilons=(1.2, 1.5, 2.0, 3.0, 5.0),
                  n_pairs=None) -> dict[str, tuple[str, dict[str, Any], str | None]]:
    """Every table row: ``(method, parameters, witnesses)``.

    The rows are fitted with :func:`deepscope.audit.detector_fit.fit_detector`, the path
    ``deepscope detect fit`` runs, so a row with no parameters is exactly what a user gets with
    ``--method ami`` / ``--method squeeze`` and the same ``--target-fpr``. ``alphas``,
    ``epsilons`` and ``n_pairs`` override the detector defaults only when given (``--quick``).
    ``witnesses``: ``None`` = the row extracts its own; ``"ami"`` = the AmI row's (ablations
    that change only the steering); ``"as"``/``"ap"``/``"literal"`` = the extraction variants.
    """
    grid = {k: v for k, v in (("alphas", alphas), ("epsilons", epsilons),
                              ("n_pairs", n_pairs)) if v is not None}
    return {
        FS_5BIT: ("squeeze", {}, None),
        "Feature squeezing (7-bit only)": ("squeeze", {"bit_depth": 7, "median_size": None},
                                           None),
        "AmI": ("ami", dict(grid), None),
        "AS (substitution only)": ("ami", {**grid, "criterion": "substitution"}, "as"),
        "AP (preservation only)": ("ami", {**grid, "criterion": "preservation"}, "ap"),
        "WKN (weakening only)": ("ami", {**grid, "strengthen": False}, "ami"),
        "STN (strengthening only)": ("ami", {**grid, "weaken": False,
                                             "epsilons": stn_epsilons}, "ami"),
        "Random neurons (control)": ("ami", {**grid, "random_control": True}, "ami"),
        "AmI, literal witness rule": ("ami", {**grid, "rule": "literal"}, "literal"),
    }


def fold_masks(test) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold A = first test image of each person, fold B = the second."""
    subj = test.extras["subject"]
    first = torch.zeros(len(subj), dtype=torch.bool)
    seen: set[int] = set()
    for i, s in enumerate(subj.tolist()):
        if s not in seen:
            first[i] = True
            seen.add(s)
    return first, ~first




def timing(model, det: AmIDetector, x: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Seconds for the model alone, AmI's score (prefix reuse) and a naive steered+original."""
    def best(fn):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def model_alone():
        with inference(model):
            model(x)

    t_model = best(model_alone)
    t_ami = best(lambda: det.steered_model().score(x))
    naive = det.steered_model(reuse_prefix=False)  # the whole model on [x, x]
    t_naive = best(lambda: naive.score(x))
    return {"model_s": t_model, "ami_s": t_ami, "naive_s": t_naive,
            "ratio": t_ami / t_model, "naive_ratio": t_naive / t_model}


def adversarial_sets(model, log, folder: Path = AMI_CACHE, only: list[str] | None = None
                     ) -> dict[str, dict[str, Any]]:
    """The cached adversarial sets of :mod:`bench.ami_attacks` (missing ones are skipped)."""
    order = eligible_order(model)
    adv: dict[str, dict[str, Any]] = {}
    for cell in CELLS:
        if only is not None and cell.key not in only:
            continue
        got = load_cell(cell, cell_indices(cell, order), folder)
        if got is None:
            log(f"missing adversarial set {cell.key}: run python -m bench.ami_attacks")
            continue
        idx = torch.tensor(got["meta"]["indices"])
        adv[cell.key] = {"x": torch.from_numpy(got["x_adv"]), "ok": torch.from_numpy(
            got["success"]).bool(), "idx": idx, "meta": got["meta"]}
    return adv


def fit_fold(name: str, rows: dict[str, Any], fitted: dict[str, Any],
             joint_dets: dict[str, JointDetector], model, train, x_cal: torch.Tensor,
             target_fpr: float, ws: dict[str, Any]):
    """Fit (first fold) or re-calibrate (second fold) row ``name`` on the calibration faces."""
    if name in JOINTS:
        if name not in joint_dets:
            joint_dets[name] = JointDetector([fitted[m] for m in JOINTS[name]],
                                             target_fpr=target_fpr, progress=False)
        return joint_dets[name].fit(train.x, x_calib=x_cal, refit=False)
    if name in fitted:
        return fitted[name].calibrate(x_cal)
    method, params, wkey = rows[name]
    wit = fitted["AmI"].witnesses_ if wkey == "ami" else ws.get(wkey) if wkey else None
    det, _ = fit_detector(method, model, train, target_fpr=target_fpr, progress=False,
                          params=params, x_calib=x_cal, witnesses=wit)
    fitted[name] = det
    return det


def count_fold(det, counts: dict[str, list[int]], x_eval: torch.Tensor,
               adv: dict[str, dict[str, Any]], eval_idx: set[int]) -> None:
    """Add the fold's false positives and detections of successful attacks to ``counts``."""
    fp = det.detect(x_eval)
    counts["fp"][0] += int(fp.sum())
    counts["fp"][1] += int(fp.numel())
    for _, key in COLUMNS:
        if key not in adv:
            continue
        a = adv[key]
        sel = a["ok"] & torch.tensor([int(i) in eval_idx for i in a["idx"]])
        if bool(sel.any()):
            flags = det.detect(a["x"][sel])
            counts[key][0] += int(flags.sum())
            counts[key][1] += int(flags.numel())


def cross_fit(rows, ws, train, test, model, adv, target_fpr: float, log):
    """Counts, per-fold configurations and the fitted detectors of every row, calibrated on
    one fold, evaluated on the other, then swapped."""
    joints = {k: v for k, v in JOINTS.items() if all(m in rows for m in v)}
    all_rows = [*rows, *joints]
    fitted: dict[str, Any] = {}
    counts = {name: {key: [0, 0] for key in [c[1] for c in COLUMNS] + ["fp"]}
              for name in all_rows}
    configs: dict[str, list[dict[str, Any]]] = {name: [] for name in all_rows}
    joint_dets: dict[str, JointDetector] = {}
    fold_a, fold_b = fold_masks(test)
    correct = predict_logits(model, test.x).argmax(1) == test.y
    for f, (cal_mask, eval_mask) in enumerate(((fold_a, fold_b), (fold_b, fold_a))):
        x_cal = test.x[cal_mask & correct]  # (what `detect fit --calib-split` passes)
        x_eval = test.x[eval_mask & correct]
        eval_idx = set(torch.nonzero(eval_mask).flatten().tolist())
        for name in all_rows:
            t = time.perf_counter()
            det = fit_fold(name, rows, fitted, joint_dets, model, train, x_cal, target_fpr,
                           ws)
            cfg = {"fold": "AB"[f], "threshold": det.threshold_}
            if isinstance(det, AmIDetector):
                cfg.update(det.config_.to_dict())
            configs[name].append(cfg)
            count_fold(det, counts[name], x_eval, adv, eval_idx)
            log(f"fold {'AB'[f]} {name}: {time.perf_counter() - t:.0f}s")
    return counts, configs, fitted


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """The whole benchmark; returns the JSON payload (and draws the figures)."""
    t_start = time.perf_counter()
    model = bench_model(args.checkpoint)
    train = load(DATASET, "train", progress=False)
    test = load(DATASET, "test", progress=False)
    acc_test = evaluate(model, test).accuracy
    acc_train = evaluate(model, train).accuracy
    log(f"held-out accuracy {acc_test:.4f} (train {acc_train:.4f})")
    attrs_tr = AttributeSet(boxes=train.extras["boxes"], names=tuple(train.info["box_names"]))

    n_pairs = 32 if args.quick else args.pairs
    alphas = (0.5, 2.0, 10.0) if args.quick else None
    epsilons = (1.0,) if args.quick else None
    stn_eps = (1.5, 3.0) if args.quick else (1.2, 1.5, 2.0, 3.0, 5.0)
    rows = detector_rows(alphas, epsilons, stn_eps, n_pairs)
    if args.rows is not None:
        keep = {"AmI", FS_5BIT, *args.rows}
        rows = {k: v for k, v in rows.items() if k in keep}
    ami_defaults = AmIDetector(model, progress=False)
    n_pairs_used = n_pairs or ami_defaults.n_pairs

    t = time.perf_counter()
    steer = default_layers(model, test.x)  # AmI's default layers (= TABLE_LAYERS[-4:] on vgg)
    table_layers = TABLE_LAYERS if zoo.arch_of(model) == ARCH else steer
    ws_list = extract_witness_variants(model, train.x, attrs_tr, table_layers, VARIANTS,
                                       n_pairs=n_pairs_used, groups=train.extras["subject"],
                                       top_k=ami_defaults.top_k, progress=False)
    ws_full = dict(zip(["ami", "as", "ap", "literal"], ws_list, strict=True))
    ws = {k: v.restrict(steer) for k, v in ws_full.items()}
    log(f"witnesses: {time.perf_counter() - t:.0f}s")

    folder = cache_dir(args.checkpoint)
    adv = adversarial_sets(model, log, folder, args.cells)
    counts, configs, fitted = cross_fit(rows, ws, train, test, model, adv, args.target_fpr, log)

    ami = fitted["AmI"]
    cost = timing(model, ami, test.x)
    log(f"cost: {cost}")
    probe = attribute_probe(model, ws_full["ami"], train.x, train.extras["boxes"], test.x,
                            test.extras["boxes"])
    figures(model, ami, fitted[FS_5BIT], test, adv, args.out / args.name)
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
        "model": ARCH if args.checkpoint is None else str(args.checkpoint),
        "test_accuracy": acc_test, "train_accuracy": acc_train,
        "target_fpr": args.target_fpr, "n_pairs": n_pairs_used,
        "alphas": list(alphas or ami_defaults.alphas),
        "epsilons": list(epsilons or ami_defaults.epsilons), "stn_epsilons": list(stn_eps),
        "columns": [c[0] for c in COLUMNS], "keys": [c[1] for c in COLUMNS],
        "counts": counts, "configs": configs,
        "attacks": {k: {"attack": v["meta"]["attack"], "target": v["meta"]["target"],
                        "params": v["meta"]["params"], "n": len(v["idx"]),
                        "success": int(v["ok"].sum())} for k, v in adv.items()},
        "witnesses": {k: v.to_dict() for k, v in ws_full.items()},
        "cost": cost, "probe": probe.to_dict(),
        "seconds": time.perf_counter() - t_start, "quick": args.quick,
        "command": "python -m bench.ami_table " + " ".join(args.argv),
        "checkpoint_arch": (None if args.checkpoint is None
                            else load_checkpoint(args.checkpoint).arch),
        "reduced": bool(args.cells is not None or args.rows is not None
                        or args.checkpoint is not None),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target-fpr", type=float, default=0.08)
    p.add_argument("--pairs", type=int, default=None,
                   help="pairs per attribute (witnesses); default: AmIDetector's")
    p.add_argument("--quick", action="store_true", help="few pairs, small grid (smoke run)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--rows", nargs="*", default=None,
                   help="keep only these detector rows (AmI and FS 5-bit are always kept)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help=f"a `deepscope train` checkpoint instead of the cached {ARCH} "
                        "(attack sets from `python -m bench.ami_attacks --checkpoint`)")
    p.add_argument("--cells", nargs="*", default=None,
                   help="only these adversarial columns (a reduced run), e.g. fgsm bim")
    p.add_argument("--name", default="ami", help="results stem: RESULTS/<name>.json/.md")
    p.add_argument("--report-only", "--render-only", dest="report_only", action="store_true",
                   help="re-write ami.md from an existing ami.json (no model, no data)")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    js, md = args.out / f"{args.name}.json", args.out / f"{args.name}.md"
    if args.report_only:
        write_text(md, render(json.loads(js.read_text())))
        return
    require_data()
    set_threads()
    payload = run(args)
    write_text(js, json.dumps(payload, indent=1))
    write_text(md, render(payload))
    print(f"wrote {md} in {payload['seconds']:.0f}s")


def figures(model, ami, fs, test, adv, folder: Path) -> None:
    from deepscope.report.detect_section import plot_detection_examples, plot_witness_counts

    folder.mkdir(parents=True, exist_ok=True)
    xs, titles = [], []
    for key in ("fgsm", "cw-l2-next", "patch-next", "glasses-next"):
        if key in adv and bool(adv[key]["ok"].any()):
            i = int(torch.nonzero(adv[key]["ok"])[0])
            xs.append(adv[key]["x"][i])
            titles.append(key)
    if xs:
        x = torch.stack(xs)
        fig = plot_detection_examples(x, ami.run(x), fs.run(x), titles=titles)
        fig.savefig(folder / "examples.png", dpi=110, bbox_inches="tight")
    fig = plot_witness_counts(ami.witnesses_)
    fig.savefig(folder / "witness_counts.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
