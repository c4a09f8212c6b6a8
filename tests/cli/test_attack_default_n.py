"""``deepscope attack`` without ``--n``: a default sized by the attack's cost and the input size."""

from __future__ import annotations

import json

import pytest
from torch import nn

from deepscope import attacks
from deepscope.cli.attack_cmd import MAX_DEFAULT_N, default_n
from deepscope.cli.main import app

_MODEL = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))


@pytest.mark.parametrize(("name", "params", "shape", "expected"), [
    ("fgsm", {}, (1, 112, 92), MAX_DEFAULT_N),          # cheap: the cap
    ("bim", {}, (1, 28, 28), MAX_DEFAULT_N),
    ("cw-l2", {}, (1, 112, 92), 2),                      # 9 × 1000 steps on 10,304 pixels
    ("cw-l2", {}, (1, 28, 28), 28),                      # the same on MNIST
    ("cw-l2", {"steps": 10**7}, (3, 112, 92), 1),        # never below one
])
def test_default_n_scales_with_cost_and_input_size(name, params, shape, expected):
    assert default_n(attacks.get(name, _MODEL, **params), shape) == expected


def test_attack_without_n_says_how_many(runner, trained_checkpoint, tmp_path):
    out = tmp_path / "fgsm.npz"
    result = runner.invoke(app, ["attack", str(trained_checkpoint), "--dataset", "mnist",
                                 "--attack", "fgsm", "--out", str(out), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == MAX_DEFAULT_N
    assert "--n not given: attacking up to 100 input(s)" in result.stderr
