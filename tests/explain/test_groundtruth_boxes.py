"""Ground-truth boxes with signed weights and several gates, and the precision table."""

from __future__ import annotations

import numpy as np
import pytest

from deepscope.errors import InputError
from deepscope.explain import RandomExplainer
from deepscope.explain.base import Explainer
from deepscope.explain.groundtruth import (
    default_boxes,
    gated_linear,
    precision_table,
    sequence_rules,
)


def test_gated_linear_is_what_it_says():
    box = gated_linear(20, 2, 3, seed=0)
    x = box.sample(400, seed=1)
    assert x.min() >= 0.3 and set(box.region(x)) == {0, 1, 2, 3}
    p = box.predict_proba(x)
    np.testing.assert_allclose(np.log(p[:, 1] / p[:, 0]), box.logit(x), atol=1e-8)
    w = box.weights[box.weights != 0]
    assert (w > 0).any() and (w < 0).any() and np.all(np.abs(w) >= 2)  # signed
    rel = box.relevant(x)
    assert np.all(rel.sum(axis=1) == 3) and not rel[:, list(box.gates)].any()
    # nullifying a relevant feature moves the logit by its weight times the value
    i = 0
    j = int(np.flatnonzero(rel[i])[0])
    off = x[i : i + 1].copy()
    off[0, j] = 0
    r = box.region(x[i : i + 1])[0]
    assert box.logit(x[i : i + 1])[0] - box.logit(off)[0] == pytest.approx(
        box.weights[r, j] * x[i, j])
    # closing an open gate changes the region; the open gates count as relevant with gates=True
    with_gates = box.relevant(x, gates=True)
    for g in box.gates:
        closed = x.copy()
        closed[:, g] = 0
        np.testing.assert_array_equal(with_gates[:, g], box.region(closed) != box.region(x))
        assert with_gates[:, g].any() and not with_gates[:, g].all()


def test_sequence_rules_is_what_it_says():
    box = sequence_rules(41, 2, 3, seed=0)
    x = box.sample(300, seed=1)
    assert x.dtype == np.int64 and x.min() >= 1 and x.max() <= 256
    assert box.gates == (20, 21) and set(box.region(x)) == {0, 1, 2, 3}
    rel = box.relevant(x)
    assert np.all(rel.sum(axis=1) == 3) and not rel[:, [20, 21]].any()
    # padding (0) adds nothing and closes a gate; a token outside the rule changes nothing
    pad = x.copy()
    pad[:, 20] = 0
    assert np.all(box.region(pad) % 2 == 0)
    i = int(np.flatnonzero(~rel[0] & (np.arange(41) != 20) & (np.arange(41) != 21))[0])
    other = x[:1].copy()
    other[0, i] = 0
    assert box.logit(other)[0] == pytest.approx(box.logit(x[:1])[0])
    run = sequence_rules(41, 1, 3, contiguous=True, seed=2)
    for r in range(2):
        idx = np.flatnonzero(run.weights[r])
        assert np.all(np.diff(idx) == 1) and 20 not in idx


def test_box_validation():
    with pytest.raises(InputError, match="n_gates"):
        gated_linear(4, 2, 3)
    with pytest.raises(InputError, match="low"):
        gated_linear(10, 1, 2, low=1.0)
    with pytest.raises(InputError, match="length"):
        sequence_rules(4, 2, 3)


class _Oracle(Explainer):
    """Attributions = the box's true relevance (for checking the table's arithmetic)."""

    name = "oracle"

    def __init__(self, box, space=None) -> None:
        self.box = box
        self.space = space

    def _explain(self, x):
        return self.box.relevant(x).astype(float), None, {}


def test_precision_table_counts_right():
    boxes = default_boxes(seed=0)
    assert {b.kind for b in boxes.values()} == {"tabular", "sequence"}
    small = {k: boxes[k] for k in list(boxes)[:1] + list(boxes)[-1:]}
    lines = []
    table = precision_table(
        {"oracle": _Oracle, "random": lambda b: RandomExplainer(seed=0)},
        small, n_explain=20, n_fit=30, log=lines.append,
    )
    assert set(table) == set(small) and len(lines) == 4
    for row in table.values():
        assert row["oracle"]["precision"] == 1.0
        assert row["random"]["precision"] < 0.5
        assert row["oracle"]["queries_per_explanation"] == 0
        assert row["oracle"]["k"] in (3.0, 2.0)
