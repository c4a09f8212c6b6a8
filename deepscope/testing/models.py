"""Tiny models for tests: hand-set weights (exact expected outputs) and small seeded nets.

All of them are trees of ``nn.Sequential`` with named children like the zoo, so hooks and
``deepscope.models.hooks.split`` work on them.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import torch
from torch import nn

from deepscope.errors import InputError

__all__ = ["identity_classifier", "tiny_cnn", "tiny_mlp", "tiny_mlp_reference"]


def identity_classifier(num_classes: int) -> nn.Sequential:
    """Logits equal to the input: inputs of shape N×1×1×K, ``logits = x.flatten(1)``.

    The predicted label is the position of the largest pixel, so tests can choose every
    prediction (see :func:`deepscope.testing.data.one_hot_inputs`).
    """
    if num_classes < 2:
        raise InputError("identity_classifier needs num_classes >= 2")
    head = nn.Linear(num_classes, num_classes)
    with torch.no_grad():
        head.weight.copy_(torch.eye(num_classes))
        head.bias.zero_()
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), head=head)).eval()


# Weights of tiny_mlp: 2 inputs → 3 hidden (ReLU) → 2 outputs.
_W1 = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
_B1 = [0.0, 0.0, -1.0]
_W2 = [[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]
_B2 = [0.0, 0.5]


def tiny_mlp() -> nn.Sequential:
    """A 2-3-2 MLP with hand-set weights on inputs of shape N×1×1×2.

    With ``a, b`` the two pixels: ``fc1 = relu([a, b, a + b - 1])`` and
    ``logits = [a + relu(a + b - 1), b - relu(a + b - 1) + 0.5]`` (see
    :func:`tiny_mlp_reference`). Layers: ``flatten``, ``fc1.linear``, ``fc1.relu``, ``head``.
    """
    fc1 = nn.Linear(2, 3)
    head = nn.Linear(3, 2)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor(_W1))
        fc1.bias.copy_(torch.tensor(_B1))
        head.weight.copy_(torch.tensor(_W2))
        head.bias.copy_(torch.tensor(_B2))
    return nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            fc1=nn.Sequential(OrderedDict(linear=fc1, relu=nn.ReLU())),
            head=head,
        )
    ).eval()


def tiny_mlp_reference(a: float, b: float) -> tuple[list[float], list[float]]:
    """``(fc1 output, logits)`` of :func:`tiny_mlp` computed by hand, in plain Python."""
    h = [max(a, 0.0), max(b, 0.0), max(a + b - 1.0, 0.0)]
    logits = [h[0] + h[2], h[1] - h[2] + 0.5]
    return h, logits


def tiny_cnn(
    num_classes: int = 3, *, seed: int | None = 0, dropout: float = 0.25
) -> nn.Sequential:
    """A small seeded CNN on 1×8×8 inputs with BatchNorm and dropout (zoo-style names).

    Layers: ``block1`` (``conv``, ``bn``, ``relu``, ``pool``: 8×8 → 4×4), ``flatten``,
    ``fc1`` (``linear``, ``relu``, ``dropout``), ``head``. About 600 parameters. With a
    ``seed`` the global RNG state is left untouched.
    """
    ctx = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with ctx:
        if seed is not None:
            torch.manual_seed(seed)
        block1 = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(1, 4, 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(4),
                relu=nn.ReLU(),
                pool=nn.MaxPool2d(2),
            )
        )
        fc1 = nn.Sequential(
            OrderedDict(linear=nn.Linear(4 * 4 * 4, 8), relu=nn.ReLU(), dropout=nn.Dropout(dropout))
        )
        head = nn.Linear(8, num_classes)
        model = nn.Sequential(
            OrderedDict(block1=block1, flatten=nn.Flatten(), fc1=fc1, head=head)
        )
    return model.eval()


def mixed_state(model: nn.Module) -> nn.Module:
    """Put ``model`` in a deliberately awkward state and return it.

    The root and most modules are in train mode, but every BatchNorm layer is frozen (eval mode,
    ``requires_grad=False``) and the first parameter of the model is frozen too, as in a
    partially fine-tuned network. An operation that restores only ``model.training`` — or
    calls ``model.train(old)`` — gets this state wrong, which is what the invariant tests catch.
    """
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)
    first = next(model.parameters(), None)
    if first is not None:
        first.requires_grad_(False)
    return model
