"""``deepscope train``: the architecture's recommended settings unless an option is given, and a
one-line warning when eval-mode accuracy is far below train-mode accuracy."""

from __future__ import annotations

import json

import pytest

from deepscope.cli.main import app
from deepscope.cli.model_cmd import train_settings
from deepscope.errors import InputError
from deepscope.models import train as train_module
from deepscope.models import zoo
from deepscope.models.train_checks import check_train_eval_gap


def test_settings_default_to_the_architecture_and_options_win():
    assert train_settings("face-cnn-26k") == zoo.training_defaults("face-cnn-26k")
    s = train_settings("face-cnn-26k", epochs=3, lr=None, val_fraction=0.2, augment="none")
    assert (s.epochs, s.lr, s.val_fraction, s.augment) == (3, 5e-3, 0.2, None)
    assert s.batch_size == 32
    with pytest.raises(InputError, match="--augment"):
        train_settings("cnn-8k", augment="rotate")


def _train(runner, tmp_path, *extra):
    out = tmp_path / "m.pt"
    return runner.invoke(app, ["train", "-d", "mnist", "-a", "mlp-100k", "--limit", "400",
                               "--out", str(out), "--json", "--quiet", *extra])


def test_cli_uses_recommended_settings_and_flags_override(runner, trained_checkpoint, tmp_path):
    # trained_checkpoint only makes sure MNIST is there (it skips otherwise)
    result = _train(runner, tmp_path, "--epochs", "1", "--augment", "none")
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    assert settings == {**zoo.training_defaults("mlp-100k").to_dict(), "epochs": 1,
                        "augment": None}
    assert settings["lr"] == 2e-3  # mlp-100k's recommended rate, not the old global 1e-3


def test_cli_warns_in_one_line_on_a_train_eval_gap(runner, trained_checkpoint, tmp_path,
                                                   monkeypatch):
    def always(model, x, y, acc, **kw):  # as if train mode had been perfect ten times over
        return check_train_eval_gap(model, x, y, 10.0, **kw)

    monkeypatch.setattr(train_module, "check_train_eval_gap", always)
    result = _train(runner, tmp_path, "--epochs", "1")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # still exactly one JSON document on stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: eval-mode accuracy"), lines


def test_settings_are_described_in_one_line():
    from deepscope.cli.model_cmd import describe_settings

    line = describe_settings(train_settings("face-cnn-26k"))
    assert line == ("60 epochs, lr 0.005, batch 32, no validation split, fixed epochs, "
                    "augmentation faces")
    assert "10% validation split, patience 3" in describe_settings(train_settings("cnn-8k"))
