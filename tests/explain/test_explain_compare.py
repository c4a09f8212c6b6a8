"""Several explainers on the same inputs: explain.compare (computation only, no drawing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepscope.errors import InputError
from deepscope.explain import Comparison, compare

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@pytest.fixture
def setup():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(12, 1, 4, 4)
    target = int(net(x).argmax(1)[0])
    return net, x, target


def test_positives_are_inputs_of_the_label_the_model_assigns_to_it(setup):
    net, x, _ = setup
    pred = net(x).argmax(1)
    y = pred.clone()
    y[0] = (y[0] + 1) % 3  # a mislabelled input is never chosen
    label = int(pred[1])
    idx = compare.positives(net, x, y, label, 50)
    assert len(idx) > 0 and bool((pred[idx] == label).all()) and bool((y[idx] == label).all())
    with pytest.raises(InputError, match="no inputs of class"):
        compare.positives(net, x, torch.zeros(12, dtype=torch.long) + 7, 1, 3)


def test_side_by_side_runs_every_method_and_round_trips(setup, tmp_path):
    net, x, target = setup
    result = compare.side_by_side(net, x, target, ["random", "integrated-gradients"], cell=2)
    assert isinstance(result, Comparison) and result.methods == ["random", "integrated-gradients"]
    assert result["random"].explanation.attributions.shape == (12, 4)
    assert result["random"].queries == 1  # the target check only
    d = result.to_dict()
    assert d["target"] == target and d["n"] == 12 and [r["method"] for r in d["runs"]] == \
        result.methods
    path = result.save(tmp_path / "cmp.npz")
    back = Comparison.load(path)
    assert back.to_dict() == d
    np.testing.assert_array_equal(back.x, result.x)
    for a, b in zip(back.runs, result.runs, strict=True):
        np.testing.assert_array_equal(a.explanation.attributions, b.explanation.attributions)
    with pytest.raises(InputError, match="no run of"):
        result["lime"]


def test_side_by_side_is_reproducible(setup):
    net, x, target = setup
    a = compare.side_by_side(net, x, target, ["random"], seed=3)
    b = compare.side_by_side(net, x, target, ["random"], seed=3)
    np.testing.assert_array_equal(a.runs[0].explanation.attributions,
                                  b.runs[0].explanation.attributions)


def test_build_explainer_passes_only_what_an_explainer_takes(setup):
    net, _, _ = setup
    ig = compare.build_explainer("integrated-gradients", net, cell=4, seed=1)
    assert ig.model is net and ig.space.cell == 4
    rnd = compare.build_explainer("random", net, seed=5)
    assert rnd.seed == 5 and not hasattr(rnd, "model")
    with pytest.raises(InputError, match="num_samples"):
        compare.build_explainer("random", net, num_samples=3)
