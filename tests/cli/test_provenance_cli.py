"""`train` records its training data; `diagnose` / `repair` use only unseen data; `detect run`
refuses a detector fitted on other weights (issue 11, items 1 and 4). Real MNIST, tiny runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deepscope import data, debug, models
from deepscope.cli.main import app


def _mnist(split: str) -> data.Dataset:
    return data.load("mnist", split, progress=False)


def _ids(ds: data.Dataset) -> set[str]:
    return set(models.sample_ids(ds))


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory) -> Path:
    """The session checkpoint's architecture with other (untrained) weights, no record."""
    path = tmp_path_factory.mktemp("other") / "other.pt"
    models.save_checkpoint(path, models.zoo.build("mlp-100k", num_classes=10, seed=1),
                           arch="mlp-100k", classes=[str(i) for i in range(10)])
    return path


def test_train_records_its_training_data(trained_checkpoint, mode_checkpoint):
    rec = models.load_checkpoint(trained_checkpoint).training_data
    assert rec is not None and (rec.protocol, rec.split, rec.limit) == ("official", "train", 3000)
    again = models.training_split(_mnist, dataset="mnist", seed=0, limit=3000, val_fraction=0.1)
    assert again.record == rec and rec.n_samples == 2700 and rec.validation == "train-split"
    mode = models.load_checkpoint(mode_checkpoint).training_data
    assert (mode.protocol, mode.split, mode.seed, mode.n_samples) == ("mode", "mode-train", 1, 600)


