"""Ablation behind the design of the ``auto`` strategy (MNIST/Fashion mlp-100k).

    python -m bench.mode_ablation underfit 0,1 [mnist]   # prints @2k / mean / cost ratio

Variants (500 of each 2,000-sample round chosen among the pool inputs of L) are parameters of
the library's ``auto`` strategy (:func:`deepscope.debug.selection.auto`), passed to
``repair(..., strategy="auto", strategy_params=...)``: A = uncertainty ``1 - p_L`` under the
*original* model, round-robin over 8 k-means clusters (``fresh=False``); B = the same, but
recomputed under the model being repaired every round (what ``auto`` does by default); C = B for
half the picks, the other half uniform over L (``top_share=0.5``); D / E = B / C on a random
candidate subset of 3x the picks (``candidates=3``).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from bench.common import set_threads
from bench.mode_cells import Cell, buggy_model, buggy_train, split_of
from deepscope import debug
from deepscope.data import stratified_split

#: name → (strategy, strategy parameters)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "random-label": ("random-label", {}),
    "A_static": ("auto", {"fresh": False}),
    "B_fresh": ("auto", {}),
    "C_fresh_half": ("auto", {"top_share": 0.5}),
    "D_fresh_sub": ("auto", {"candidates": 3}),
    "E_fresh_half_sub": ("auto", {"top_share": 0.5, "candidates": 3}),
}


def cell_of(kind: str, dataset: str) -> Cell:
    keep = 0.1 if dataset == "mnist" else 0.15
    params = (("keep", keep),) if kind == "underfit" else (("keep", 0.6),
                                                           ("narrow", "prototype"))
    return Cell(dataset, "mlp-100k", kind, 5 if dataset == "mnist" else 7, params)


def main(argv: list[str]) -> None:
    set_threads()
    kind, seeds = argv[0], [int(s) for s in argv[1].split(",")]
    cell = cell_of(kind, argv[2] if len(argv) > 2 else "mnist")
    res: dict[str, list[tuple[float, float, float]]] = {}
    for seed in seeds:
        sp = split_of(cell.dataset, seed)
        train, _ = buggy_train(cell, seed)
        model, _ = buggy_model(cell, seed)
        val, _ = stratified_split(sp.validation, [0.5, 0.5], seed=seed)
        bug = debug.Bug(cell.label, kind, 0, 0, "", 0)
        for name, (strategy, params) in VARIANTS.items():
            r = debug.repair(model, bug, sp.pool, 20000, strategy=strategy,
                             strategy_params=params, seed=seed, train=train, validation=val,
                             test=sp.test, until_fixed=False, progress=False)
            accs = [h.test_label_acc for h in r.history[1:]]
            res.setdefault(name, []).append((accs[0], float(np.mean(accs)), r.cost_ratio))
    for name, v in res.items():
        a = np.array(v)
        print(f"{kind} {cell.dataset} {name}: @2k {100 * a[:, 0].mean():.1f} mean "
              f"{100 * a[:, 1].mean():.1f} ratio {a[:, 2].mean():.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
