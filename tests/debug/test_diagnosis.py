"""diagnose: exact per-label rules on hand-made predictions (identity classifier)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepscope.debug import Bug, diagnose
from deepscope.errors import InputError
from deepscope.testing.data import make_dataset, one_hot_inputs
from deepscope.testing.models import identity_classifier

K = 4


def _data(acc_per_label: list[float], n: int = 100):
    """Dataset whose label-l samples are predicted correctly for the first acc[l]·n of them."""
    y, pred = [], []
    for label, acc in enumerate(acc_per_label):
        good = round(acc * n)
        y += [label] * n
        pred += [label] * good + [(label + 1) % K] * (n - good)
    return make_dataset(one_hot_inputs(pred, K), y)


def test_underfit_and_overfit_found_with_evidence():
    model = identity_classifier(K)
    train = _data([0.97, 0.60, 0.99, 0.98])
    test = _data([0.95, 0.55, 0.70, 0.96])
    diag = diagnose(model, train, test)
    kinds = {b.label: b.kind for b in diag.bugs}
    assert kinds == {1: "underfit", 2: "overfit"}
    uf = diag.bug_for(1)
    assert uf.train_acc == pytest.approx(0.60) and uf.test_acc == pytest.approx(0.55)
    assert "60.0%" in uf.evidence and uf.threshold == pytest.approx(np.mean(
        [0.95, 0.55, 0.70, 0.96]) - 0.05)
    of = diag.bug_for(2)
    assert of.train_acc - of.test_acc == pytest.approx(0.29)
    assert [b.label for b in diag.bugs] == [1, 2]  # most severe (lowest test accuracy) first
    json.dumps(diag.to_dict())


def test_healthy_model_has_no_bug_and_threshold_matters():
    model = identity_classifier(K)
    train = _data([0.97, 0.95, 0.99, 0.98])
    test = _data([0.95, 0.93, 0.96, 0.96])
    assert diagnose(model, train, test).bugs == ()
    # a uniform generalisation gap is not over-fitting (median gap is subtracted)
    assert diagnose(model, _data([1, 1, 1, 1]), _data([0.9, 0.9, 0.9, 0.9])).bugs == ()
    # a larger margin hides a mild under-fitting label
    mild_tr, mild_te = _data([0.97, 0.88, 0.99, 0.98]), _data([0.95, 0.85, 0.96, 0.96])
    assert [b.label for b in diagnose(model, mild_tr, mild_te).bugs] == [1]
    assert diagnose(model, mild_tr, mild_te, threshold=0.2).bugs == ()


def test_invalid_arguments():
    model = identity_classifier(K)
    d = _data([1, 1, 1, 1])
    with pytest.raises(InputError, match="threshold"):
        diagnose(model, d, d, threshold=2)
    with pytest.raises(InputError, match="kind"):
        Bug(0, "wrong", 1.0, 1.0, "", 0.0)


def test_diagnosis_save_load_and_given_bug(tmp_path, buggy, split):
    import numpy as np

    from deepscope.debug import Diagnosis, diagnose, given_bug

    model, train = buggy
    diag = diagnose(model, train, split.test)
    back = Diagnosis.load(diag.save(tmp_path / "d.npz"))
    assert back.to_dict() == diag.to_dict()
    np.testing.assert_array_equal(back.train_per_label, diag.train_per_label)
    bug = given_bug(model, train, split.test, 1, "underfit", evidence="cli")
    assert bug.train_acc == pytest.approx(float(diag.train_per_label[1]))
    assert bug.test_acc == pytest.approx(float(diag.test_per_label[1]))
    with pytest.raises(InputError, match="kind"):
        given_bug(model, train, split.test, 1, "sideways")
    with pytest.raises(InputError, match="label"):
        given_bug(model, train, split.test, 7, "underfit")