def test_diagnose_after_train_tests_on_the_official_test_split(trained_checkpoint,
                                                               assert_one_line_error):
    result = CliRunner().invoke(app, ["diagnose", str(trained_checkpoint), "-d", "mnist",
                                      "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = json.loads(result.stdout)
    test = _mnist("test")
    assert out["data"]["protocol"] == "official" and out["data"]["test"]["n"] == len(test)
    assert out["data"]["test"]["fingerprint"] == models.data_fingerprint(test)
    seen = _ids(models.training_split(_mnist, dataset="mnist", seed=0, limit=3000).train)
    assert not seen & _ids(test)
    # the per-label test accuracy is the model's accuracy on images it never saw
    model = models.load_checkpoint(trained_checkpoint).model
    np.testing.assert_allclose(out["test_per_label"], models.evaluate(model, test).per_label)
    repair = CliRunner().invoke(app, [
        "repair", str(trained_checkpoint), "-d", "mnist", "--label", "0", "--kind", "underfit",
        "--out", str(trained_checkpoint.with_name("never.pt")), "--quiet"])
    assert_one_line_error(repair, "official train split", "--split mode --seed 0")
    assert not trained_checkpoint.with_name("never.pt").exists()


def test_diagnose_and_repair_of_a_mode_model_stay_off_its_training_data(
        mode_checkpoint, assert_one_line_error, tmp_path):
    result = CliRunner().invoke(app, ["diagnose", str(mode_checkpoint), "-d", "mnist", "--json",
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["data"]["protocol"] == "mode" and out["seed"] == 1
    rec = models.load_checkpoint(mode_checkpoint).training_data
    held = debug.heldout_split(rec, _mnist, dataset="mnist")
    assert out["data"]["test"]["fingerprint"] == models.data_fingerprint(held.test)
    seen = _ids(models.training_split(_mnist, dataset="mnist", protocol="mode", seed=1,
                                      limit=2000).train)
    assert len(seen) == 600 and not seen & _ids(held.test)
    assert not seen & _ids(held.pool) and not seen & _ids(held.validation)

    wrong = CliRunner().invoke(app, ["diagnose", str(mode_checkpoint), "-d", "mnist",
                                     "--seed", "0", "--quiet"])
    assert_one_line_error(wrong, "seed 1", "pass --seed 1")
    other_data = CliRunner().invoke(app, ["diagnose", str(mode_checkpoint), "-d",
                                          "fashion-mnist", "--quiet"])
    assert_one_line_error(other_data, "--dataset mnist")

    out_path = tmp_path / "fixed.pt"
    fixed = CliRunner().invoke(app, [
        "repair", str(mode_checkpoint), "-d", "mnist", "--label", "0", "--kind", "underfit",
        "--strategy", "random-label", "--budget", "100", "--batch", "100", "--out",
        str(out_path), "--json", "--quiet"])
    assert fixed.exit_code == 0, fixed.output
    summary = json.loads(fixed.stdout)
    assert summary["data"]["protocol"] == "mode" and summary["data"]["pool"]["n"] == 1000


def test_a_checkpoint_without_record_warns_in_one_line(other_weights, assert_one_line_error,
                                                       tmp_path):
    result = CliRunner().invoke(app, ["diagnose", str(other_weights), "-d", "mnist", "--limit",
                                      "700", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("warning:") and "optimistic" in result.stderr
    out = json.loads(result.stdout)
    assert out["data"]["protocol"] == "mode-unverified" and not out["data"]["verified_unseen"]
    bad_label = CliRunner().invoke(app, [
        "repair", str(other_weights), "-d", "mnist", "--limit", "700", "--label", "10",
        "--kind", "underfit", "--out", str(tmp_path / "x.pt"), "--quiet"])
    assert_one_line_error(bad_label, "--label")  # the error alone, no warning before it


def test_detect_run_refuses_a_detector_fitted_on_other_weights(trained_checkpoint, other_weights,
                                                               tmp_path, assert_one_line_error):
    det = tmp_path / "fs.npz"
    fit = CliRunner().invoke(app, ["detect", "fit", str(trained_checkpoint), "-d", "mnist",
                                   "--method", "squeeze", "--limit", "40", "--out", str(det),
                                   "--quiet", "--json"])
    assert fit.exit_code == 0, fit.output
    args = ["--dataset", "mnist", "--limit", "8", "--json", "--quiet"]
    ok = CliRunner().invoke(app, ["detect", "run", str(det), str(trained_checkpoint), *args])
    assert ok.exit_code == 0, ok.output
    assert ok.stderr == ""
    wrong = CliRunner().invoke(app, ["detect", "run", str(det), str(other_weights), *args])
    assert_one_line_error(wrong, "fitted on another model", "different weights")


def test_an_injected_bug_is_recorded_and_diagnosed_on_the_same_data(tmp_path):
    out = tmp_path / "buggy.pt"
    result = CliRunner().invoke(app, [
        "train", "-d", "mnist", "-a", "mlp-100k", "--epochs", "4", "--limit", "10000",
        "--split", "mode", "--bug", "underfit", "--bug-label", "5", "--bug-keep", "0.05",
        "--out", str(out), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["training_data"]
    assert record["bug"] == {"kind": "underfit", "label": 5, "keep": 0.05, "seed": 0}
    # the recorded training set is the buggy one: far fewer 5s than the MODE train part has
    ckpt = models.load_checkpoint(out)
    held = debug.heldout_split(ckpt.training_data, _mnist, dataset="mnist", purpose="repair")
    counts = held.train.class_counts()
    assert counts[5] < 0.2 * np.median(counts)
    assert held.train.y.numel() == record["n_samples"]
    result = CliRunner().invoke(app, ["diagnose", str(out), "-d", "mnist", "--json"])
    assert result.exit_code == 0, result.output
    bugs = json.loads(result.stdout)["bugs"]
    assert [(b["label"], b["kind"]) for b in bugs] == [(5, "underfit")]


@pytest.mark.parametrize("args, fragment", [
    (("--bug", "underfit"), "--bug needs --bug-label"),
    (("--bug-label", "5"), "--bug-label needs --bug"),
    (("--bug", "sideways", "--bug-label", "5"), "--bug must be one of"),
    (("--bug", "underfit", "--bug-label", "12"), "label must be an integer in 0..9"),
])
def test_bad_bug_options_are_one_line(args, fragment, tmp_path, assert_one_line_error):
    result = CliRunner().invoke(app, ["train", "-d", "mnist", "-a", "mlp-100k", "--limit", "300",
                                      "--epochs", "1", "-o", str(tmp_path / "m.pt"), "-q",
                                      *args])
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "m.pt").exists()


def test_evaluate_warns_when_the_split_overlaps_the_training_data(trained_checkpoint,
                                                                   mode_checkpoint):
    def run(ckpt, split):
        result = CliRunner().invoke(app, ["evaluate", str(ckpt), "-d", "mnist", "--split", split,
                                          "--limit", "100", "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["warning"], result.stderr

    assert run(trained_checkpoint, "test") == (None, "")
    warning, stderr = run(trained_checkpoint, "train")
    assert "includes its own training samples" in warning and stderr.startswith("warning:")
    warning, _ = run(mode_checkpoint, "test")
    assert "MODE train part" in warning and "optimistic" in warning
