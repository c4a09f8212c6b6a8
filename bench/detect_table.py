"""Detection benchmark (successor of ``bench/ami_table.py``): every detector × every attack on
an AT&T face model, false positives measured on benign faces the detectors have never seen.

Protocol
--------
- **Fit and calibrate on training faces only.** The correctly classified training faces are
  split once (seeded, 70 / 30, :func:`deepscope.detect.split_calibration`): every detector is
  fitted on the 70 % (AmI: witnesses; Mahalanobis / LID / ART: features and combiner, trained
  on FGSM copies as their own default, no knowledge of the attacks to come) and calibrated on
  the same 30 % at ``--target-fpr`` (default 10 %), through
  :func:`deepscope.audit.detector_fit.fit_detector`, the path of ``deepscope detect fit``.
- **False positives on held-out benign faces**: the 80 test faces and their mirror images
  (those the model classifies correctly), reported apart and together, with n and a 95 %
  Wilson interval; the FP on the calibration faces is shown for reference.
- **Detection** on the successful adversarial versions of test faces (:mod:`bench.detect_attacks`,
  cached), with n and a 95 % Wilson interval; the adaptive attacks (``adaptive-*``, if
  registered) are made against the fitted detector they target and scored by every detector.
- **ROC-AUC** per detector and attack family (held-out + mirrored benign faces against the
  family's successful adversarial faces) and a ROC plot; **time per input** of ``score``
  relative to one forward pass of the model (batch of 32, best of 3).

Usage::

    python -m bench.detect_table --checkpoint bench/.cache/face-cnn-26k.pt   # -> detect.md
    python -m bench.detect_table --name detect_vgg                         # face-vgg-1.2m
    python -m bench.detect_table --report-only                             # json -> md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench.ami_attacks import ARCH, DATASET, bench_model
from bench.ami_table import VARIANTS, detector_rows, fold_masks
from bench.common import RESULTS, machine, require_data, set_threads, write_text
from bench.detect_attacks import (
    ADAPTIVE,
    COLUMNS,
    MIRRORED,
    adaptive_set,
    cache_dir,
    plain_sets,
)
from bench.detect_eval import auc, crossfit, rate_ci, timing
from bench.detect_render import plot_roc, render
from deepscope.audit.detector_fit import benign_indices, fit_detector
from deepscope.data import load
from deepscope.detect import AttributeSet, JointDetector, split_calibration
from deepscope.detect.ami.detector import default_layers
from deepscope.detect.ami.witnesses import extract_witness_variants
from deepscope.models import evaluate, load_checkpoint, predict_logits

FS_5 = "Feature squeezing (5-bit, 2×2 median)"
FS_7 = "Feature squeezing (7-bit only)"
PEERS = {"Margin (top-2 logit gap)": ("margin", {}, None),
         "Mahalanobis": ("mahalanobis", {}, None),
         "LID": ("lid", {}, None),
         "ART BinaryActivationDetector": ("art-binary", {}, None)}
JOINTS = {"Joint (AmI ∪ FS 5-bit+median)": ("AmI", FS_5),
          "Joint (AmI ∪ FS 7-bit)": ("AmI", FS_7),
          "Joint (margin ∪ FS 5-bit+median ∪ Mahalanobis)": ("Margin (top-2 logit gap)", FS_5,
                                                             "Mahalanobis"),
          "Joint (margin ∪ FS 5-bit+median ∪ LID)": ("Margin (top-2 logit gap)", FS_5, "LID"),
          "Joint (AmI ∪ margin ∪ FS 5-bit ∪ FS 7-bit ∪ Mahalanobis ∪ LID ∪ ART)": (
              "AmI", "Margin (top-2 logit gap)", FS_5, FS_7, "Mahalanobis", "LID",
              "ART BinaryActivationDetector")}
#: Unions added after the first full run had been read (chosen on the test attacks, so their
#: detection is optimistic, like the 7-bit squeezer of ami.md): flagged in the table.
POST_HOC = {"Joint (margin ∪ Mahalanobis)": ("Margin (top-2 logit gap)", "Mahalanobis"),
            "Joint (FS 5-bit+median ∪ Mahalanobis)": (FS_5, "Mahalanobis")}
JOINTS.update(POST_HOC)
FAMILIES = ("patch/glasses", "C&W κ=0", "FGSM/BIM", "C&W κ>0", "adaptive")


def split_training(model, train, seed: int = 0):
    """``(fitting faces as a Dataset, calibration faces)``: the correctly classified training
    faces, 70 / 30 (seeded)."""
    keep = benign_indices(model, train, seed=seed)
    fit_idx, cal_idx = split_calibration(len(keep), 0.3, seed)
    return train.subset(keep[fit_idx]), train.x[keep[cal_idx]]


def benign_sets(model, test, x_cal) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """Calibration faces, held-out test faces and their mirror images (correctly classified),
    and the test index of every held-out / mirrored face."""
    mirror = test.x.flip(-1)
    ok = predict_logits(model, test.x).argmax(1) == test.y
    ok_m = predict_logits(model, mirror).argmax(1) == test.y
    sources = {"heldout": torch.nonzero(ok).flatten().tolist(),
               "mirror": torch.nonzero(ok_m).flatten().tolist()}
    return {"calib": x_cal, "heldout": test.x[ok], "mirror": mirror[ok_m]}, sources


def fit_rows(rows, model, train_fit, x_cal, target_fpr: float, ws, log):
    """Every single detector, fitted on ``train_fit`` and calibrated on ``x_cal``."""
    fitted: dict[str, Any] = {}
    for name, (method, params, wkey) in rows.items():
        t = time.perf_counter()
        wit = ws[wkey or "ami"] if method == "ami" else None
        fitted[name], _ = fit_detector(method, model, train_fit, target_fpr=target_fpr,
                                       progress=False, params=params, x_calib=x_cal,
                                       witnesses=wit)
        log(f"fit {name}: {time.perf_counter() - t:.0f}s")
    for name, members in JOINTS.items():
        if all(m in fitted for m in members):
            fitted[name] = JointDetector([fitted[m] for m in members], target_fpr=target_fpr,
                                         progress=False).fit(train_fit.x, x_calib=x_cal,
                                                             refit=False)
    return fitted


def witnesses(model, train_fit, n_pairs: int | None, top_k: int) -> dict[str, Any]:
    """The four witness variants of the AmI rows, from one pass over the same pairs."""
    attrs = AttributeSet(boxes=train_fit.extras["boxes"],
                         names=tuple(train_fit.info["box_names"]))
    steer = default_layers(model, train_fit.x)
    kw = {"n_pairs": n_pairs} if n_pairs else {}
    ws = extract_witness_variants(model, train_fit.x, attrs, steer, VARIANTS,
                                  groups=train_fit.extras["subject"], top_k=top_k,
                                  progress=False, **kw)
    return dict(zip(["ami", "as", "ap", "literal"], ws, strict=True))


def score_all(fitted, sets: dict[str, torch.Tensor], log) -> dict[str, dict[str, list[float]]]:
    """Every detector's scores on every set (successful adversarial faces only)."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, det in fitted.items():
        t = time.perf_counter()
        out[name] = {k: det.score(x).double().tolist() if len(x) else []
                     for k, x in sets.items()}
        log(f"score {name}: {time.perf_counter() - t:.0f}s")
    return out


