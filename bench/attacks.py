"""Benchmark of deepscope.attacks against ART and foolbox, on the same images in the same run.

Models: the zoo's MNIST CNN (``cnn-100k`` on MNIST) and the face model (``face-vgg-1.2m`` on
AT&T faces), both from :func:`bench.zoo.get_trained`. Images: the first N test images that
the model classifies correctly and whose label is not 0 (so the "first" target is never the
true label); every implementation of a cell attacks exactly these images.

For each attack and target mode (FGSM and BIM untargeted, as in the seed's table; C&W, patch
and glasses towards the "first" and the "next" label) it reports the success rate, the mean
L0 / L2 / L∞ over the successful samples and the seconds per 100 images, for deepscope and for
the peer implementations of the same attack with the same settings:

- ART: ``FastGradientMethod``, ``BasicIterativeMethod``, ``CarliniL2Method``,
  ``CarliniLInfMethod``, ``CarliniL0Method``;
- foolbox: ``FGSM``, ``LinfBasicIterativeAttack``, ``L2CarliniWagnerAttack``.

Patch and glasses have no per-image peer (ART's ``AdversarialPatch`` trains one universal
patch for a whole set of images, a different threat model). Success, norms and times are
measured the same way for everyone: the model is re-run on each returned image, norms come
from :func:`deepscope.attacks.perturbation_norms`, and the time is the wall clock of the call.

Usage::

    .venv/bin/python -m bench.attacks                 # everything, writes bench/results/attacks.*
    .venv/bin/python -m bench.attacks --quick         # a smoke run (few images, few steps)
    .venv/bin/python -m bench.attacks --only cw-l2 --datasets mnist
    .venv/bin/python -m bench.attacks --report-only   # re-render attacks.md from attacks.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from bench.common import RESULTS, require_data, set_threads
from bench.zoo import get_trained
from deepscope import attacks, models
from deepscope.data import load

MODELS = {"mnist": ("cnn-100k", "mnist"), "faces": ("face-vgg-1.2m", "att-faces")}


# --------------------------------------------------------------------------- settings
@dataclass
class Cell:
    """One attack on one dataset: our parameters, the peers' and the modes to run."""

    attack: str
    modes: tuple[str | None, ...]
    ours: dict[str, Any]
    art: dict[str, Any] | None = None
    foolbox: dict[str, Any] | None = None
    n: int | None = None  # fewer images for every implementation of this cell
    n_art: int | None = None  # fewer images for ART only (its slowest attacks)
    note: str = ""
    extra_ours: dict[str, dict[str, Any]] = field(default_factory=dict)  # ablations
    label: str = ""  # row name when it differs from the attack's (e.g. another setting)

    @property
    def name(self) -> str:
        return self.label or self.attack


