"""Calibrate the MODE benchmark bugs: label test accuracy for a few bug strengths (seed 0).

    python -m bench.mode_calibrate mnist cnn-8k 5 underfit:0.1 overfit:0.3:prototype
"""

from __future__ import annotations

import sys
import time

from bench.common import set_threads
from bench.mode_cells import Cell, buggy_model, buggy_train, split_of
from deepscope import models


def parse_grid(items: list[str]) -> list[tuple[str, tuple[tuple[str, object], ...]]]:
    """``underfit:0.1`` / ``overfit:0.3:prototype`` → ``(kind, bug parameters)``."""
    grid = []
    for item in items:
        kind, keep, *narrow = item.split(":")
        params = (("keep", float(keep)),) + ((("narrow", narrow[0]),) if narrow else ())
        grid.append((kind, params))
    return grid


def main(argv: list[str]) -> None:
    set_threads()
    dataset, arch, label = argv[0], argv[1], int(argv[2])
    for kind, params in parse_grid(argv[3:]):
        cell = Cell(dataset, arch, kind, label, params)
        start = time.perf_counter()
        model, _ = buggy_model(cell, 0)
        split = split_of(dataset, 0)
        tr, _ = buggy_train(cell, 0)
        et, ev = models.evaluate(model, tr), models.evaluate(model, split.test)
        print(f"{dataset} {arch} {kind} {dict(params)} L{label}: train {et.per_label[label]:.3f} "
              f"test {ev.per_label[label]:.3f} model {ev.accuracy:.3f} "
              f"({time.perf_counter() - start:.0f}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
