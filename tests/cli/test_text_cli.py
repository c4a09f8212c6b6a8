"""`deepscope train` / `evaluate` on a text dataset (a small slice of UCI sentiment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from deepscope import models
from deepscope.cli.main import app
from deepscope.cli.model_cmd import with_model_vocabulary
from deepscope.data import Dataset
from deepscope.data.text import build_vocabulary

from .conftest import DATA


@pytest.fixture(scope="module")
def uci_checkpoint(tmp_path_factory) -> tuple[Path, dict]:
    if not (DATA and Path(DATA, "sentiment-labelled-sentences").exists()):
        pytest.skip("real datasets not available (set DEEPSCOPE_DATA)")
    out = tmp_path_factory.mktemp("text") / "uci-cnn.pt"
    result = CliRunner().invoke(app, [
        "train", "--dataset", "uci-sentiment", "--arch", "text-cnn-1.9m", "--limit", "400",
        "--epochs", "2", "--out", str(out), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_train_on_text_writes_a_checkpoint_with_vocabulary(uci_checkpoint):
    path, summary = uci_checkpoint
    assert summary["arch"] == "text-cnn-1.9m" and summary["train_samples"] < 400
    assert set(summary["per_label"]) == {"negative", "positive"}
    assert "vocabulary" not in summary  # the summary stays short
    ckpt = models.load_checkpoint(path)
    vocab = models.vocabulary_of(ckpt)
    assert ckpt.config["vocab_size"] == len(vocab) > 1000  # the whole training split's
    x = models.encode_texts(ckpt, ["Not worth the price.", "Great phone!"])
    assert models.predict_proba(ckpt.model, x).shape == (2, 2)


def test_evaluate_text_json_is_one_document_with_per_label_accuracy(runner, uci_checkpoint):
    path, _ = uci_checkpoint
    result = runner.invoke(app, ["evaluate", str(path), "--dataset", "uci-sentiment",
                                 "--limit", "100", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["n"] == 100 and 0.0 <= doc["accuracy"] <= 1.0
    assert set(doc["per_label"]) == {"negative", "positive"}
    table = runner.invoke(app, ["evaluate", str(path), "--dataset", "uci-sentiment", "-q"])
    assert table.exit_code == 0 and "negative" in table.stdout and "all" in table.stdout


def test_image_arch_on_text_data_is_a_one_line_error(runner, tmp_path, assert_one_line_error):
    if not (DATA and Path(DATA, "sentiment-labelled-sentences").exists()):
        pytest.skip("real datasets not available (set DEEPSCOPE_DATA)")
    result = runner.invoke(app, ["train", "--dataset", "uci-sentiment", "--arch", "cnn-8k",
                                 "--limit", "50", "--out", str(tmp_path / "m.pt"), "-q"])
    assert_one_line_error(result, "cnn-8k", "text-cnn-1.9m")


def test_evaluating_on_another_vocabulary_re_encodes_the_texts(tmp_path):
    texts = ["good movie", "bad movie", "good plot", "bad plot"]
    own = build_vocabulary(["plot bad good movie zzz"] * 2, min_frequency=1)
    data_vocab = build_vocabulary(texts, min_frequency=1)
    ds = Dataset(data_vocab.encode(texts), torch.tensor([1, 0, 1, 0]), ("neg", "pos"),
                 texts=texts, vocab=data_vocab)
    model = models.zoo.build("text-cnn-1.9m", vocab_size=len(own), seed=0)
    path = models.save_checkpoint(tmp_path / "m.pt", model, arch="text-cnn-1.9m",
                                  classes=("neg", "pos"), config={"vocab_size": len(own)},
                                  metadata=models.vocabulary_metadata(own))
    ckpt = models.load_checkpoint(path)
    encoded = with_model_vocabulary(ckpt, ds)
    assert torch.equal(encoded.x, own.encode(texts)) and encoded.vocab is not None
    assert with_model_vocabulary(ckpt, encoded) is encoded