def cells(dataset: str, quick: bool) -> list[Cell]:
    """The benchmark's cells for ``dataset`` ("mnist" or "faces").

    The face model costs about 60× the MNIST CNN per image and gradient on this machine, so
    its C&W cells use fewer images and steps (the same for every implementation of a row
    group, stated in the table).
    """
    mnist = dataset == "mnist"
    eps = 0.2 if mnist else 0.03
    bim_steps = 10
    alpha = eps / 4
    l2_steps, l2_bs = (100, 5) if mnist else (30, 3)
    li_iter = 10 if mnist else 5
    l0_steps = 50 if mnist else 15
    masked_steps = 300 if mnist else 100
    if quick:
        l2_steps, l2_bs, li_iter, l0_steps, masked_steps = 10, 2, 3, 5, 20
    targeted = ("first", "next")
    out = [
        Cell("fgsm", (None,), {"eps": eps}, art={"eps": eps}, foolbox={"eps": eps}),
        Cell("bim", (None,), {"eps": eps, "steps": bim_steps, "step_size": alpha},
             art={"eps": eps, "eps_step": alpha, "max_iter": bim_steps},
             foolbox={"eps": eps, "abs_stepsize": alpha, "steps": bim_steps},
             note="ours stops a sample once it is adversarial (early_stop=True)",
             extra_ours={"all steps": {"early_stop": False}}),
        Cell("cw-l2", targeted,
             {"steps": l2_steps, "binary_search_steps": l2_bs, "initial_const": 1e-2,
              "lr": 1e-2, "confidence": 0.0},
             art={"max_iter": l2_steps, "binary_search_steps": l2_bs, "initial_const": 1e-2,
                  "learning_rate": 1e-2, "confidence": 0.0},
             foolbox={"steps": l2_steps, "binary_search_steps": l2_bs,
                      "initial_const": 1e-2, "stepsize": 1e-2, "confidence": 0.0},
             n=None if mnist else 10, n_art=10 if mnist else 5,
             extra_ours={"tanh_scale=0.999999": {"tanh_scale": 0.999999}} if mnist else {}),
        Cell("cw-l2", targeted,
             {"steps": l2_steps, "binary_search_steps": l2_bs, "initial_const": 1.0,
              "lr": 1e-2, "confidence": 0.0},
             art={"max_iter": l2_steps, "binary_search_steps": l2_bs, "initial_const": 1.0,
                  "learning_rate": 1e-2, "confidence": 0.0},
             foolbox={"steps": l2_steps, "binary_search_steps": l2_bs,
                      "initial_const": 1.0, "stepsize": 1e-2, "confidence": 0.0},
             n=None if mnist else 10, n_art=10 if mnist else 5, label="cw-l2 (c0=1)",
             note="ART grows c by ×2 per binary-search step (foolbox and deepscope by ×10), "
                  "so from c0 = 0.01 it never reaches a useful c in 5 steps; c0 = 1 gives "
                  "every implementation a workable start",
             extra_ours={"tanh_scale=0.999999": {"tanh_scale": 0.999999}} if mnist else {}),
        Cell("cw-linf", targeted,
             {"max_iter": li_iter, "lr": 1e-2, "initial_const": 1e-5, "largest_const": 20.0,
              "const_factor": 2.0, "decrease_factor": 0.9, "confidence": 0.0},
             art={"max_iter": li_iter, "learning_rate": 1e-2, "initial_const": 1e-5,
                  "largest_const": 20.0, "const_factor": 2.0, "decrease_factor": 0.9,
                  "confidence": 0.0},
             n=None if mnist else 10, n_art=10 if mnist else 2,
             note="ART loops over samples one by one"),
        Cell("cw-l0", targeted,
             {"steps": l0_steps, "initial_const": 1e-2, "lr": 1e-2, "confidence": 0.0},
             art={"max_iter": l0_steps, "binary_search_steps": 5 if mnist else 3,
                  "initial_const": 1e-2, "learning_rate": 1e-2, "confidence": 0.0},
             n=None if mnist else 8, n_art=20 if mnist else 4),
        Cell("patch", targeted,
             {"size": 0.25, "location": "center", "steps": masked_steps},
             note="no per-image peer"),
    ]
    if not mnist:
        out.append(Cell("glasses", targeted, {"steps": masked_steps},
                        note="no peer; frame from the AT&T landmark boxes"))
    return out


# --------------------------------------------------------------------------- implementations
def run_ours(model, x, y, mode, attack, params, boxes):
    kw = {"boxes": boxes} if attack == "glasses" else {}
    a = attacks.get(attack, model, progress=False, **params)
    r = a(x, y, target=mode, **kw)
    return r.x_adv, r.seconds, r


def _art_classifier(model, x, num_classes):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(),
                             input_shape=tuple(x.shape[1:]), nb_classes=num_classes,
                             clip_values=(0.0, 1.0), device_type="cpu")


def run_art(model, x, y, mode, attack, params, num_classes):
    from art.attacks import evasion as ev

    clf = _art_classifier(model, x, num_classes)
    targeted = mode is not None
    labels = _targets(y, mode, num_classes) if targeted else y
    onehot = np.eye(num_classes, dtype=np.float32)[labels.numpy()]
    n = x.shape[0]
    if attack == "fgsm":
        a = ev.FastGradientMethod(clf, norm=np.inf, targeted=targeted, batch_size=n, **params)
    elif attack == "bim":
        a = ev.BasicIterativeMethod(clf, targeted=targeted, batch_size=n, verbose=False,
                                    **params)
    elif attack == "cw-l2":
        a = ev.CarliniL2Method(clf, targeted=targeted, batch_size=n, verbose=False, **params)
    elif attack == "cw-linf":
        a = ev.CarliniLInfMethod(clf, targeted=targeted, batch_size=n, verbose=False,
                                 **params)
    elif attack == "cw-l0":
        a = ev.CarliniL0Method(clf, targeted=targeted, batch_size=n, verbose=False, **params)
    else:
        raise KeyError(attack)
    xs = x.numpy().astype(np.float32)
    t = time.perf_counter()
    adv = a.generate(xs, y=onehot)
    seconds = time.perf_counter() - t
    return torch.from_numpy(np.asarray(adv, dtype=np.float32)), seconds, None


