"""A small MNIST classifier trained in a few seconds, shared by the attack tests.

Loaded by path (see :func:`load_helper`) from ``tests/attacks`` and ``tests/invariants``.
It has BatchNorm and dropout, so running it in the wrong mode would change its outputs.
Real MNIST is used when ``$DEEPSCOPE_DATA`` is set; otherwise synthetic 10-class blobs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

MODULE_NAME = "_deepscope_attack_test_model"


def load_helper() -> ModuleType:
    """This module, imported once under a fixed name whichever test folder asks."""
    if MODULE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(MODULE_NAME, Path(__file__))
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[MODULE_NAME]


def build(seed: int = 0) -> nn.Sequential:
    """conv(8)-BN-ReLU-pool, conv(16)-ReLU-pool, dropout, linear; about 6k parameters."""
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 8, 3, padding=1), bn1=nn.BatchNorm2d(8), relu1=nn.ReLU(),
        pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(8, 16, 3, padding=1), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(), drop=nn.Dropout(0.3), head=nn.Linear(16 * 7 * 7, 10),
    ))


@functools.lru_cache(maxsize=1)
def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if os.environ.get("DEEPSCOPE_DATA", "").strip():
        from deepscope.data import load

        train = load("mnist", "train", progress=False)
        test = load("mnist", "test", progress=False)
        return train.x[:1200], train.y[:1200], test.x[:200], test.y[:200]
    from deepscope.testing.data import blobs

    ds = blobs(n=1400, num_classes=10, shape=(1, 28, 28), noise=0.2, seed=0)
    return ds.x[:1200], ds.y[:1200], ds.x[1200:], ds.y[1200:]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (tiny models on a shared 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, 24 correctly classified test images, their labels)."""
    with one_thread():
        return _train()


@functools.lru_cache(maxsize=1)
def benign() -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out images the model of :func:`trained` classifies correctly, other than the
    24 it returns, and their labels (what the adaptive-attack tests fit detectors on)."""
    model, x, _ = trained()
    _, _, xte, yte = _data()
    with one_thread(), torch.no_grad():
        ok = model(xte).argmax(1) == yte
    xb, yb = xte[ok][x.shape[0]:], yte[ok][x.shape[0]:]
    return xb.clone(), yb.clone()


def _train() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    xtr, ytr, xte, yte = _data()
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(2):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 50):
            idx = perm[i:i + 50]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    with torch.no_grad():
        ok = model(xte).argmax(1) == yte
    return model, xte[ok][:24].clone(), yte[ok][:24].clone()
