"""The demo's explanation step shows progress (issue 11, item 12: 32 s without a sign of life)."""

from __future__ import annotations

import pytest
import torch

from deepscope.data import Dataset
from deepscope.explain import compare
from deepscope.models import zoo
from deepscope.audit import demo


class _Stop(Exception):
    pass


@pytest.mark.parametrize("progress", [True, False])
def test_the_explanation_step_passes_progress_to_the_explainers(progress, monkeypatch):
    seen = {}

    def record(*_a, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(compare, "positives", lambda *a, **k: torch.arange(2))
    monkeypatch.setattr(compare, "side_by_side", record)
    test = Dataset(x=torch.rand(4, 1, 28, 28), y=torch.tensor([5, 5, 1, 2]), name="mnist",
                   split="test", classes=tuple(str(i) for i in range(10)))
    with pytest.raises(_Stop):
        demo._explain(zoo.build("mlp-100k", seed=0), test, demo.DemoConfig(), progress)
    assert seen["progress"] is progress
