"""C&W progress: the bar moves during a batch (per optimisation step), not only after it."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from deepscope import attacks
from deepscope.attacks import base

CW = {
    "cw-l2": {"steps": 6, "binary_search_steps": 2},
    "cw-linf": {"max_iter": 3, "largest_const": 1e-3},
    "cw-l0": {"steps": 4, "max_const_steps": 1},
}


class _Recorder:
    """Stands in for tqdm: records the bar's position after every update."""

    positions: ClassVar[list[float]] = []

    def __init__(self, total, **kwargs):
        self.total, self.n, self.disable = total, 0.0, kwargs.get("disable", False)

    def update(self, k=1):
        self.n += k
        _Recorder.positions.append(self.n)

    def set_postfix_str(self, *args, **kwargs):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("name", sorted(CW))
def test_progress_advances_within_one_batch(name, digits, monkeypatch):
    model, x, y = digits
    _Recorder.positions = []
    monkeypatch.setattr(base, "tqdm", _Recorder)
    atk = attacks.get(name, model, batch_size=256, **CW[name])
    n = 4
    result = atk(x[:n], y[:n], target="next")
    inside = [p for p in _Recorder.positions if 0 < p < n]
    assert len(set(inside)) >= 1 and len(_Recorder.positions) > 1, _Recorder.positions
    assert _Recorder.positions[-1] == pytest.approx(n)
    assert _Recorder.positions == sorted(_Recorder.positions)  # never moves backwards
    assert result.x_adv.shape == x[:n].shape


def test_cw_l2_moves_once_per_step(digits, monkeypatch):
    model, x, y = digits
    _Recorder.positions = []
    monkeypatch.setattr(base, "tqdm", _Recorder)
    atk = attacks.get("cw-l2", model, batch_size=256, steps=5, binary_search_steps=2,
                      abort_early=False)
    atk(x[:3], y[:3])
    # 2 × 5 steps, each moving the bar by 3/10 of an image, then the end of the batch
    assert len(_Recorder.positions) >= 10
    assert _Recorder.positions[0] == pytest.approx(0.3)


def test_progress_does_not_change_the_result(digits):
    model, x, y = digits
    quiet = attacks.get("cw-l2", model, steps=5, binary_search_steps=2, progress=False)
    loud = attacks.get("cw-l2", model, steps=5, binary_search_steps=2, progress=True)
    assert torch.equal(quiet(x[:4], y[:4]).x_adv, loud(x[:4], y[:4]).x_adv)


@pytest.mark.parametrize(("name", "params", "cost"), [
    ("fgsm", {}, 1),
    ("bim", {"steps": 7}, 7),
    ("cw-l2", {"steps": 100, "binary_search_steps": 3}, 300),
    ("cw-linf", {"max_iter": 10, "initial_const": 1.0, "largest_const": 8.0,
                 "const_factor": 2.0}, 30),
    ("cw-l0", {"steps": 10, "max_const_steps": 2}, 300),
])
def test_estimated_cost(name, params, cost, digits):
    assert attacks.get(name, digits[0], **params).estimated_cost() == cost
