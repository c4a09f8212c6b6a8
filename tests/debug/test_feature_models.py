"""Feature models: per-layer accuracy, layer choice, hook hygiene."""

from __future__ import annotations

import pytest

from deepscope.debug import FeatureModels
from deepscope.errors import NotFittedError
from deepscope.testing.asserts import assert_no_hooks, assert_state_unchanged, model_state


def test_feature_models_per_layer_and_choice(buggy, split):
    model, train = buggy
    model.train()  # a model left in train mode must come back in train mode
    before = model_state(model)
    fm = FeatureModels(seed=0, max_samples=800, epochs=5).fit(model, train, split.validation)
    assert_no_hooks(model)
    assert_state_unchanged(model, before)
    model.eval()
    assert set(fm.accuracy_) == {"fc1", "fc2"}
    assert all(0.0 <= a <= 1.0 for a in fm.accuracy_.values())
    assert max(fm.accuracy_.values()) > 0.5  # far above chance (0.25)
    best = max(fm.accuracy_.values())
    first_ok = next(n for n in ("fc1", "fc2") if fm.accuracy_[n] >= best - fm.tolerance)
    assert fm.layer_ == first_ok
    assert fm.weights_.shape == (4, 128 if fm.layer_ == "fc1" else 64)
    forced = FeatureModels(layer="fc2", max_samples=400, epochs=2).fit(model, train)
    assert forced.layer_ == "fc2" and set(forced.accuracy_) == {"fc2"}
    assert forced.to_dict()["shape"] == [64]


def test_unfitted_raises():
    with pytest.raises(NotFittedError):
        FeatureModels().to_dict()


def test_model_in_constructor_matches_the_old_call_and_persists(buggy, split, tmp_path):
    import numpy as np

    from deepscope.errors import InputError

    model, train = buggy
    old = FeatureModels(seed=1, max_samples=400, epochs=2).fit(model, train, split.validation)
    new = FeatureModels(model, seed=1, max_samples=400, epochs=2).fit(train, split.validation)
    assert old.to_dict() == new.to_dict()
    np.testing.assert_array_equal(old.weights_, new.weights_)
    params = new.get_params()
    assert "model" not in params and params["seed"] == 1 and params["max_samples"] == 400
    assert FeatureModels(["fc2"]).layers == ["fc2"]  # the old positional ``layers``
    path = new.save(tmp_path / "fm.npz")
    back = FeatureModels.load(path, model)
    assert back.to_dict() == new.to_dict() and back.model is model
    np.testing.assert_array_equal(back.weights_, new.weights_)
    with pytest.raises(InputError, match="exists"):
        new.save(path)
    with pytest.raises(InputError, match="needs the model"):
        FeatureModels().fit(train)
