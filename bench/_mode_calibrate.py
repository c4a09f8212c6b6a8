"""Calibrate the MODE benchmark bugs: label test accuracy for a few bug strengths (seed 0)."""

from __future__ import annotations

import sys
import time

from _mode_cells import Cell, buggy_model, set_threads, split_of

from deepscope import models


def main(argv: list[str]) -> None:
    set_threads()
    dataset, arch = argv[0], argv[1]
    label = int(argv[2])
    grid = []
    for item in argv[3:]:  # underfit:0.1  or  overfit:0.3:prototype
        kind, keep, *narrow = item.split(":")
        params = (("keep", float(keep)),) + ((("narrow", narrow[0]),) if narrow else ())
        grid.append((kind, params))
    for kind, params in grid:
        cell = Cell(dataset, arch, kind, label, params)
        start = time.perf_counter()
        model, _ = buggy_model(cell, 0)
        split = split_of(dataset, 0)
        from _mode_cells import buggy_train
        tr, _ = buggy_train(cell, 0)
        et, ev = models.evaluate(model, tr), models.evaluate(model, split.test)
        print(f"{dataset} {arch} {kind} {dict(params)} L{label}: train {et.per_label[label]:.3f} "
              f"test {ev.per_label[label]:.3f} model {ev.accuracy:.3f} "
              f"({time.perf_counter() - start:.0f}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])  # e.g. mnist cnn-8k 5 underfit:0.1 overfit:0.3:prototype
