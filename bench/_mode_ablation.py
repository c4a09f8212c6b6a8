"""Ablation behind the design of the ``auto`` strategy (MNIST/Fashion mlp-100k).

    .venv/bin/python bench/_mode_ablation.py underfit 0,1 [mnist]   # prints @2k / mean

Variants (500 of each 2,000-sample round chosen among the pool inputs of L): A = uncertainty
``1 - p_L`` under the *original* model, round-robin over 8 k-means clusters; B = the same, but
recomputed under the model being repaired every round (what ``auto`` does); C = B for half the
picks, the other half uniform over L; D / E = B / C on a random candidate subset of 3x the picks.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _mode_cells import Cell, buggy_model, buggy_train, set_threads, split_of

from deepscope import debug
from deepscope.data import stratified_split
from deepscope.debug.selection import STRATEGIES, _fill
from deepscope.models.bugs import kmeans


def make(fresh: bool, frac_top: float, clusters: int = 8, cand_mult: int | None = None):
    def fn(ctx, n, available, rng):
        cand = np.flatnonzero(available & (ctx.y == ctx.label))
        if len(cand) <= n:
            return _fill(cand, n, available, rng)
        if cand_mult:
            cand = rng.permutation(cand)[: cand_mult * n]
        p = ctx.current_probs(cand) if fresh else ctx.probs()[cand]
        unsure = 1.0 - p[:, ctx.label]
        n_top = round(frac_top * n)
        order = np.argsort(-unsure, kind="stable")
        emb = torch.from_numpy(np.log(np.clip(p, 1e-6, 1))).float()
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        assign = kmeans(emb, clusters, generator=gen)[1].numpy()
        queues = [list(order[assign[order] == c]) for c in range(clusters)]
        top: list[int] = []
        while len(top) < n_top:
            for q in queues:
                if q and len(top) < n_top:
                    top.append(q.pop(0))
        top_idx = np.asarray(top, dtype=np.int64)
        rest = np.setdiff1d(np.arange(len(cand)), top_idx)
        return np.concatenate([cand[top_idx], cand[rng.permutation(rest)[: n - n_top]]])
    return fn


VARIANTS = {"A_static": make(False, 1.0), "B_fresh": make(True, 1.0),
            "C_fresh_half": make(True, 0.5), "D_fresh_sub": make(True, 1.0, cand_mult=3),
            "E_fresh_half_sub": make(True, 0.5, cand_mult=3)}


def main(argv: list[str]) -> None:
    set_threads()
    for name, fn in VARIANTS.items():
        STRATEGIES.register(name)(fn)
    kind, seeds = argv[0], [int(s) for s in argv[1].split(",")]
    ds = argv[2] if len(argv) > 2 else "mnist"
    keep = 0.1 if ds == "mnist" else 0.15
    params = (("keep", keep),) if kind == "underfit" else (("keep", 0.6),
                                                           ("narrow", "prototype"))
    cell = Cell(ds, "mlp-100k", kind, 5 if ds == "mnist" else 7, params)
    res: dict[str, list[tuple[float, float, float]]] = {}
    for seed in seeds:
        sp = split_of(cell.dataset, seed)
        train, _ = buggy_train(cell, seed)
        model, _ = buggy_model(cell, seed)
        val, _ = stratified_split(sp.validation, [0.5, 0.5], seed=seed)
        bug = debug.Bug(cell.label, kind, 0, 0, "", 0)
        for name in ["random-label", *VARIANTS]:
            r = debug.repair(model, bug, sp.pool, 20000, strategy=name, seed=seed, train=train,
                             validation=val, test=sp.test, until_fixed=False, progress=False)
            accs = [h.test_label_acc for h in r.history[1:]]
            res.setdefault(name, []).append((accs[0], float(np.mean(accs)), r.cost_ratio))
    for name, v in res.items():
        a = np.array(v)
        print(f"{kind} {ds} {name}: @2k {100 * a[:, 0].mean():.1f} mean "
              f"{100 * a[:, 1].mean():.1f} ratio {a[:, 2].mean():.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
