"""The explanation benchmark's verdicts: paired CIs, lower-is-better deduction, ties."""

from __future__ import annotations

import numpy as np

from bench.explain_run import summarise
from bench.explain_settings import Group, Setting


def _setting(modality: str) -> Setting:
    group = Group(1, np.zeros((100, 3), dtype=np.int64), lambda: None, np.zeros((1, 3)),
                  np.arange(100))
    return Setting("toy", modality, None, lambda x: x, [group])


def test_verdicts_follow_the_direction_of_each_test():
    rng = np.random.default_rng(0)
    base = (rng.random(100) < 0.5).astype(float)
    better = np.maximum(base, rng.random(100) < 0.4)  # more successes, same samples
    scores = {
        "dmm-men": {"deduction": {5: base}, "augmentation": {5: better},
                    "synthetic": {5: base}},
        "lime": {"deduction": {5: better}, "augmentation": {5: base}, "synthetic": {5: base}},
        "kernel-shap": {"deduction": {5: better}, "augmentation": {5: base},
                        "synthetic": {5: base}},
    }
    out = summarise(_setting("bytes"), scores)
    assert out["lower_is_better"] == {"deduction": True, "augmentation": False,
                                      "synthetic": False}
    # fewer inputs still positive after deduction = DMM-MEN better; more flipped = better
    assert out["paired"]["deduction"]["5"]["verdict"] == "win"
    assert out["paired"]["augmentation"]["5"]["verdict"] == "win"
    assert out["paired"]["synthetic"]["5"]["verdict"] == "tie"
    lo, hi = out["cells"]["augmentation"]["5"]["dmm-men"][1:]
    assert lo <= better.mean() <= hi
    # on images every test is higher-is-better: the same deduction numbers are a loss
    img = summarise(_setting("image"), scores)
    assert img["paired"]["deduction"]["5"]["verdict"] == "loss"
