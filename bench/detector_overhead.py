"""Detector overhead: ``score`` time per input relative to one forward pass of the model.

The issue-16 target is at most 2× one forward pass at inference. Model: ``face-cnn-26k`` with
untrained (seeded) weights — timing does not depend on training; detectors are fitted on 160
AT&T training faces (FGSM fallback for the combiners) and time ``score`` on 128 others, batch
64, one thread, median of 3 runs.

Usage::

    python -m bench.detector_overhead   # prints it, writes bench/results/detector_overhead.md
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch

from bench.common import RESULTS
from deepscope import data, detect
from deepscope.models import execution, zoo
from deepscope.report import markdown_table

ROWS: dict[str, tuple[str, dict]] = {
    "margin": ("margin", {}),
    "mahalanobis (ε from the paper's grid)": ("mahalanobis", {}),
    "mahalanobis ε=0.001": ("mahalanobis", {"epsilons": (0.001,)}),
    "mahalanobis ε=0": ("mahalanobis", {"epsilons": (0.0,)}),
    "lid (k=20, minibatch=100)": ("lid", {}),
    "squeeze": ("squeeze", {}),
}


def per_input(fn: Callable[[], object], n: int, reps: int = 3) -> float:
    """Median seconds of ``fn`` over ``reps`` runs, divided by ``n``."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] / n


def main() -> None:
    torch.set_num_threads(1)
    faces = data.load("att-faces", "train")
    model = zoo.build("face-cnn-26k", num_classes=40, seed=0)
    x_fit, x = faces.x[:160], faces.x[160:288]
    fwd = per_input(lambda: execution.batched(model, x, batch_size=64), len(x))
    rows = [{"detector": "forward pass (reference)", "ms / input": f"{fwd * 1e3:.3f}",
             "× forward": "1.00", "≤ 2× target": ""}]
    for label, (name, params) in ROWS.items():
        det = detect.get(name, model, target_fpr=0.1, progress=False, **params)
        det.fit(x_fit)
        s = per_input(lambda d=det: d.score(x), len(x))
        eps = f" (chosen ε={det.epsilon_:g})" if hasattr(det, "epsilon_") else ""
        rows.append({"detector": label + eps, "ms / input": f"{s * 1e3:.3f}",
                     "× forward": f"{s / fwd:.2f}", "≤ 2× target": "yes" if s <= 2 * fwd
                     else "**no**"})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = "\n".join([
        "# Detector overhead", "",
        "Produced by `python -m bench.detector_overhead`: `score` time per input of each "
        "detector relative to one forward pass of `face-cnn-26k` (untrained seeded weights; "
        "timing does not depend on training), detectors fitted on 160 AT&T training faces "
        "(FGSM fallback for the Mahalanobis / LID combiners), timed on 128 others, batch 64, "
        "1 thread, median of 3 runs.", "",
        markdown_table(rows),
        f"torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs; 1-minute load "
        f"average at the end of the run: {load:.2f} (other work on the machine distorts the "
        "absolute times, less so the ratios)."])
    print(text)
    (RESULTS / "detector_overhead.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
