from __future__ import annotations

import pytest
import torch

from deepscope.errors import InputError
from deepscope.models import hooks, zoo
from deepscope.testing import (
    assert_no_hooks,
    assert_state_unchanged,
    model_state,
    tiny_cnn,
    tiny_mlp,
    tiny_mlp_reference,
)

POINTS = [(0.0, 0.0), (1.0, 0.5), (0.25, 0.5), (2.0, -1.0)]


def _x() -> torch.Tensor:
    return torch.tensor(POINTS).view(-1, 1, 1, 2)


def _mixed_state_model() -> torch.nn.Module:
    """A model whose modules and parameters are in a mix of states, to catch blanket resets."""
    model = tiny_cnn(seed=0).train()
    model.fc1.eval()
    model.block1.conv.weight.requires_grad_(False)
    return model


def test_tiny_mlp_matches_the_hand_computation():
    model = tiny_mlp()
    with hooks.capture(model, ["fc1", "head"]) as acts:
        model(_x())
    for i, (a, b) in enumerate(POINTS):
        h, logits = tiny_mlp_reference(a, b)
        assert acts["fc1"][i].tolist() == h
        assert acts["head"][i].tolist() == logits
    assert_no_hooks(model)


def test_capture_records_latest_outputs_and_removes_handles():
    model = _mixed_state_model()
    before = model_state(model)
    x = torch.rand(4, 1, 8, 8)
    with hooks.capture(model, "block1") as acts:
        assert acts == {}
        model.eval()
        model(x[:2])
        model(x)
        assert acts["block1"].shape == (4, 4, 4, 4)
        assert not acts["block1"].requires_grad
        first = acts["block1"].clone()
    assert_no_hooks(model)
    assert_state_unchanged(model, before)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model.block1(x), first)


def test_capture_without_detach_keeps_the_graph():
    model = tiny_mlp()
    x = _x().requires_grad_(True)
    with hooks.capture(model, "fc1", detach=False) as acts:
        model(x)
    acts["fc1"].sum().backward()
    assert x.grad is not None


def test_state_is_restored_after_an_exception_inside_the_block():
    model = _mixed_state_model()
    before = model_state(model)
    with pytest.raises(RuntimeError, match="boom"):
        with hooks.capture(model, ["block1", "fc1.relu"]):
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            raise RuntimeError("boom")
    assert_no_hooks(model)
    assert_state_unchanged(model, before)

    with pytest.raises(RuntimeError, match="boom"):
        with hooks.intervene(model, "fc1", lambda out: out * 0):
            model.train()
            model.head.weight.requires_grad_(False)
            raise RuntimeError("boom")
    assert_no_hooks(model)
    assert_state_unchanged(model, before)


def test_intervene_changes_the_output_only_inside_the_block():
    model = tiny_mlp()
    x = _x()
    with torch.no_grad():
        plain = model(x)
        with hooks.intervene(model, "fc1", lambda out: torch.zeros_like(out)) as m:
            assert m is model
            zeroed = model(x)
        assert torch.equal(zeroed, model.head.bias.expand(len(x), 2))
        assert torch.equal(model(x), plain)
        # several layers at once, applied in forward order
        with hooks.intervene(model, {"fc1.linear": lambda o: o + 1.0, "head": lambda o: -o}):
            both = model(x)
    for i, (a, b) in enumerate(POINTS):
        _, logits = tiny_mlp_reference(a, b)
        h = [max(a + 1, 0.0), max(b + 1, 0.0), max(a + b, 0.0)]
        expected = [-(h[0] + h[2]), -(h[1] - h[2] + 0.5)]
        assert both[i].tolist() == pytest.approx(expected)
        assert plain[i].tolist() == pytest.approx(logits)
    assert_no_hooks(model)


def test_unknown_layers_are_a_clear_error():
    model = tiny_cnn(seed=0)
    with pytest.raises(InputError, match=r"no layer 'block9'.*block1\.conv"):
        with hooks.capture(model, ["block1", "block9"]):
            pass
    assert_no_hooks(model)  # nothing registered before the error
    with pytest.raises(InputError, match="no layer"):
        with hooks.intervene(model, "nope", lambda o: o):
            pass
    with pytest.raises(InputError, match="callable"):
        with hooks.intervene(model, "fc1"):
            pass


def test_split_shares_parameters_and_keeps_names():
    model = zoo.build("cnn-100k", seed=0)
    prefix, suffix = hooks.split(model, "block2.relu")
    assert list(dict(prefix.named_children())) == ["normalize", "block1", "block2"]
    assert list(dict(prefix.block2.named_children())) == ["conv", "bn", "relu"]
    assert list(dict(suffix.named_children()))[:2] == ["block2", "block3"]
    assert list(dict(suffix.block2.named_children())) == ["pool"]
    assert prefix.block1.conv.weight is model.block1.conv.weight
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(suffix(prefix(x)), model(x))
    # whole-model edge cases: split after the head leaves an identity suffix
    prefix, suffix = hooks.split(model, "head")
    with torch.no_grad():
        assert torch.equal(suffix(prefix(x)), model(x))
        assert len(suffix) == 0


def test_split_requires_sequential_containers():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.body(x)

    with pytest.raises(InputError, match=r"nn\.Sequential"):
        hooks.split(Net(), "body")
    with pytest.raises(InputError, match="no layer"):
        hooks.split(tiny_cnn(), "block7")