def summarise(fitted, scores, families: dict[str, str], sources, fold, target_fpr: float
              ) -> dict[str, dict[str, Any]]:
    """FP and detection counts with 95 % Wilson intervals (thresholds from the training
    faces, and cross-fitted on held-out faces), AUC per family, per detector."""
    out: dict[str, dict[str, Any]] = {}
    for name, det in fitted.items():
        thr = float(det.threshold_)
        s = scores[name]
        counts = {k: rate_ci(sum(v > thr for v in vals), len(vals)) for k, vals in s.items()}
        counts["benign held-out"] = rate_ci(
            sum(v > thr for v in s["heldout"] + s["mirror"]), len(s["heldout"] + s["mirror"]))
        benign = s["heldout"] + s["mirror"]
        aucs = {}
        for fam in FAMILIES:
            pos = [v for k, f in families.items() if f == fam for v in s.get(k, [])]
            aucs[fam] = auc(benign, pos) if pos else None
        out[name] = {"threshold": thr, "counts": counts, "auc": aucs,
                     "crossfit": crossfit(s, sources, fold, target_fpr)}
    return out


def _attack_info(v: dict[str, Any]) -> dict[str, Any]:
    m = v["meta"]
    return {"attack": m.get("attack"), "target": m.get("target"), "params": m.get("params"),
            "n": len(v["ok"]), "success": int(v["ok"].sum()), "seconds": m.get("seconds")}