def run_foolbox(model, x, y, mode, attack, params, num_classes):
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0), device="cpu")
    criterion = (fb.criteria.TargetedMisclassification(_targets(y, mode, num_classes))
                 if mode is not None else fb.criteria.Misclassification(y))
    p = dict(params)
    eps = p.pop("eps", None)
    if attack == "fgsm":
        a = fb.attacks.FGSM()
    elif attack == "bim":
        a = fb.attacks.LinfBasicIterativeAttack(**p)
    elif attack == "cw-l2":
        a = fb.attacks.L2CarliniWagnerAttack(abort_early=True, **p)
    else:
        raise KeyError(attack)
    t = time.perf_counter()
    _, clipped, _ = a(fmodel, x, criterion, epsilons=eps)
    seconds = time.perf_counter() - t
    return clipped.detach(), seconds, None


def _targets(y: torch.Tensor, mode: str | None, k: int) -> torch.Tensor:
    return torch.zeros_like(y) if mode == "first" else (y + 1) % k


# --------------------------------------------------------------------------- measuring
def measure(model, x, y, x_adv, mode, k, seconds, placeholder_zeros=False) -> dict[str, Any]:
    """Success (re-running the model) and mean norms over successes, the same for everyone."""
    pred = models.predict_logits(model, x_adv, batch_size=64).argmax(1)
    success = pred != y if mode is None else pred == _targets(y, mode, k)
    placeholders = 0
    if placeholder_zeros:  # foolbox returns an all-zero image where C&W found nothing
        zero = x_adv.flatten(1).abs().amax(1) == 0
        placeholders = int((zero & success).sum())
        success = success & ~zero
    l0, l2, linf = attacks.perturbation_norms(x, x_adv)
    ok = success
    per_sample = {"success": ok, "l0": l0, "l2": l2}

    def mean(v):
        return float(v[ok].double().mean()) if bool(ok.any()) else None

    return {"n": len(x), "success": float(ok.float().mean()), "l0": mean(l0),
            "l2": mean(l2), "linf": mean(linf), "s_per_100": seconds / len(x) * 100,
            "seconds": seconds, "placeholders": placeholders, "_per_sample": per_sample}


