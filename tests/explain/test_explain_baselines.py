"""LIME / KernelSHAP adapters (really calling the packages), random features, IG."""

from __future__ import annotations

import numpy as np
import pytest

from deepscope.errors import InputError, NotFittedError
from deepscope.explain import (
    EXPLAINERS,
    GridSpace,
    IntegratedGradients,
    KernelShap,
    Lime,
    RandomExplainer,
    SuperpixelSpace,
    get,
)

# shap warns about matplotlib colour maps when it is imported
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def _spy(monkeypatch, owner, attr):
    calls = []
    original = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attr, wrapper)
    return calls


def test_registry_names():
    assert {"dmm-men", "lime", "kernel-shap", "random", "integrated-gradients"} <= set(
        EXPLAINERS.names()
    )
    assert isinstance(get("lime", num_samples=50), Lime)
    with pytest.raises(KeyError, match="unknown explainer"):
        get("gradcam")


def test_lime_image_adapter_calls_lime(monkeypatch, block_model, block_data):
    from lime import lime_image

    calls = _spy(monkeypatch, lime_image.LimeImageExplainer, "explain_instance")
    lime = Lime(GridSpace(2), num_samples=200, seed=0).fit(block_data, block_model, target=1)
    e = lime.explain(block_data[:3])
    assert len(calls) == 3 and calls[0]["num_samples"] == 200
    assert e.attributions.shape == (3, 4) and e.method == "lime"
    assert np.all(e.top_features(1)[:, 0] == 0)  # the block cell
    assert e.extras["explain_queries"] == 3 * 200
    again = Lime(GridSpace(2), num_samples=200, seed=0).fit(block_data, block_model, 1)
    np.testing.assert_array_equal(again.explain(block_data[:3]).attributions, e.attributions)


def test_lime_with_per_image_superpixels(block_model):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.3, size=(2, 1, 12, 12)).astype(np.float32)
    space = SuperpixelSpace(n_segments=8, compactness=0.5, per_sample=True)
    lime = Lime(space, num_samples=100).fit(x, block_model, target=1)
    e = lime.explain(x)
    assert e.per_sample_segments and e.segments.shape == (2, 12, 12)
    assert e.feature_mask(1).shape == (2, 1, 12, 12)


def test_kernel_shap_adapter_calls_shap(monkeypatch, block_model, block_data):
    import shap

    calls = _spy(monkeypatch, shap.KernelExplainer, "shap_values")
    ks = KernelShap(GridSpace(2), nsamples=16, seed=0).fit(block_data, block_model, target=1)
    e = ks.explain(block_data[:2])
    assert len(calls) == 2 and calls[0]["nsamples"] == 16 and calls[0]["l1_reg"] is False
    assert np.all(e.top_features(1)[:, 0] == 0)
    # efficiency: attributions sum to f(x) - f(all features filled with the baseline)
    x0 = block_data[:2]
    full = block_model(x0)[:, 1]
    empty = block_model(np.zeros_like(x0))[:, 1]
    np.testing.assert_allclose(e.attributions.sum(axis=1), full - empty, atol=1e-6)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    ks.explain(block_data[:1])
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_tabular_adapters(monkeypatch):
    from lime import lime_tabular

    calls = _spy(monkeypatch, lime_tabular.LimeTabularExplainer, "explain_instance")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(80, 5))

    def model(z):
        s = 6 * z[:, 2] - 3
        p = 1 / (1 + np.exp(-s))
        return np.stack([1 - p, p], axis=1)

    lime = Lime(num_samples=300).fit(x, model, target=1)
    e = lime.explain(x[:3])
    assert len(calls) == 3 and np.all(e.top_features(1, by="abs")[:, 0] == 2)
    ks = KernelShap(nsamples=40).fit(x, model, target=1)
    e = ks.explain(x[:3])
    assert np.all(e.top_features(1, by="abs")[:, 0] == 2)


def test_random_explainer(block_model, block_data):
    a = RandomExplainer(seed=1).fit(block_data, block_model, 1).explain(block_data)
    b = RandomExplainer(seed=1).fit(block_data, block_model, 1).explain(block_data)
    np.testing.assert_array_equal(a.attributions, b.attributions)
    assert a.extras["explain_queries"] == 0
    with pytest.raises(NotFittedError):
        RandomExplainer().explain(block_data)


def test_integrated_gradients_on_a_linear_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    net.train()
    for p in net.parameters():
        p.requires_grad_(False)
    x = np.random.default_rng(0).uniform(size=(3, 1, 4, 4)).astype(np.float32)
    ig = IntegratedGradients(net, GridSpace(2), n_steps=20).fit(x, target=1)
    e = ig.explain(x)
    w = net[1].weight.detach().numpy()[1].reshape(4, 4)
    pix = w * x[:, 0]  # exact IG of a linear logit with a zero baseline
    expected = np.stack([pix[:, :2, :2].sum((1, 2)), pix[:, :2, 2:].sum((1, 2)),
                         pix[:, 2:, :2].sum((1, 2)), pix[:, 2:, 2:].sum((1, 2))], axis=1)
    np.testing.assert_allclose(e.attributions, expected, rtol=1e-4, atol=1e-6)
    assert net.training and not any(p.requires_grad for p in net.parameters())
    with pytest.raises(InputError, match="torch model"):
        IntegratedGradients().fit(x, target=1)


@pytest.mark.parametrize(
    "name", ["dmm-men", "lime", "kernel-shap", "random", "integrated-gradients"]
)
def test_every_explainer_refuses_to_explain_before_fit(name, block_data):
    with pytest.raises(NotFittedError, match="fit"):
        get(name).explain(block_data)


def test_dmm_diagnostics_need_a_fit():
    from deepscope.explain import DMMMEN

    with pytest.raises(NotFittedError):
        DMMMEN().diagnostics()
