from __future__ import annotations

import math

import torch

from deepscope.detect.ami.attributes import AttributeSet
from deepscope.detect.ami.steering import SteeredModel, SteeringConfig, steer_activation
from deepscope.detect.ami.witnesses import extract_witness_variants, extract_witnesses
from deepscope.models import hooks


def _no_hooks(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_normalized_rule_finds_the_local_channel_only(faces, probe):
    x, boxes, groups = faces
    model = probe
    ws = extract_witnesses(model, x, AttributeSet(boxes=boxes, names=("left", "right")),
                           ["relu"], n_pairs=24, groups=groups, top_k=1, min_vote=0.5,
                           progress=False)
    assert ws.channels["relu"] == {"left": (0,), "right": (0,)}
    assert ws.counts()["shared"]["relu"] == 1
    assert ws.votes["relu"].shape == (2, 3)
    assert _no_hooks(model)


def test_variants_share_pairs_and_ablations_differ(faces, probe):
    x, boxes, groups = faces
    model = probe
    attrs = AttributeSet(boxes=boxes)
    both, sub, _pres, lit = extract_witness_variants(
        model, x, attrs, ["relu"], [("normalized", "both", 0.5),
                                    ("normalized", "substitution", 0.5),
                                    ("normalized", "preservation", 0.5), ("literal", "both", None)],
        n_pairs=16, groups=groups, top_k=None, progress=False)
    assert 0 in both.channels["relu"]["attr0"]
    # the context channel never changes less than the median under preservation
    assert 1 not in both.channels["relu"]["attr0"]
    assert sub.params["criterion"] == "substitution" and lit.params["min_vote"] == 1.0
    same = extract_witnesses(model, x, attrs, ["relu"], n_pairs=16, groups=groups, top_k=None,
                             min_vote=0.5, progress=False)
    assert same.channels == both.channels  # same seed → same pairs → same witnesses


def test_random_control_and_restrict_keep_the_sizes(faces, probe):
    x, boxes, _ = faces
    ws = extract_witnesses(probe, x, AttributeSet(boxes=boxes), ["feat", "relu"],
                           n_pairs=8, top_k=1, min_vote=0.0, progress=False)
    rnd = ws.random_like(seed=1)
    for layer in ws.layers:
        assert rnd.total(layer) == ws.total(layer)
    assert ws.restrict(["relu"]).layers == ("relu",)
    again = type(ws).from_dict(ws.to_dict(), ws.votes)
    assert again.channels == ws.channels


def test_steer_activation_follows_the_formulas():
    v = torch.tensor([[[[0.5]], [[2.0]], [[1.0]], [[3.0]]]])  # 1×4×1×1, witnesses 2 and 3
    w = torch.tensor([2, 3])
    cfg = SteeringConfig(("x",), alpha=0.5, beta=2.0, epsilon=1.5, clamp=False)
    out = steer_activation(v, w, cfg)
    mu, sigma, vmin = 2.0, 1.0, 1.0  # over the witnesses' values 1 and 3
    for c in (0, 1):
        val = float(v[0, c])
        assert abs(float(out[0, c]) - math.exp(-(val - mu) / (0.5 * sigma)) * val) < 1e-5
    for c in (2, 3):
        val = float(v[0, c])
        expect = 1.5 * val + (1 - math.exp(-(val - vmin) / (2.0 * sigma))) * val
        assert abs(float(out[0, c]) - expect) < 1e-5
    clamped = steer_activation(v, w, SteeringConfig(("x",), alpha=0.5, clamp=True))
    assert (clamped[0, :2].abs() <= v[0, :2].abs() + 1e-6).all()  # weakening never amplifies
    assert torch.equal(steer_activation(v, torch.tensor([], dtype=torch.long), cfg), v)


def test_steered_model_reuses_the_prefix_and_matches_a_full_intervention(cnn):
    x = torch.rand(5, 1, 24, 20)
    chans = {"block1.relu": torch.tensor([0, 3]), "block2.relu2": torch.tensor([1, 2, 5])}
    from deepscope.detect.ami.witnesses import WitnessSet

    ws = WitnessSet(("block1.relu", "block2.relu2"), ("a",),
                    {k: {"a": tuple(v.tolist())} for k, v in chans.items()},
                    {"block1.relu": 8, "block2.relu2": 16})
    cfg = SteeringConfig(("block2.relu2", "block1.relu"), alpha=0.7, epsilon=1.2)
    steered = SteeredModel(cnn, ws, cfg)
    z0, z1 = steered.logits(x)
    with torch.no_grad():
        assert torch.allclose(z0, cnn(x), atol=1e-5)
        with hooks.intervene(cnn, {k: (lambda v, c=c: steer_activation(v, c, cfg))
                                   for k, c in chans.items()}):
            full = cnn(x)
    assert torch.allclose(z1, full, atol=1e-5)
    score, y0, y1 = steered.score(x)
    assert torch.equal(score > 0, y0 != y1)
    assert _no_hooks(cnn) and not cnn.training
