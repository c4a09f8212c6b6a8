"""``deepscope diagnose`` / ``deepscope repair`` on a tiny model and a small synthetic slice."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from deepscope import data, models
from deepscope.cli import debug_cmd
from deepscope.cli.main import app
from deepscope.testing.data import blobs

SEED = 0


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    torch.set_num_threads(2)
    return blobs(2000, 4, (1, 28, 28), noise=0.6, styles=4, seed=2)


@pytest.fixture
def fake_loader(monkeypatch, dataset):
    """The CLI's dataset loader returns the small synthetic slice."""
    monkeypatch.setattr(debug_cmd, "_load_all", lambda name, progress: dataset)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, dataset):
    """A tiny mlp-100k trained on the MODE train part with label 3 starved."""
    split = data.mode_split(dataset, seed=SEED)
    train, _ = models.bugs.underfit(split.train, 3, keep=0.1, seed=0)
    model = models.zoo.build("mlp-100k", num_classes=4, seed=0)
    models.fit(model, train, epochs=3, seed=0, lr=2e-3, patience=None, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "buggy.pt"
    models.save_checkpoint(path, model, arch="mlp-100k", classes=dataset.classes)
    return path


def test_diagnose_json_finds_the_starved_label(fake_loader, checkpoint):
    result = CliRunner().invoke(app, ["diagnose", str(checkpoint), "--dataset", "blobs",
                                      "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(b["label"], b["kind"]) for b in out["bugs"]][:1] == [(3, "underfit")]
    assert len(out["test_per_label"]) == 4


def test_repair_writes_checkpoint_and_refuses_overwrite(fake_loader, checkpoint, tmp_path):
    out = tmp_path / "fixed.pt"
    args = ["repair", str(checkpoint), "--dataset", "blobs", "--label", "3", "--kind",
            "underfit", "--strategy", "random-label", "--budget", "200", "--batch", "100",
            "--out", str(out), "--json", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["strategy"] == "random-label" and summary["samples_used"] <= 200
    assert summary["history"][0]["round"] == 0
    repaired = models.load_checkpoint(out)
    assert repaired.metadata["repair"]["label"] == 3
    original = models.load_checkpoint(checkpoint).model.state_dict()
    assert any(not torch.equal(v, repaired.model.state_dict()[k]) for k, v in original.items())
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    replaced = CliRunner().invoke(app, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    onto_input = CliRunner().invoke(app, [*args[:-4], "--out", str(checkpoint), "--overwrite",
                                          "--json", "--quiet"])
    assert onto_input.exit_code == 2 and "being repaired" in onto_input.output
    assert torch.equal(next(iter(models.load_checkpoint(checkpoint).model.state_dict().values())),
                       next(iter(original.values())))


@pytest.mark.parametrize("extra, message", [
    (["--kind", "sideways"], "--kind"),
    (["--strategy", "magic"], "magic"),
    (["--label", "9"], "--label"),
])
def test_repair_user_errors_are_one_line(fake_loader, checkpoint, tmp_path, extra, message):
    args = ["repair", str(checkpoint), "--dataset", "blobs", "--label", "3", "--kind",
            "underfit", "--out", str(tmp_path / "x.pt"), "--quiet", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.pt").exists()
