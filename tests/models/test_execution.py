"""The one model-execution helper: batching, devices, dtypes, and state restored in a finally."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepscope.errors import InputError
from deepscope.models import execution, hooks
from deepscope.testing import assert_state_unchanged, mixed_state, model_state, tiny_cnn


class Boom(nn.Module):
    """Raises on the third batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn(3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("boom")
        return self.net(x)


def test_batched_equals_one_big_forward_and_keeps_order():
    model = tiny_cnn(3)
    x = torch.rand(37, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.eval()(x)
    out = execution.batched(model, x, batch_size=5)
    assert torch.allclose(out, expected, atol=1e-6)
    assert out.shape == (37, 3) and not out.requires_grad


def test_batched_runs_in_eval_mode_and_restores_a_mixed_state():
    model = mixed_state(tiny_cnn(3))
    before = model_state(model)
    seen = []

    def fn(xb):
        seen.append([m.training for m in model.modules()])
        return model(xb)

    execution.batched(model, torch.rand(10, 1, 8, 8), fn, batch_size=4)
    assert seen and not any(any(flags) for flags in seen)  # every module in eval inside
    assert_state_unchanged(model, before)


def test_state_is_restored_when_the_model_raises_mid_call():
    model = Boom()
    mixed_state(model)
    before = model_state(model)
    with pytest.raises(RuntimeError, match="boom"):
        execution.batched(model, torch.rand(12, 1, 8, 8), batch_size=4)
    assert_state_unchanged(model, before)


def test_tuple_outputs_and_destination():
    model = tiny_cnn(3)
    prefix, suffix = hooks.split(model, "block1")
    x = torch.rand(9, 1, 8, 8)
    h, z = execution.batched(model, x, lambda xb: (prefix(xb), suffix(prefix(xb))), batch_size=4)
    assert h.shape == (9, 4, 4, 4) and z.shape == (9, 3)
    assert torch.allclose(z, execution.predict_logits(model, x), atol=1e-6)
    out = execution.batched(model, x, to="cpu", dtype=torch.float64)
    assert out.dtype == torch.float64


def test_inputs_are_cast_to_the_model_dtype_and_results_follow_the_input():
    model = tiny_cnn(3).double()
    x = torch.rand(4, 1, 8, 8)  # float32 input, float64 model
    assert execution.batched(model, x).dtype == torch.float64
    assert execution.predict_logits(model, x).dtype == torch.float32  # back in x's dtype


def test_integer_inputs_keep_their_dtype():
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(15, 2))
    x = torch.randint(0, 10, (6, 5))
    out = execution.predict_logits(model, x)
    assert out.shape == (6, 2) and out.dtype == torch.float32


def test_inference_freeze_and_grad():
    model = mixed_state(tiny_cnn(3))
    before = model_state(model)
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    with execution.inference(model, grad=True, freeze=True):
        assert not any(p.requires_grad for p in model.parameters())
        model(x).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in model.parameters())
    assert_state_unchanged(model, before)
    with execution.inference(model):
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_bad_inputs_are_refused():
    model = tiny_cnn(3)
    with pytest.raises(InputError, match="empty"):
        execution.batched(model, torch.zeros(0, 1, 8, 8))
    with pytest.raises(InputError, match="batch_size"):
        execution.batched(model, torch.zeros(2, 1, 8, 8), batch_size=0)
    with pytest.raises(InputError, match="NaN"):
        execution.predict_logits(model, torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(InputError, match=r"torch\.Tensor"):
        execution.predict_logits(model, [[0.0]])
    with pytest.raises(InputError, match=r"nn\.Module"):
        with execution.inference("not a model"):  # type: ignore[arg-type]
            pass
