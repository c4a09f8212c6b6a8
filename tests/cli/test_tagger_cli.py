"""``deepscope train/evaluate`` on function starts: a tiny dataset built from four small
archives of this machine into a private cache (three for training, one held out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepscope import models
from deepscope.cli.main import app


@pytest.fixture
def run(starts_cache: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEEPSCOPE_CACHE", str(starts_cache))
    return lambda args: CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def trained(starts_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ckpt") / "tagger.pt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPSCOPE_CACHE", str(starts_cache))
        result = CliRunner().invoke(app, ["train", "--dataset", "function-starts", "--arch",
                                          "byte-cnn-80k", "--epochs", "3", "--out", str(out),
                                          "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_train_writes_a_calibrated_tagger_checkpoint(trained):
    out, summary = trained
    assert 0 <= summary["test_f1"] <= 1 and 0 <= summary["test_precision"] <= 1
    # the decision threshold was chosen on whole held-out training libraries, not the test one
    record = summary["training_data"]
    assert record["validation"] == "group-split"
    assert 0 < summary["decision"]["threshold"] < 1
    ckpt = models.load_checkpoint(out)
    assert ckpt.config == {"num_classes": 2, "vocab_size": 257}
    assert ckpt.metadata["decision"] == summary["decision"]


def test_evaluate_json_reports_per_byte_f1(trained, run):
    out, summary = trained
    result = run(["evaluate", str(out), "--dataset", "function-starts", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["f1"] == pytest.approx(summary["test_f1"])
    assert 0 <= payload["precision"] <= 1 and 0 <= payload["recall"] <= 1
    assert payload["positions"] == sum(map(sum, payload["confusion"]))


def test_evaluate_prints_a_readable_table(trained, run):
    out, summary = trained
    result = run(["evaluate", str(out), "--dataset", "function-starts"])
    assert result.exit_code == 0, result.output
    assert "F1" in result.stdout and "recall" in result.stdout
    assert f"{summary['test_f1']:.4f}" in result.stdout


def test_an_image_model_on_function_starts_is_a_one_line_error(run, tmp_path,
                                                              assert_one_line_error):
    result = run(["train", "--dataset", "function-starts", "--arch", "cnn-8k", "--epochs", "1",
                  "--out", str(tmp_path / "x.pt"), "--quiet"])
    assert_one_line_error(result, "byte-cnn-80k")