def select(model, dataset: str, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """First ``n`` test images classified correctly with a label other than 0."""
    test = load(dataset, "test", progress=False)
    pred = models.predict_logits(model, test, batch_size=256).argmax(1)
    idx = torch.nonzero((pred == test.y) & (test.y != 0)).squeeze(1)[:n]
    boxes = test.extras.get("boxes")
    return test.x[idx], test.y[idx], None if boxes is None else boxes[idx]


# --------------------------------------------------------------------------- reporting
def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


def compare(ours: dict, peer: dict) -> dict[str, Any]:
    """Ratios ours / peer and the brief's targets for one pair of rows.

    The peer may have run on the first N' <= N images only; the comparison then uses ours on
    those images. Norm ratios are taken over the samples where *both* succeeded (means over
    different sets of successes would compare easy samples with hard ones); the success
    target compares the success rates on the same images, the time target seconds per 100.
    """
    n = peer["n"]
    so, sp = ours["_per_sample"], peer["_per_sample"]
    both = so["success"][:n] & sp["success"]
    out: dict[str, Any] = {"n_both": int(both.sum())}
    missed = []
    for key in ("l0", "l2"):
        if bool(both.any()):
            a = float(so[key][:n][both].double().mean())
            b = float(sp[key][both].double().mean())
            out[f"{key}_ratio"] = ratio(a, b)
            if a > 1.1 * b:
                missed.append(key.upper())
        else:
            out[f"{key}_ratio"] = "–"
    if float(so["success"][:n].float().mean()) + 1e-9 < peer["success"]:
        missed.insert(0, "success")
    out["time_ratio"] = ratio(ours["s_per_100"], peer["s_per_100"])
    if ours["s_per_100"] > peer["s_per_100"]:
        missed.append("time")
    out["missed"] = ", ".join(missed) or "none"
    if n < ours["n"]:
        out["missed"] += f" (first {n} images)"
    return out


def write_report(rows: list[dict], meta: dict, path_md: Path, path_json: Path) -> None:
    path_json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# Attacks benchmark: deepscope vs ART and foolbox",
        "",
        f"Generated by `python -m bench.attacks` on {meta['date']} ({meta['machine']}; torch "
        f"{meta['torch']}, {meta['threads']} threads; ART {meta['art']}, foolbox "
        f"{meta['foolbox']}). Same images and settings for every implementation of a row "
        "group; success = the model's label on the returned image is adversarial (untargeted:"
        " ≠ true label; targeted: = target); norms are means over the successful samples; "
        "s/100 = wall-clock seconds per 100 images. Ratios are ours / peer (lower is better); "
        "the norm ratios are over the samples where both succeeded ('both ok'), so that easy "
        "and hard samples are not mixed. Targets (from the brief): success ≥ peer, L2 and L0 "
        "≤ 1.1× peer, time ≤ peer. The machine's 2 cores were shared with other jobs, so times are "
        "noisy; each row group ran back to back.",
        "",
    ]
    for ds in meta["datasets"]:
        info = meta["models"][ds]
        lines += [f"## {ds}: `{info['arch']}` on {info['dataset']} (test accuracy "
                  f"{info['accuracy']:.4f}; N = {info['n']} images)", ""]
        lines += ["| attack | target | impl | N | success | L0 | L2 | L∞ | s/100 | "
                  "both ok | L0 ratio | L2 ratio | time ratio | targets missed |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        order = [c.name for c in cells(ds, False)]
        ds_rows = sorted((r for r in rows if r["dataset"] == ds),  # stable: keeps impl order
                         key=lambda r: order.index(r["attack"]) if r["attack"] in order else 99)
        for r in ds_rows:
            lines.append(
                f"| {r['attack']} | {r['target'] or 'untargeted'} | {r['impl']} | {r['n']} | "
                f"{r['success']:.2f} | {fmt(r['l0'])} | {fmt(r['l2'])} | {fmt(r['linf'])} | "
                f"{fmt(r['s_per_100'])} | {r.get('n_both', '')} | {r.get('l0_ratio', '')} | "
                f"{r.get('l2_ratio', '')} | "
                f"{r.get('time_ratio', '')} | {r.get('missed', '')} |")
        lines += ["", "Settings:", ""]
        for s in sorted(meta["settings"][ds], key=lambda s: order.index(s["attack"])
                        if s["attack"] in order else 99):
            lines.append(f"- **{s['attack']}**: ours `{s['ours']}`"
                         + (f"; ART `{s['art']}`" if s["art"] else "")
                         + (f"; foolbox `{s['foolbox']}`" if s["foolbox"] else "")
                         + (f" — {s['note']}" if s["note"] else ""))
        lines.append("")
    lines += meta.get("notes", [])
    path_md.write_text("\n".join(lines) + "\n")


def grid(results: dict[str, Any], x: torch.Tensor, path: Path, title: str) -> None:
    names = list(results)
    fig = Figure(figsize=(11, 3.2 * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        r = results[name]
        attacks.plot_grid(x[:len(r)], r.x_adv, labels=r.y, adv_labels=r.adv_labels,
                          max_images=8, title=name, ax=ax)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- main
NOTES = [
    "Notes:",
    "",
    "- foolbox's `L2CarliniWagnerAttack` returns an all-zero image for samples where "
    "it found no adversarial; such images are counted as failures here (their number "
    "is in the JSON as `placeholders`).",
    "- ART's `CarliniL2Method`/`CarliniL0Method` count `max_iter` in iterations that "
    "each include a line search (up to 5 halvings and 5 doublings, each a forward "
    "pass); deepscope's and foolbox's `steps` are single Adam steps.",
    "- ART's `CarliniL0Method` runs `x.shape[1] + 1` rounds of freezing, i.e. 2 rounds "
    "for channels-first greyscale images, each freezing one feature: its L0 is "
    "essentially that of its L2 attack.",
    "- ART's `CarliniLInfMethod` attacks one sample at a time (a Python loop), trying "
    "every value of c for every τ; it is run on fewer images (N in its row).",
    "- `deepscope (tanh_scale=0.999999)` is deepscope's C&W L2 with the reference "
    "tanh constant of ART/foolbox/Carlini's code: it reproduces foolbox's success and "
    "L2 on the same images, so the gap to the default row comes from the tanh scale "
    "(0.9 keeps pixels at exactly 0 or 1 movable; most MNIST pixels are exactly 0).",
    "- ART grows c by ×2 per binary-search step (deepscope and foolbox by ×10), so "
    "with c0 = 0.01 and few steps it never reaches a useful c; the `cw-l2 (c0=1)` "
    "rows give every implementation a workable start.",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="images per cell (default 100)")
    ap.add_argument("--datasets", default="mnist,faces")
    ap.add_argument("--only", default=None, help="comma-separated attack names")
    ap.add_argument("--peers", default="art,foolbox")
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 images, few steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "attacks"))
    ap.add_argument("--grid-only", action="store_true",
                    help="only draw the PNG grid (deepscope on 8 images per attack)")
    ap.add_argument("--append", action="store_true",
                    help="keep the other datasets' rows of an existing OUT.json")
    ap.add_argument("--report-only", action="store_true",
                    help="re-render OUT.md from OUT.json without running anything")
    return ap.parse_args(argv)


def new_meta(args: argparse.Namespace, n_max: int) -> dict[str, Any]:
    import art
    import foolbox

    return {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.machine(),
        "torch": torch.__version__, "threads": args.threads, "art": art.__version__,
        "foolbox": foolbox.__version__, "datasets": [], "models": {}, "settings": {},
        "n": n_max, "quick": args.quick, "notes": NOTES,
    }


def keep_previous(out: Path, meta: dict, datasets: list[str], only: set[str] | None,
                  quick: bool) -> list[dict]:
    """Every row of the previous run except those of the cells run now (``--append``)."""
    old = json.loads(out.with_suffix(".json").read_text())
    rerun = {(ds, c.name) for ds in datasets for c in cells(ds, quick)
             if not only or c.attack in only or c.name in only}
    for key in ("datasets", "models", "settings"):
        meta[key] = old["meta"][key]
    for ds in datasets:
        meta["settings"][ds] = [s for s in meta["settings"].get(ds, [])
                                if (ds, s["attack"]) not in rerun]
    meta["date"] = f"{old['meta']['date']} and {meta['date']}"
    return [r for r in old["rows"] if (r["dataset"], r["attack"]) not in rerun]


def implementations(cell: Cell, peers: set[str], n_cell: int
                    ) -> list[tuple[str, Callable, dict, int]]:
    """``(name, runner, params, number of images)`` of every implementation of a cell."""
    impls: list[tuple[str, Callable, dict, int]] = [("deepscope", run_ours, cell.ours, n_cell)]
    for label, extra in cell.extra_ours.items():
        impls.append((f"deepscope ({label})", run_ours, {**cell.ours, **extra}, n_cell))
    if cell.art and "art" in peers:
        impls.append(("ART", run_art, cell.art, min(n_cell, cell.n_art or n_cell)))
    if cell.foolbox and "foolbox" in peers:
        impls.append(("foolbox", run_foolbox, cell.foolbox, n_cell))
    return impls


def run_group(ds: str, cell: Cell, mode: str | None, model, x, y, boxes, k: int,
              peers: set[str], examples: dict[str, Any]) -> list[dict]:
    """Every implementation of one (cell, target mode) on the same images; ratios to ours."""
    group = []
    for impl, fn, params, n_impl in implementations(cell, peers, len(x)):
        xi, yi = x[:n_impl], y[:n_impl]
        print(f"[{ds}] {cell.name} {mode or 'untargeted'} {impl} (N={n_impl})", flush=True)
        if fn is run_ours:
            x_adv, secs, res = fn(model, xi, yi, mode, cell.attack, params,
                                  None if boxes is None else boxes[:n_impl])
            if impl == "deepscope" and mode in (None, "next"):
                examples[f"{cell.attack} ({mode or 'untargeted'})"] = res
        else:
            x_adv, secs, _ = fn(model, xi, yi, mode, cell.attack, params, k)
        m = measure(model, xi, yi, x_adv, mode, k, secs,
                    placeholder_zeros=(impl == "foolbox" and cell.attack == "cw-l2"))
        print("   ", {kk: fmt(v) for kk, v in m.items() if not kk.startswith("_")}, flush=True)
        group.append({"dataset": ds, "attack": cell.name, "target": mode, "impl": impl, **m})
    for row in group[1:]:
        if not row["impl"].startswith("deepscope"):
            row.update(compare(group[0], row))
    for row in group:
        row.pop("_per_sample", None)
    return group


def warm_up(model, x, y, cell: Cell, peers: set[str], k: int) -> None:
    """The first call with a new batch size pays one-off costs (kernel selection) that would
    go to whoever runs first: warm the cheap attacks up on the full batch."""
    run_ours(model, x, y, None, cell.attack, cell.ours, None)
    if cell.art and "art" in peers:
        run_art(model, x, y, None, cell.attack, cell.art, k)
    if cell.foolbox and "foolbox" in peers:
        run_foolbox(model, x, y, None, cell.attack, cell.foolbox, k)


def draw_grid_only(ds: str, model, x_all, y_all, boxes_all, args, only, out: Path) -> None:
    arch, dname = MODELS[ds]
    examples: dict[str, Any] = {}
    for cell in cells(ds, args.quick):
        if cell.label or (only and cell.attack not in only):
            continue
        mode = cell.modes[-1]
        print(f"[{ds}] grid: {cell.name} {mode or 'untargeted'}", flush=True)
        _, _, res = run_ours(model, x_all[:8], y_all[:8], mode, cell.attack, cell.ours,
                             None if boxes_all is None else boxes_all[:8])
        examples[f"{cell.name} ({mode or 'untargeted'})"] = res
    grid(examples, x_all, out.parent / f"{out.name}_grid_{ds}.png",
         f"deepscope attacks on {arch} / {dname}: originals, adversarials, δ")


def run_dataset(ds: str, model, args, meta: dict, rows: list[dict], only, peers,
                n_max: int, out: Path) -> None:
    arch, dname = MODELS[ds]
    x_all, y_all, boxes_all = select(model, dname, n_max)
    if args.grid_only:
        draw_grid_only(ds, model, x_all, y_all, boxes_all, args, only, out)
        return
    test = load(dname, "test", progress=False)
    acc = models.evaluate(model, test, batch_size=256).accuracy
    k = test.num_classes
    if ds not in meta["datasets"]:
        meta["datasets"].append(ds)
    meta["models"][ds] = {"arch": arch, "dataset": dname, "accuracy": acc, "n": len(x_all)}
    meta["settings"].setdefault(ds, [])
    examples: dict[str, Any] = {}
    for cell in cells(ds, args.quick):
        if only and cell.attack not in only and cell.name not in only:
            continue
        meta["settings"][ds].append({"attack": cell.name, "ours": cell.ours,
                                     "art": cell.art if "art" in peers else None,
                                     "foolbox": cell.foolbox if "foolbox" in peers else None,
                                     "note": cell.note})
        n_cell = min(len(x_all), cell.n or len(x_all))
        x, y = x_all[:n_cell], y_all[:n_cell]
        boxes = None if boxes_all is None else boxes_all[:n_cell]
        if cell.attack in ("fgsm", "bim"):
            warm_up(model, x, y, cell, peers, k)
        for mode in cell.modes:
            rows.extend(run_group(ds, cell, mode, model, x, y, boxes, k, peers, examples))
            write_report(rows, meta, out.with_suffix(".md"), out.with_suffix(".json"))
    if examples and not only:  # a partial run keeps the previous grid
        grid(examples, x_all, out.parent / f"{out.name}_grid_{ds}.png",
             f"deepscope attacks on {arch} / {dname}: originals, adversarials, δ")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        saved = json.loads(out.with_suffix(".json").read_text())
        write_report(saved["rows"], saved["meta"], out.with_suffix(".md"),
                     out.with_suffix(".json"))
        return
    require_data()
    set_threads(args.threads)
    n_max = 8 if args.quick else args.n
    only = set(args.only.split(",")) if args.only else None
    peers = set(args.peers.split(",")) if args.peers else set()
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = new_meta(args, n_max)
    datasets = args.datasets.split(",")
    rows: list[dict] = []
    if args.append and out.with_suffix(".json").exists():
        rows = keep_previous(out, meta, datasets, only, args.quick)
    for ds in datasets:
        arch, dname = MODELS[ds]
        torch.manual_seed(0)  # the peers' own randomness (this script's process only)
        model = get_trained(arch, dname)
        # eval mode and frozen weights for every implementation; restored afterwards
        with models.inference(model, grad=None, freeze=True):
            run_dataset(ds, model, args, meta, rows, only, peers, n_max, out)
    if args.grid_only:
        return
    write_report(rows, meta, out.with_suffix(".md"), out.with_suffix(".json"))
    print(f"wrote {out.with_suffix('.md')}", flush=True)


if __name__ == "__main__":
    main()
