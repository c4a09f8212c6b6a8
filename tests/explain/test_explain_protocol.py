"""The object protocol of the explainers: parameters, factory, model execution, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepscope import explain
from deepscope.errors import InputError
from deepscope.explain import (
    EXPLAINERS,
    Explanation,
    GridSpace,
    IntegratedGradients,
    load_npz,
    model_proba,
    save_npz,
)

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, 2))


def _mixed_state(net: nn.Module) -> list:
    """Root in train mode, the BatchNorm frozen in eval, the first layer's weights frozen."""
    net.train()
    net[2].eval()
    net[1].weight.requires_grad_(False)
    return _state(net)


def _state(net: nn.Module) -> list:
    return [m.training for m in net.modules()] + [p.requires_grad for p in net.parameters()]


def _x(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(n, 1, 4, 4)).astype(np.float32)


@pytest.mark.parametrize("name", EXPLAINERS.names())
def test_get_params_rebuilds_an_equal_explainer(name):
    cls = EXPLAINERS.get(name)
    ex = cls()
    params = ex.get_params()
    assert "model" not in params and "space" in params
    again = cls(**params)
    assert again.get_params() == params
    assert repr(again).startswith(cls.__name__ + "(")


def test_get_rejects_unknown_parameters_and_lists_the_valid_ones():
    with pytest.raises(InputError, match=r"unknown parameter.*'bogus'.*valid: .*num_samples"):
        explain.get("lime", bogus=1)
    with pytest.raises(InputError, match="black box"):
        explain.get("lime", model=_net())
    net = _net()
    ig = explain.get("integrated-gradients", model=net, n_steps=3)
    assert ig.model is net and ig.get_params()["n_steps"] == 3


def test_dmm_men_validates_its_parameters_in_the_constructor():
    with pytest.raises(InputError, match="n_components"):
        explain.DMMMEN(n_components=0)
    with pytest.raises(InputError, match="attribution"):
        explain.DMMMEN(attribution="gradient")
    with pytest.raises(InputError, match="group_local"):
        explain.DMMMEN(group_local=1)


def test_model_proba_restores_every_module_and_parameter_flag():
    net = _net()
    before = _mixed_state(net)
    proba = model_proba(net, batch_size=4)(_x(10))
    assert _state(net) == before  # the old wrapper left the BatchNorm in train mode
    assert proba.dtype == np.float64 and proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    net.eval()
    with torch.no_grad():
        expected = torch.softmax(net(torch.as_tensor(_x(10))).double(), dim=1).numpy()
    np.testing.assert_array_equal(proba, expected)  # batches of 4 or one: the same numbers
    assert model_proba(net)(_x(0)).shape == (0, 0)


def test_integrated_gradients_restores_the_state_also_when_the_model_raises():
    net = _net()
    before = _mixed_state(net)
    x = _x()
    ig = IntegratedGradients(net, GridSpace(2), n_steps=4).fit(x, target=1)
    e = ig.explain(x)
    assert _state(net) == before and e.attributions.shape == (6, 4)
    assert np.isfinite(e.attributions).all()

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    bad = nn.Sequential(*net, Boom())
    before = _state(bad)
    with pytest.raises(RuntimeError, match="boom"):
        IntegratedGradients(bad, GridSpace(2), n_steps=2).fit(x, explain.model_proba(net),
                                                              target=1).explain(x)
    assert _state(bad) == before


def _explanation() -> Explanation:
    space = GridSpace(2).fit(np.zeros((1, 1, 4, 4)))
    attr = np.random.default_rng(0).normal(size=(3, 4))
    attr[1, 2] = np.nan
    return Explanation("dmm-men", 1, attr, space.segments_, (1, 4, 4), component=np.arange(3),
                       extras={"fit_r2": np.float64(0.5), "weights": np.arange(2.0)})


def test_save_and_load_round_trip_with_extras(tmp_path):
    e = _explanation()
    path = e.save(tmp_path / "e.npz")
    back = Explanation.load(path)
    np.testing.assert_array_equal(back.attributions, e.attributions)
    np.testing.assert_array_equal(back.segments, e.segments)
    np.testing.assert_array_equal(back.component, e.component)
    assert (back.method, back.target, back.input_shape) == ("dmm-men", 1, (1, 4, 4))
    assert back.extras == {"fit_r2": 0.5, "weights": [0.0, 1.0]}
    with np.load(path, allow_pickle=False) as data:  # the old arrays are still there
        assert {"attributions", "segments", "input_shape", "target", "method",
                "component"} <= set(data.files)


def test_save_refuses_an_existing_file_unless_overwrite(tmp_path):
    e = _explanation()
    path = e.save(tmp_path / "e.npz")
    with pytest.raises(InputError, match="already exists"):
        e.save(path)
    with pytest.raises(InputError, match="already exists"):
        save_npz(e[:1], path, overwrite=False)
    save_npz(e[:1], path)  # the old function replaced files: it still does by default
    assert len(load_npz(path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npz"]


def test_load_npz_reads_files_of_the_old_format(tmp_path):
    e = _explanation()
    path = tmp_path / "old.npz"
    np.savez_compressed(path, attributions=e.attributions, segments=e.segments,
                        input_shape=np.asarray(e.input_shape, dtype=np.int64),
                        target=np.asarray(1, dtype=np.int64), method=np.asarray("lime"))
    back = load_npz(path)
    assert back.method == "lime" and back.component is None and back.extras == {}
    np.testing.assert_array_equal(back.top_features(2), e.top_features(2))


def test_load_rejects_other_files_in_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        load_npz(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_npz(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(InputError, match="not a deepscope explanation"):
        load_npz(other)
