"""Every technique leaves the model exactly as it found it — table-driven over every registry.

The model starts in a *mixed* state (:func:`deepscope.testing.mixed_state`: the root in train
mode, BatchNorm layers frozen in eval mode with ``requires_grad=False``, one more parameter
frozen), the state a partially fine-tuned network is in. Every registered attack, detector,
explainer, MODE selection strategy and the debug entry points run on it; afterwards every
module's ``training`` flag and every parameter's ``requires_grad`` must be what they were, no
hook may be left and the weights must be untouched — also when the model raises half-way.

Adding a name to a registry without a row here fails ``test_every_registered_name_has_a_row``.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any

import pytest
import torch
from torch import nn

from deepscope import attacks, data, debug, detect, explain, models
from deepscope.testing import (
    assert_no_hooks,
    assert_state_unchanged,
    blobs,
    mixed_state,
    model_state,
    tiny_cnn,
)

K = 3
BOXES = torch.tensor([[1, 1, 4, 4], [4, 4, 7, 7]])  # two "attributes" on 8×8 images

ATTACK_PARAMS: dict[str, dict[str, Any]] = {
    "fgsm": {"eps": 0.2},
    "bim": {"eps": 0.2, "steps": 3},
    "cw-l2": {"steps": 4, "binary_search_steps": 1},
    "cw-linf": {"max_iter": 3, "largest_const": 1e-4},
    "cw-l0": {"steps": 3, "max_const_steps": 0},
    "patch": {"size": 3, "steps": 3},
    "glasses": {"steps": 3},
    "adaptive-ami": {"eps": 0.2, "steps": 3},
    "adaptive-squeeze": {"eps": 0.2, "steps": 3},
    "adaptive-mahalanobis": {"eps": 0.2, "steps": 3},
    "adaptive-lid": {"eps": 0.2, "steps": 3},
}
DETECTOR_PARAMS: dict[str, dict[str, Any]] = {
    "ami": {"layers": ["block1.relu"], "n_pairs": 8, "alphas": (0.3,), "epsilons": (1.0,)},
    "squeeze": {},
    "joint": {},
    "mahalanobis": {"epsilons": (0.0, 0.002)},
    "lid": {"k": 5, "minibatch": 20},
    "margin": {},
    "art-binary": {"epochs": 2},
}
EXPLAINER_PARAMS: dict[str, dict[str, Any]] = {
    "dmm-men": {"n_components": 2, "n_sweeps": 6, "burn_in": 2, "n_chains": 1, "n_local": 8,
                "progress": False},
    "lime": {"num_samples": 40, "progress": False},
    "kernel-shap": {"nsamples": 40, "progress": False},
    "random": {},
    "integrated-gradients": {"n_steps": 4},
}


class Flaky(nn.Module):
    """Wraps a layer and raises on its ``fail_at``-th forward pass (0 = never)."""

    def __init__(self, inner: nn.Module, fail_at: int = 0) -> None:
        super().__init__()
        self.inner = inner
        self.fail_at = fail_at
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("the model failed half-way")
        return self.inner(x)


def flaky_copy(model: nn.Module, fail_at: int = 0) -> tuple[nn.Module, Flaky]:
    """A copy of the tiny CNN whose first layer counts (and, with ``fail_at``, fails) every
    forward pass — also the passes that run only a prefix or a suffix of the model."""
    copy = deepcopy(model)
    counter = Flaky(copy.block1.conv, fail_at)
    copy.block1.conv = counter
    return copy, counter


@pytest.fixture(scope="module")
def task() -> tuple[nn.Module, data.Dataset, data.Dataset]:
    torch.set_num_threads(1)
    ds = blobs(240, K, (1, 8, 8), noise=0.3, seed=0)
    train, test = data.stratified_split(ds, [0.6, 0.4], seed=0, names=("train", "test"))
    model = tiny_cnn(K, seed=0)
    models.fit(model, train, epochs=2, seed=0, lr=5e-3, patience=None, progress=False)
    return model, train, test


def _attack(name: str) -> Callable:
    def run(model, train, test):
        kw = {"boxes": BOXES.expand(8, 2, 4)} if name == "glasses" else {}
        params = dict(ATTACK_PARAMS[name])
        if name.startswith("adaptive-"):  # goes through a detector fitted on the same model
            det = _build_detector(name.removeprefix("adaptive-"), model)
            boxes = BOXES.expand(len(train), 2, 4)
            params["detector"] = det.fit(train.x, boxes) if det.takes_boxes else det.fit(train.x)
        attacks.get(name, model, progress=False, **params)(
            test.x[:8], test.y[:8], target="next", **kw)
    return run


def _build_detector(name: str, model: nn.Module) -> detect.Detector:
    if name == "joint":
        return detect.JointDetector([detect.FeatureSqueezingDetector(model, progress=False)],
                                    target_fpr=0.2, progress=False)
    return detect.get(name, model, target_fpr=0.2, progress=False, **DETECTOR_PARAMS[name])


def _detector(name: str) -> Callable:
    def run(model, train, test):
        det = _build_detector(name, model)
        boxes = BOXES.expand(len(train), 2, 4)
        det.fit(train.x, boxes) if det.takes_boxes else det.fit(train.x)
        det.detect(test.x[:6])
    return run


def _explainer(name: str) -> Callable:
    def run(model, train, test):
        x = test.x[:6].numpy()
        params = EXPLAINER_PARAMS[name]
        if name == "integrated-gradients":
            ex = explain.get(name, model=model, **params).fit(x, target=1)
        else:
            ex = explain.get(name, **params).fit(x, explain.model_proba(model), target=1)
        ex.explain(x[:3])
    return run


def _strategy(name: str) -> Callable:
    def run(model, train, test):
        bug = debug.diagnose(model, train, test).bugs
        label = bug[0].label if bug else 1
        debug.repair(model, debug.Bug(label=label, kind="underfit", train_acc=0.5,
                                      test_acc=0.5, evidence={}, threshold=0.6),
                     test, budget=40, batch=40, strategy=name, train=train, validation=test,
                     layer="fc1", seed=0, progress=False)
    return run


def _diagnose(model, train, test):
    debug.diagnose(model, train, test)


def _feature_models(model, train, test):
    debug.FeatureModels(layers=["block1", "fc1"], epochs=2, seed=0).fit(model, train, test)


def _predict(model, train, test):
    models.predict_logits(model, test)
    models.evaluate(model, test)


OPERATIONS: dict[str, Callable] = {
    **{f"attack:{n}": _attack(n) for n in ATTACK_PARAMS},
    **{f"detector:{n}": _detector(n) for n in DETECTOR_PARAMS},
    **{f"explainer:{n}": _explainer(n) for n in EXPLAINER_PARAMS},
    **{f"strategy:{n}": _strategy(n) for n in ("mode", "random", "random-label", "failing",
                                               "deepgini", "auto")},
    "debug:diagnose": _diagnose,
    "debug:feature-models": _feature_models,
    "models:predict+evaluate": _predict,
}


def test_every_registered_name_has_a_row():
    assert sorted(ATTACK_PARAMS) == sorted(attacks.names())
    assert sorted(DETECTOR_PARAMS) == sorted(detect.names())
    assert sorted(EXPLAINER_PARAMS) == sorted(explain.names())
    rows = {op.split(":", 1)[1] for op in OPERATIONS if op.startswith("strategy:")}
    assert rows == set(debug.STRATEGIES.names())


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_state_weights_and_hooks_are_left_as_found(task, op):
    model, train, test = task
    wrapped, _ = flaky_copy(model)
    mixed_state(wrapped)
    before, weights = model_state(wrapped), _weights(wrapped)
    OPERATIONS[op](wrapped, train, test)
    assert_state_unchanged(wrapped, before)
    assert_no_hooks(wrapped)
    after = _weights(wrapped)
    assert all(torch.equal(after[k], weights[k]) for k in weights), "weights changed"


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_state_is_restored_when_the_model_raises_half_way(task, op):
    model, train, test = task
    probe, counter = flaky_copy(model)
    OPERATIONS[op](probe, train, test)  # count the forward passes of a normal run
    wrapped, _ = flaky_copy(model, fail_at=max(1, (counter.calls + 1) // 2))
    mixed_state(wrapped)
    before = model_state(wrapped)
    with pytest.raises(RuntimeError, match="failed half-way"):
        OPERATIONS[op](wrapped, train, test)
    assert_state_unchanged(wrapped, before)
    assert_no_hooks(wrapped)
