"""``deepscope explain`` on sequences: one byte decision of a tagger (hex view + disassembly)
and one sentence of a text model (highlighted words); .npz, PNG and HTML outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deepscope import data, models
from deepscope.cli.main import app
from deepscope.explain import Explanation
from deepscope.models.text_io import vocabulary_metadata

from .conftest import DATA


@pytest.fixture(scope="module")
def tagger(starts_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """An (untrained, seeded) byte-cnn-80k checkpoint, and a window with a start at byte p."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPSCOPE_CACHE", str(starts_cache))
        test = data.load("function-starts", "test", progress=False)
    model = models.zoo.build("byte-cnn-80k", num_classes=2, vocab_size=257, seed=0)
    path = models.save_checkpoint(tmp_path_factory.mktemp("t") / "tagger.pt", model,
                                  arch="byte-cnn-80k", classes=test.classes,
                                  config={"num_classes": 2, "vocab_size": 257})
    rows, cols = np.nonzero(test.y.numpy()[:, 20:-20])
    return path, int(rows[0]), int(cols[0]) + 20


@pytest.fixture
def run(starts_cache: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEEPSCOPE_CACHE", str(starts_cache))
    return lambda args: CliRunner().invoke(app, args)


def test_a_byte_decision_is_explained_from_its_41_byte_window(run, tagger, tmp_path):
    path, index, p = tagger
    out = tmp_path / "e.npz"
    result = run(["explain", str(path), "--dataset", "function-starts", "--method", "random",
                  "--index", str(index), "--position", str(p), "--k", "5", "--out", str(out),
                  "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "bytes" and doc["label"] == 1 and doc["index"] == index
    assert doc["offset"] == p - 20 and doc["position"] == 20
    assert len(doc["top_features"]) == 5
    assert all(p - 20 <= j <= p + 20 for j in doc["top_features"])
    expl = Explanation.load(out)
    assert expl.attributions.shape == (1, 41)
    assert expl.extras["index"] == index and expl.extras["offset"] == p - 20
    test = data.load("function-starts", "test", progress=False)
    assert expl.extras["ids"] == test.x[index, p - 20:p + 21].tolist()
    assert out.with_suffix(".png").stat().st_size > 1000
    page = out.with_suffix(".html").read_text()
    assert "hexview" in page and "<pre>" in page
    byte = f"{int(test.x[index, p]) - 1:02x}"
    assert re.search(r"outline[^>]*>" + byte + "<", page)


def test_dmm_men_explains_the_decision_the_model_made(run, tagger, tmp_path):
    path, index, p = tagger
    out = tmp_path / "d.npz"
    result = run(["explain", str(path), "--dataset", "function-starts", "--index", str(index),
                  "--position", str(p), "--budget", "200", "--out", str(out), "--json",
                  "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    model = models.load_checkpoint(path).model
    test = data.load("function-starts", "test", progress=False)
    decided = int(models.predict_logits(model, test.x[index:index + 1]).argmax(-1)[0, p])
    assert doc["method"] == "dmm-men" and doc["target"] == decided
    assert np.isfinite(Explanation.load(out).attributions).all()


def test_sequence_options_are_checked_in_one_line(run, tagger, tmp_path, assert_one_line_error):
    path, index, p = tagger
    base = ["explain", str(path), "--dataset", "function-starts", "--method", "random",
            "--out", str(tmp_path / "x.npz")]
    assert_one_line_error(run(base), "--index is required")
    assert_one_line_error(run([*base, "--index", "10000000"]), "--index must be in")
    assert_one_line_error(run([*base, "--index", str(index), "--position", "500"]),
                          "--position must be")
    assert_one_line_error(run([*base, "--index", str(index), "--position", str(p),
                               "--class", "7"]), "--class must be in")
    (tmp_path / "x.html").write_text("mine")
    assert_one_line_error(run([*base, "--index", str(index), "--position", str(p)]),
                          "x.html")
    assert (tmp_path / "x.html").read_text() == "mine" and not (tmp_path / "x.npz").exists()


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory) -> Path:
    if not (DATA and Path(DATA, "sentiment-labelled-sentences").exists()):
        pytest.skip("real datasets not available (set DEEPSCOPE_DATA)")
    ds = data.load("uci-sentiment", "test", progress=False)
    model = models.zoo.build("text-cnn-1.9m", num_classes=2, vocab_size=len(ds.vocab), seed=0)
    return models.save_checkpoint(
        tmp_path_factory.mktemp("text") / "cnn.pt", model, arch="text-cnn-1.9m",
        classes=ds.classes, config={"num_classes": 2, "vocab_size": len(ds.vocab)},
        metadata=vocabulary_metadata(ds.vocab))


def test_a_sentence_is_explained_word_by_word(text_checkpoint, tmp_path, assert_one_line_error):
    out = tmp_path / "s.npz"
    run = CliRunner().invoke
    result = run(app, ["explain", str(text_checkpoint), "--dataset", "uci-sentiment",
                       "--method", "random", "--index", "3", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    ds = data.load("uci-sentiment", "test", progress=False)
    words = ds.vocab.decode(ds.x[3])
    expl = Explanation.load(out)
    assert expl.extras["tokens"] == words and expl.attributions.shape == (1, len(words))
    assert expl.extras["kind"] == "words" and expl.extras["position"] is None
    page = out.with_suffix(".html").read_text()
    assert "class='sentence'" in page and all(w in page for w in words if w.isalpha())
    assert_one_line_error(run(app, ["explain", str(text_checkpoint), "--dataset",
                                    "uci-sentiment", "--index", "3", "--position", "2",
                                    "--out", str(tmp_path / "t.npz")]), "--position is for")


def test_images_still_need_a_class_and_refuse_sequence_options(runner, trained_checkpoint,
                                                               tmp_path, assert_one_line_error):
    base = ["explain", str(trained_checkpoint), "--dataset", "mnist", "--out",
            str(tmp_path / "i.npz")]
    assert_one_line_error(runner.invoke(app, base), "--class is required")
    assert_one_line_error(runner.invoke(app, [*base, "--class", "1", "--index", "0"]),
                          "--index and --position are for sequence data")


def test_ray_on_a_sequence_decision_is_refused_not_ignored(run, tagger, tmp_path):
    path, index, p = tagger
    out = tmp_path / "r.npz"
    result = run(["explain", str(path), "--dataset", "function-starts", "--method", "random",
                  "--index", str(index), "--position", str(p), "--ray", "local",
                  "--out", str(out), "--quiet"])
    assert result.exit_code != 0
    assert "drop --ray" in result.output and not out.exists()