def merge_mirrored(adv: dict[str, dict[str, Any]]) -> None:
    """Fold every mirrored cell into its base column (images, success flags, source faces)."""
    for key, base in MIRRORED.items():
        if key in adv and base in adv:
            m, b = adv.pop(key), adv[base]
            adv[base] = {"x": torch.cat([b["x"], m["x"]]), "ok": torch.cat([b["ok"], m["ok"]]),
                         "idx": torch.cat([b["idx"], m["idx"]]), "meta": b["meta"]}


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    t_start = time.perf_counter()
    model = bench_model(args.checkpoint)
    train = load(DATASET, "train", progress=False)
    test = load(DATASET, "test", progress=False)
    acc = {"test": evaluate(model, test).accuracy, "train": evaluate(model, train).accuracy}
    log(f"accuracy {acc}")
    folder = cache_dir(args.checkpoint)
    only = None if args.cells is None else [
        *args.cells, *(k for k, b in MIRRORED.items() if b in args.cells)]
    adv = plain_sets(model, folder, args.faces, args.slow_faces, only, log)
    attack_info = {k: _attack_info(v) for k, v in adv.items()}
    merge_mirrored(adv)

    train_fit, x_cal = split_training(model, train)
    rows = {**detector_rows(n_pairs=args.pairs), **PEERS}
    if args.rows is not None:
        rows = {k: v for k, v in rows.items() if k in {"AmI", FS_5, *args.rows}}
    t = time.perf_counter()
    ws = witnesses(model, train_fit, args.pairs, top_k=10)
    log(f"witnesses: {time.perf_counter() - t:.0f}s")
    fitted = fit_rows(rows, model, train_fit, x_cal, args.target_fpr, ws, log)

    families = {k: fam for k, _, fam in COLUMNS}
    adaptive_meta: dict[str, Any] = {}
    for name, row in ADAPTIVE.items():
        if args.no_adaptive or row not in fitted:
            continue
        t = time.perf_counter()
        got = adaptive_set(name, model, fitted[row], args.adaptive_faces, folder)
        if got is None:
            adaptive_meta[name] = {"missing": True, "against": row}
            log(f"{name}: not registered (skipped)")
            continue
        adv[name] = got
        families[name] = "adaptive"
        adaptive_meta[name] = {"against": row, "n": len(got["ok"]),
                               "success": int(got["ok"].sum()), "meta": got["meta"]}
        log(f"{name}: {int(got['ok'].sum())}/{len(got['ok'])} ({time.perf_counter() - t:.0f}s)")

    sets, sources = benign_sets(model, test, x_cal)
    sets.update({k: v["x"][v["ok"]] for k, v in adv.items()})
    sources.update({k: v["idx"][v["ok"]].tolist() for k, v in adv.items()})
    first, _ = fold_masks(test)
    fold = {i: 0 if bool(first[i]) else 1 for i in range(len(test))}
    scores = score_all(fitted, sets, log)
    summary = summarise(fitted, scores, families, sources, fold, args.target_fpr)
    cost = {name: timing(model, det, test.x[:32]) for name, det in fitted.items()}
    payload = {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
        "model": ARCH if args.checkpoint is None else str(args.checkpoint),
        "arch": ARCH if args.checkpoint is None else load_checkpoint(args.checkpoint).arch,
        "accuracy": acc, "target_fpr": args.target_fpr,
        "n_fit": len(train_fit), "n_calib": len(x_cal),
        "n_benign": {k: len(v) for k, v in sets.items() if k in ("calib", "heldout", "mirror")},
        "columns": [[k, title, fam] for k, title, fam in COLUMNS if k in adv],
        "adaptive": adaptive_meta, "families": families,
        "attacks": {**attack_info, **{k: _attack_info(v) for k, v in adv.items()
                                      if k not in attack_info}},
        "column_success": {k: int(v["ok"].sum()) for k, v in adv.items()},
        "rows": {name: {"method": getattr(det, "name", ""), **summary[name],
                        "cost": cost[name],
                        "config": (det.config_.to_dict() if hasattr(det, "config_") else None)}
                 for name, det in fitted.items()},
        "members": {k: list(v) for k, v in JOINTS.items() if k in fitted},
        "post_hoc": [k for k in POST_HOC if k in fitted],
        "scores": {name: {k: [round(v, 5) for v in vals] for k, vals in s.items()}
                   for name, s in scores.items()},
        "faces": args.faces, "slow_faces": args.slow_faces,
        "adaptive_faces": args.adaptive_faces, "pairs": args.pairs,
        "seconds": time.perf_counter() - t_start,
        "command": "python -m bench.detect_table " + " ".join(args.argv),
    }
    return payload


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help=f"a `deepscope train` checkpoint instead of the cached {ARCH}")
    p.add_argument("--target-fpr", type=float, default=0.10)
    p.add_argument("--faces", type=int, default=78, help="test faces per attack cell")
    p.add_argument("--slow-faces", type=int, default=40, help="faces per C&W L0 / L∞ cell")
    p.add_argument("--adaptive-faces", type=int, default=30)
    p.add_argument("--no-adaptive", action="store_true")
    p.add_argument("--pairs", type=int, default=None, help="AmI pairs per attribute")
    p.add_argument("--rows", nargs="*", default=None,
                   help="keep only these detector rows (AmI and FS 5-bit are always kept)")
    p.add_argument("--cells", nargs="*", default=None, help="only these plain columns")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--name", default="detect", help="results stem: RESULTS/<name>.json/.md")
    p.add_argument("--note", default="", help="a sentence added to the results (e.g. load)")
    p.add_argument("--report-only", action="store_true", help="re-render <name>.md from json")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    js, md = args.out / f"{args.name}.json", args.out / f"{args.name}.md"
    if args.report_only:
        payload = json.loads(js.read_text())
    else:
        require_data()
        set_threads()
        payload = run(args)
        payload["note"] = args.note
        write_text(js, json.dumps(payload, indent=0))
    plot_roc(payload, args.out / f"{args.name}_roc.png")
    text = render(payload, roc_png=f"{args.name}_roc.png")
    notes = args.out / f"{args.name}.notes.md"  # hand-written reading of the numbers
    if notes.exists():
        text += "\n## Notes (written after the run, from the numbers above)\n\n" + notes.read_text()
    write_text(md, text)
    print(f"wrote {md}")


if __name__ == "__main__":
    main()
